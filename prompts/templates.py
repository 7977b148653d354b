"""Prompt template sets: plain text files with `{field}` placeholders, validated on load.

A template set is a directory (the packaged `templates/default/`, or any path a user passes)
holding exactly the files in `TEMPLATE_FIELDS`. Placeholders are `{name}`; `{{` and `}}`
write literal braces; any other brace is literal text. Substitution is a single pass, so a
problem statement containing braces is inserted verbatim and never re-expanded.

Fields (a template may use only those listed for its file):
  problem        the task statement as given by the dataset (docstring prompt or prose)
  signature      the function's `def` line, e.g. `def add(a: int, b: int) -> int:` (may be "")
  entry_point    the function name the tests call
  stage_id       1..num_stages
  stage_name     the stage's short name (see stages.py)
  num_stages     5
  stage_output   (discriminator only) the generator's output for this stage

System templates get only `num_stages`, so the system turn is identical for every problem and
an inference engine can share its KV cache across the whole batch.

An optional `reply_starts.json` holds the first characters of each stage's reply, written into the
model's turn before it generates (prefilled): `{"generator": [5 strings], "discriminator": [5 strings]}`.
JSON, not text files, because a start's trailing newline or its lack is part of it. Without the file every
reply starts empty.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from .stages import NUM_STAGES

TEMPLATES_ROOT = Path(__file__).resolve().parent / "templates"
REPLY_STARTS_FILE = "reply_starts.json"
NO_STARTS: tuple[str, ...] = ("",) * NUM_STAGES

_SYSTEM_FIELDS = frozenset({"num_stages"})
_STAGE_FIELDS = frozenset({"problem", "signature", "entry_point", "stage_id", "stage_name", "num_stages"})
_DIRECT_FIELDS = frozenset({"problem", "signature", "entry_point"})


def _stage_files() -> dict[str, tuple[frozenset[str], frozenset[str]]]:
    files: dict[str, tuple[frozenset[str], frozenset[str]]] = {}
    for k in range(1, NUM_STAGES + 1):
        # The first turn of each conversation must carry the problem: later turns only add to it.
        first = frozenset({"problem"}) if k == 1 else frozenset()
        files[f"generator_stage{k}.txt"] = (_STAGE_FIELDS, first)
        files[f"discriminator_stage{k}.txt"] = (_STAGE_FIELDS | {"stage_output"}, first | {"stage_output"})
    return files


# file name -> (fields it may use, fields it must use)
TEMPLATE_FIELDS: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    "system_generator.txt": (_SYSTEM_FIELDS, frozenset()),
    "system_discriminator.txt": (_SYSTEM_FIELDS, frozenset()),
    "system_direct.txt": (_SYSTEM_FIELDS, frozenset()),
    "direct.txt": (_DIRECT_FIELDS, frozenset({"problem"})),
    **_stage_files(),
}

_TOKEN = re.compile(r"\{\{|\}\}|\{([A-Za-z_][A-Za-z0-9_]*)\}")


class TemplateError(ValueError):
    """A template set is unusable; the message names the directory and file."""


@dataclass(frozen=True)
class Template:
    """One parsed template file: alternating literal text and field names."""

    name: str
    text: str
    parts: tuple[tuple[bool, str], ...]  # (is_field, literal text or field name)

    @classmethod
    def parse(cls, name: str, text: str) -> Template:
        parts: list[tuple[bool, str]] = []
        pos = 0
        for match in _TOKEN.finditer(text):
            literal = text[pos:match.start()]
            token = match.group(0)
            if match.group(1) is None:  # an escaped brace
                parts.append((False, literal + token[0]))
            else:
                parts.append((False, literal))
                parts.append((True, match.group(1)))
            pos = match.end()
        parts.append((False, text[pos:]))
        return cls(name, text, tuple(p for p in parts if p[0] or p[1]))

    @property
    def fields(self) -> frozenset[str]:
        return frozenset(value for is_field, value in self.parts if is_field)

    def render(self, **values: object) -> str:
        """Substitute every field once; a field the template uses but the caller omits is a bug."""
        missing = self.fields - values.keys()
        if missing:
            raise KeyError(f"{self.name}: no value for {sorted(missing)}")
        return "".join(str(values[v]) if is_field else v for is_field, v in self.parts)


@dataclass(frozen=True)
class TemplateSet:
    """All prompt texts of one template set; stage lists are indexed stage_id - 1."""

    source: str
    system_generator: Template
    system_discriminator: Template
    system_direct: Template
    direct: Template
    generator: tuple[Template, ...]
    discriminator: tuple[Template, ...]
    generator_starts: tuple[str, ...] = NO_STARTS
    discriminator_starts: tuple[str, ...] = NO_STARTS

    def generator_stage(self, stage_id: int) -> Template:
        return self.generator[_stage_index(stage_id)]

    def discriminator_stage(self, stage_id: int) -> Template:
        return self.discriminator[_stage_index(stage_id)]

    def generator_start(self, stage_id: int) -> str:
        """What the generator's reply at ``stage_id`` starts with, prefilled (``reply_starts.json``)."""
        return self.generator_starts[_stage_index(stage_id)]

    def discriminator_start(self, stage_id: int) -> str:
        """What the discriminator's reply at ``stage_id`` starts with, prefilled."""
        return self.discriminator_starts[_stage_index(stage_id)]


def _stage_index(stage_id: int) -> int:
    if not isinstance(stage_id, int) or not 1 <= stage_id <= NUM_STAGES:
        raise ValueError(f"stage id must be an int in 1..{NUM_STAGES}, got {stage_id!r}")
    return stage_id - 1


def available_template_sets() -> list[str]:
    """Names of the template sets shipped with the package."""
    return sorted(p.name for p in TEMPLATES_ROOT.iterdir() if p.is_dir())


def resolve_template_dir(ref: str | os.PathLike[str]) -> Path:
    """A bare name ("default") means a packaged set; anything else is a directory path."""
    text = os.fspath(ref)
    packaged = TEMPLATES_ROOT / text
    if re.fullmatch(r"[A-Za-z0-9_.-]+", text) and text not in (".", "..") and packaged.is_dir():
        return packaged
    path = Path(text).expanduser()
    if not path.is_dir():
        raise TemplateError(
            f"template set {text!r} is neither a packaged set ({', '.join(available_template_sets())}) "
            "nor an existing directory")
    return path


def _braced(names: list[str]) -> str:
    return ", ".join("{" + n + "}" for n in names)


def load_templates(ref: str | os.PathLike[str] = "default") -> TemplateSet:
    """Load and validate a template set; every problem is reported with its file name."""
    directory = resolve_template_dir(ref)
    present = {p.name for p in directory.glob("*.txt")}
    problems: list[str] = []
    missing = sorted(TEMPLATE_FIELDS.keys() - present)
    if missing:
        problems.append(f"missing files: {', '.join(missing)}")
    unexpected = sorted(present - TEMPLATE_FIELDS.keys())
    if unexpected:
        problems.append(f"unexpected files (typo?): {', '.join(unexpected)}")

    loaded: dict[str, Template] = {}
    for name in sorted(TEMPLATE_FIELDS.keys() & present):
        allowed, required = TEMPLATE_FIELDS[name]
        try:
            text = (directory / name).read_text(encoding="utf-8").rstrip()
        except (OSError, UnicodeDecodeError) as exc:
            problems.append(f"{name}: cannot read ({exc})")
            continue
        if not text:
            problems.append(f"{name}: empty")
            continue
        template = Template.parse(name, text)
        unknown = sorted(template.fields - allowed)
        if unknown:
            problems.append(f"{name}: unknown placeholders {_braced(unknown)} (allowed: "
                            f"{_braced(sorted(allowed))}; write {{{{ and }}}} for literal braces)")
        absent = sorted(required - template.fields)
        if absent:
            problems.append(f"{name}: must use placeholders {_braced(absent)}")
        loaded[name] = template

    starts = _reply_starts(directory / REPLY_STARTS_FILE, problems)
    if problems:
        raise TemplateError(f"invalid template set {directory}:\n  " + "\n  ".join(problems))
    return TemplateSet(
        source=str(directory),
        system_generator=loaded["system_generator.txt"],
        system_discriminator=loaded["system_discriminator.txt"],
        system_direct=loaded["system_direct.txt"],
        direct=loaded["direct.txt"],
        generator=tuple(loaded[f"generator_stage{k}.txt"] for k in range(1, NUM_STAGES + 1)),
        discriminator=tuple(loaded[f"discriminator_stage{k}.txt"] for k in range(1, NUM_STAGES + 1)),
        generator_starts=starts["generator"], discriminator_starts=starts["discriminator"],
    )


def _reply_starts(path: Path, problems: list[str]) -> dict[str, tuple[str, ...]]:
    """The reply starts of both roles from ``path`` (empty ones when it does not exist); what is wrong with
    the file is added to ``problems``."""
    starts = {"generator": NO_STARTS, "discriminator": NO_STARTS}
    if not path.exists():
        return starts
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        problems.append(f"{path.name}: cannot read ({exc})")
        return starts
    if not isinstance(data, dict) or set(data) - set(starts):
        problems.append(f"{path.name}: must be an object with the keys 'generator' and/or 'discriminator'")
        return starts
    for role, values in data.items():
        if not (isinstance(values, list) and len(values) == NUM_STAGES and all(isinstance(v, str) for v in values)):
            problems.append(f"{path.name}: '{role}' must be a list of {NUM_STAGES} strings, one per stage")
            continue
        starts[role] = tuple(values)
    return starts
