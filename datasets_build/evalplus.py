"""HumanEval+ and MBPP+ (EvalPlus, Liu et al. 2023) release files to schema rows.

EvalPlus keeps each task of HumanEval / MBPP and adds many test *inputs* (``plus_input``) to the
original ones (``base_input``); a solution is judged by comparing its outputs on them with the
canonical solution's. The rows keep those inputs as JSON text (``base_inputs``, ``plus_inputs``)
with the tolerance (``atol``) and input-validity assertions (``contract``), and also carry ordinary
``tests`` (HumanEval's ``check`` split as for HumanEval, one test per MBPP+ ``assert``) so every
other part of the project can use them like any row. Expected outputs are not computed here.

EvalPlus names a dataset version by the md5 of the uncompressed JSONL (``dataset_hash``); only
versions in ``KNOWN_VERSIONS`` are accepted, so results always say which data they are on.
The file is looked up the way the ``evalplus`` package does (``locate_plus_file``).
"""

from __future__ import annotations

import ast
import builtins
import gzip
import hashlib
import importlib.resources
import inspect
import json
import logging
import math
import os
import re
import sys
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from .humaneval import humaneval_row
from .hub import load_hub_rows
from .jsonl import Record, records_from_lines, require
from .pysource import code_lines, normalise_newlines, parse, signature_of, top_level_function
from .schema import DatasetFormatError, DifficultyBands, make_row, reject_duplicate_ids

logger = logging.getLogger(__name__)

PlusName = Literal["humaneval+", "mbpp+"]
PLUS_NAMES: tuple[PlusName, ...] = ("humaneval+", "mbpp+")
PLUS_SPLIT = "test"
LABELS: dict[str, str] = {"humaneval+": "HumanEval+", "mbpp+": "MBPP+"}
# Fields of every release record, then the one test field each dataset adds.
COMMON_FIELDS = ("task_id", "prompt", "entry_point", "canonical_solution", "base_input", "plus_input", "atol", "contract")
RELEASE_FIELDS: dict[str, tuple[str, ...]] = {"humaneval+": (*COMMON_FIELDS, "test"), "mbpp+": (*COMMON_FIELDS, "assertion")}
TASK_ID_PATTERNS: dict[str, str] = {"humaneval+": r"HumanEval/\d+", "mbpp+": r"Mbpp/\d+"}
# The environment variables the evalplus package reads instead of its cache (an uncompressed .jsonl).
OVERRIDE_ENV: dict[str, str] = {"humaneval+": "HUMANEVAL_OVERRIDE_PATH", "mbpp+": "MBPP_OVERRIDE_PATH"}
# The Hub copies: they hold the tests as code, not the inputs as data (see load_plus_rows).
HUB_REPOS: dict[str, str] = {"humaneval+": "evalplus/humanevalplus", "mbpp+": "evalplus/mbppplus"}
OPTIONS: dict[str, str] = {"humaneval+": "humanevalplus_file", "mbpp+": "mbppplus_file"}
# Where this project's test machines keep the release files, relative to the repository (a hint
# in error messages only: the library never reads it by default).
SHARED_HINT = "../shared/data/evalplus/"


@dataclass(frozen=True)
class PlusVersion:
    """One release of an EvalPlus dataset, identified as EvalPlus does: by the md5 of its
    uncompressed JSONL."""

    name: PlusName
    dataset: str  # EvalPlus's own name: "HumanEvalPlus" / "MbppPlus"
    version: str
    md5: str
    tasks: int

    @property
    def label(self) -> str:
        return f"{LABELS[self.name]} {self.version}"

    @property
    def cache_file(self) -> str:
        """The name the evalplus package caches the uncompressed file under."""
        return f"{self.dataset}-{self.version}.jsonl"

    @property
    def url(self) -> str:
        """Where the evalplus package downloads it (gzipped)."""
        return f"https://github.com/evalplus/{self.dataset.lower()}_release/releases/download/{self.version}/{self.dataset}.jsonl.gz"


KNOWN_VERSIONS: tuple[PlusVersion, ...] = (
    PlusVersion("humaneval+", "HumanEvalPlus", "v0.1.10", "fe585eb4df8c88d844eeb463ea4d0302", 164),
    PlusVersion("mbpp+", "MbppPlus", "v0.2.0", "ee43ecabebf20deef4bb776a405ac5b1", 378),
)
# The version looked for in the evalplus cache (what evalplus 0.3.1 uses).
CURRENT_VERSIONS: dict[str, PlusVersion] = {v.name: v for v in KNOWN_VERSIONS}


@dataclass(frozen=True)
class PlusData:
    """Rows of one EvalPlus dataset and where they came from.

    ``origin``: ``file:<path>`` or ``hub:<repo>``; ``found_by``: how the file was found (the
    given path, the override variable's name, ``evalplus cache``, or ``hub``). ``version`` and
    ``md5`` identify the data (None only for Hub rows, which have no file to hash).
    """

    name: PlusName
    rows: list[dict[str, Any]]
    origin: str
    found_by: str
    version: str | None
    md5: str | None

    def describe(self) -> str:
        """``origin`` with the version, as build summaries show it."""
        if self.version is None:
            return f"{self.origin} ({LABELS[self.name]}, version not verifiable)"
        return f"{self.origin} ({LABELS[self.name]} {self.version}, md5 {self.md5})"


# -- finding and checking the file ---------------------------------------------------------


def evalplus_cache_dir() -> Path:
    """The folder the evalplus package caches its datasets in: ``appdirs.user_cache_dir("evalplus")``
    (``$XDG_CACHE_HOME/evalplus`` or ``~/.cache/evalplus`` on Linux), without needing appdirs."""
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches" / "evalplus"
    if sys.platform == "win32":
        local = os.environ.get("LOCALAPPDATA") or str(Path.home() / "AppData" / "Local")
        return Path(local) / "evalplus" / "evalplus" / "Cache"
    xdg = os.environ.get("XDG_CACHE_HOME", "").strip()
    return Path(xdg).expanduser() / "evalplus" if xdg else Path.home() / ".cache" / "evalplus"


def _check_name(name: str) -> None:
    if name not in PLUS_NAMES:
        raise ValueError(f"unknown EvalPlus dataset {name!r}; expected one of {PLUS_NAMES}")


def how_to_provide(name: str) -> str:
    """Every way to give the loader the release file, for error messages (one line)."""
    _check_name(name)
    current = CURRENT_VERSIONS[name]
    option = OPTIONS[name]
    return (
        f"get {current.dataset}.jsonl.gz from {current.url} and pass its path (.jsonl or .jsonl.gz) as "
        f"SourceConfig.{option} / --{option.replace('_', '-')}, or set {OVERRIDE_ENV[name]} to it, or put it "
        f"uncompressed at {evalplus_cache_dir() / current.cache_file} (the evalplus package's cache); "
        f"this project's test machines keep the files in {SHARED_HINT}"
    )


def locate_plus_file(name: PlusName, path: str | os.PathLike[str] | None = None) -> tuple[Path, str] | None:
    """The release file to read and how it was found, in the evalplus package's order: ``path``
    if given, else the override variable (``HUMANEVAL_OVERRIDE_PATH`` / ``MBPP_OVERRIDE_PATH``),
    else the evalplus cache folder; None if none of them names a file. A path given explicitly
    or through the variable is returned even if missing, so reading it reports that."""
    _check_name(name)
    if path is not None:
        return Path(path), "given path"
    variable = OVERRIDE_ENV[name]
    if os.environ.get(variable, "").strip():
        return Path(os.environ[variable].strip()).expanduser(), variable
    cached = evalplus_cache_dir() / CURRENT_VERSIONS[name].cache_file
    for candidate in (cached, cached.with_name(cached.name + ".gz")):
        if candidate.is_file():
            return candidate, "evalplus cache"
    return None


def _uncompressed(path: Path) -> bytes:
    """The file's bytes, gunzipped when it is gzip data (whatever its name)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise DatasetFormatError(str(path), "no such file") from None
    except IsADirectoryError:
        raise DatasetFormatError(str(path), "is a folder, not a .jsonl / .jsonl.gz file") from None
    if data[:2] == b"\x1f\x8b":
        try:
            return gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as exc:
            raise DatasetFormatError(str(path), f"is not a valid gzip file ({exc})") from None
    return data


def dataset_hash(path: str | os.PathLike[str]) -> str:
    """EvalPlus's identifier of a dataset file: md5 hex of its uncompressed bytes (the same for
    ``X.jsonl`` and ``X.jsonl.gz``)."""
    return hashlib.md5(_uncompressed(Path(path))).hexdigest()


def version_of(md5: str) -> PlusVersion | None:
    """The known release with this dataset hash, or None."""
    return next((v for v in KNOWN_VERSIONS if v.md5 == md5), None)


def read_plus_file(name: PlusName, path: str | os.PathLike[str]) -> tuple[list[Record], PlusVersion]:
    """The records of a release file, after checking it is a known version of ``name``."""
    _check_name(name)
    path = Path(path)
    data = _uncompressed(path)
    md5 = hashlib.md5(data).hexdigest()
    version = version_of(md5)
    expected = ", ".join(f"{v.label} (md5 {v.md5})" for v in KNOWN_VERSIONS if v.name == name)
    if version is None:
        raise DatasetFormatError(
            str(path),
            f"unknown {LABELS[name]} version: the uncompressed file's md5 is {md5}, expected {expected}; {how_to_provide(name)}",
        )
    if version.name != name:
        raise DatasetFormatError(
            str(path), f"is {version.label} (md5 {md5}), not {LABELS[name]}: expected {expected}; {how_to_provide(name)}"
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:  # unreachable for a known hash, kept for safety
        raise DatasetFormatError(str(path), f"not UTF-8 text ({exc})") from None
    records = list(records_from_lines(str(path), text.split("\n")))
    if len(records) != version.tasks:
        raise DatasetFormatError(str(path), f"holds {len(records)} records, {version.label} has {version.tasks}")
    return records, version


# -- records to rows -----------------------------------------------------------------------


def _inputs_json(where: str, record: Mapping[str, Any], field: str) -> str:
    """The inputs as JSON text: a list with one list of positional arguments per call.

    ``json.dumps`` keeps ints of any size and writes inf as ``Infinity`` (MBPP+ Mbpp/404 has
    some), which ``json.loads`` reads back. An empty ``{}`` (MBPP+ v0.2.0's Mbpp/793 plus_input)
    means no inputs and becomes ``[]``.
    """
    value = record[field]
    if isinstance(value, dict) and not value:
        value = []
    if not isinstance(value, list) or not all(isinstance(args, list) for args in value):
        raise DatasetFormatError(where, "must be a list of argument lists (one per call)", field)
    return json.dumps(value)


def evalplus_columns(where: str, record: Mapping[str, Any], name: PlusName) -> dict[str, Any]:
    """The four EvalPlus columns of one release record, after checking the record has every
    field of ``name``'s release and a task id of its form."""
    _check_name(name)
    fields = RELEASE_FIELDS[name]
    for field in fields:
        if field not in record:
            other = next(n for n in PLUS_NAMES if n != name)
            hint = f" (it has {LABELS[other]}'s fields: wrong file?)" if all(f in record for f in RELEASE_FIELDS[other]) else ""
            raise DatasetFormatError(
                where, f"missing: expected the {LABELS[name]} release fields {list(fields)}{hint}; {how_to_provide(name)}", field
            )
    task_id = require(where, record, "task_id", str)
    if not re.fullmatch(TASK_ID_PATTERNS[name], task_id):
        raise DatasetFormatError(where, f"must look like {TASK_ID_PATTERNS[name]!r} in {LABELS[name]}, got {task_id!r}", "task_id")
    atol = record["atol"]
    if isinstance(atol, bool) or not isinstance(atol, (int, float)) or not math.isfinite(atol) or atol < 0:
        raise DatasetFormatError(where, f"must be a finite non-negative number, got {atol!r}", "atol")
    return {
        "base_inputs": _inputs_json(where, record, "base_input"),
        "plus_inputs": _inputs_json(where, record, "plus_input"),
        "atol": float(atol),
        "contract": require(where, record, "contract", str),
    }


def humanevalplus_row(where: str, record: Mapping[str, Any], bands: DifficultyBands) -> dict[str, Any]:
    """One row from one HumanEval+ record: as a HumanEval row (prompt as released, the original
    ``check`` split into tests, reference ``prompt + canonical_solution``) plus EvalPlus's columns."""
    extra = evalplus_columns(where, record, "humaneval+")
    plain = {k: v for k, v in record.items() if k in RELEASE_FIELDS["humaneval+"]}  # no optional HumanEval fields
    return humaneval_row(where, plain, source="humaneval+", bands=bands, extra=extra)


def mbppplus_row(where: str, record: Mapping[str, Any], bands: DifficultyBands) -> dict[str, Any]:
    """One row from one MBPP+ record.

    MBPP+'s ``prompt`` is a docstring holding the task's description and one example assert; the
    solver writes the whole program, and ``canonical_solution`` is that program. ``problem`` is
    the description, ``tests`` one per ``assert`` of ``assertion`` (imports there, e.g. ``import
    math``, are repeated in each test, as for MBPP sanitized's ``test_imports``).
    """
    extra = evalplus_columns(where, record, "mbpp+")
    prompt = require(where, record, "prompt", str)
    solution = require(where, record, "canonical_solution", str)
    entry_point = require(where, record, "entry_point", str)
    reference = prompt + solution
    try:
        tree = parse(reference)
    except SyntaxError as exc:
        raise DatasetFormatError(where, f"prompt + canonical_solution does not compile: {exc.msg} (line {exc.lineno})", "canonical_solution") from None
    func = top_level_function(tree, entry_point) if entry_point.isidentifier() else None
    if func is None:
        raise DatasetFormatError(where, f"no top-level function {entry_point!r} in prompt + canonical_solution", "entry_point")
    problem = _description(where, tree)
    tests, setup = _assert_tests(where, normalise_newlines(require(where, record, "assertion", str)))
    code = parse(solution)
    imports = "".join(ast.get_source_segment(solution, s) + "\n" for s in code.body if isinstance(s, (ast.Import, ast.ImportFrom)))
    reference_lines = code_lines(solution)
    return make_row(
        where,
        task_id=record["task_id"],
        source="mbpp+",
        split=PLUS_SPLIT,
        entry_point=entry_point,
        signature=signature_of(func),
        problem=problem,
        prompt=prompt,
        context=imports,
        reference_solution=reference,
        tests=tests,
        test_setup=setup,
        challenge_tests=[],
        category="",
        difficulty=bands.label(reference_lines),
        reference_lines=reference_lines,
        **extra,
    )


def _description(where: str, tree: ast.Module) -> str:
    """The module docstring's text before its first ``assert`` line (MBPP+'s example test)."""
    doc = ast.get_docstring(tree)
    if not doc:
        raise DatasetFormatError(where, "must be a docstring stating the task", "prompt")
    lines = inspect.cleandoc(doc).splitlines()
    first_assert = next((i for i, line in enumerate(lines) if line.lstrip().startswith("assert ")), len(lines))
    description = "\n".join(lines[:first_assert]).strip()
    if not description:
        raise DatasetFormatError(where, "holds no description before its example assert", "prompt")
    return description


def _assert_tests(where: str, assertion: str) -> tuple[list[str], str]:
    """(tests, setup) from MBPP+'s ``assertion``: one test per top-level ``assert``, each
    preceded by the imports of ``assertion``; other statements before the first assert become
    setup. Anything else after an assert might change what later asserts see, so then the
    whole ``assertion`` is one test.

    A standard-library module the asserts use but never import (v0.2.0's Mbpp/120 calls
    ``math.isclose`` without ``import math``) is imported too: otherwise the tests would pass or
    fail depending on whether the *candidate* happened to import it.
    """
    try:
        tree = parse(assertion)
    except SyntaxError as exc:
        raise DatasetFormatError(where, f"does not compile: {exc.msg} (line {exc.lineno})", "assertion") from None
    imports = [f"import {module}\n" for module in _unimported_modules(tree)]
    setup: list[str] = []
    asserts: list[str] = []
    for stmt in tree.body:
        text = ast.get_source_segment(assertion, stmt, padded=False) or ast.unparse(stmt)
        if isinstance(stmt, (ast.Import, ast.ImportFrom)):
            imports.append(text + "\n")
        elif isinstance(stmt, ast.Assert):
            if not (isinstance(stmt.test, ast.Constant) and stmt.test.value):  # `assert True` tests nothing
                asserts.append(text.strip() + "\n")
        elif not asserts:
            setup.append(text + "\n")
        else:
            return [assertion.strip() + "\n"], ""
    if not asserts:
        raise DatasetFormatError(where, "holds no assert", "assertion")
    prefix = "".join(imports)
    return [prefix + test for test in asserts], "".join(setup)


def _unimported_modules(tree: ast.Module) -> list[str]:
    """Standard-library modules the code reads by name without binding the name anywhere."""
    loaded = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
    bound = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and not isinstance(n.ctx, ast.Load)}
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            bound.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bound.add(node.name)
    return sorted(name for name in loaded - bound if name in sys.stdlib_module_names and not hasattr(builtins, name))


_ROW_BUILDERS = {"humaneval+": humanevalplus_row, "mbpp+": mbppplus_row}


def plus_rows(records: list[Record], name: PlusName, bands: DifficultyBands | None = None) -> list[dict[str, Any]]:
    """Rows from release records of ``name`` (task ids must be unique)."""
    _check_name(name)
    bands = bands or DifficultyBands()
    build = _ROW_BUILDERS[name]
    return reject_duplicate_ids([(where, build(where, record, bands)) for where, record in records])


# -- loading -------------------------------------------------------------------------------


def load_plus_rows(
    name: PlusName,
    path: str | os.PathLike[str] | None = None,
    use_hub: bool = True,
    *,
    hub_repo: str | None = None,
    hub_timeout_s: float = 5.0,
    bands: DifficultyBands | None = None,
) -> PlusData:
    """Rows of HumanEval+ or MBPP+ with where they came from and which version they are.

    The release file is ``path``, else the file named by the evalplus override variable, else
    the one in the evalplus cache folder (``locate_plus_file``); it must be a known version
    (``KNOWN_VERSIONS``). Without a file, the Hub (``hub_repo``, default ``HUB_REPOS[name]``) is
    tried when ``use_hub``; its copies hold the tests as code rather than the inputs as data,
    which raises DatasetFormatError saying how to get the release file instead, as does
    finding nothing at all.
    """
    _check_name(name)
    bands = bands or DifficultyBands()
    located = locate_plus_file(name, path)
    if located is not None:
        file, found_by = located
        records, version = read_plus_file(name, file)
        data = PlusData(name, plus_rows(records, name, bands), f"file:{file}", found_by, version.version, version.md5)
        logger.info("%s: using %s (found by %s)", name, data.describe(), found_by)
        return data
    repo = hub_repo or HUB_REPOS[name]
    by_split = load_hub_rows(repo, None, timeout_s=hub_timeout_s) if use_hub else None
    if by_split is None:
        hub = f"the Hub ({repo}) was not reachable" if use_hub else "the Hub was not tried"
        raise DatasetFormatError(
            LABELS[name], f"no release file given, {OVERRIDE_ENV[name]} unset, none in the evalplus cache, and {hub}; {how_to_provide(name)}"
        )
    records = [record for split_records in by_split.values() for record in split_records]
    columns = sorted(records[0][1]) if records else []
    if not {"base_input", "plus_input"} <= set(columns):
        raise DatasetFormatError(
            repo,
            f"the Hub copy of {LABELS[name]} holds the tests as code (columns {columns}), not EvalPlus's base/plus "
            f"inputs as data, so it cannot be used; {how_to_provide(name)}",
        )
    logger.warning("%s: using %s, whose version cannot be checked (no release file to hash)", name, repo)
    return PlusData(name, plus_rows(records, name, bands), f"hub:{repo}", "hub", None, None)


# -- the subtly wrong programs of the discriminator benchmark ----------------------------------
SUBTLE_VERSION = 1


def subtle_file(name: PlusName, version: int = SUBTLE_VERSION) -> Path:
    """The packaged set of subtly wrong programs (right on the base inputs, wrong on a plus input) of
    HumanEval+ or MBPP+, built by ``scripts/build_subtle_set.py``: fixed per version, so every model is
    measured on the same programs."""
    _check_name(name)
    stem = name.replace("+", "plus")
    return Path(str(importlib.resources.files("datasets_build") / "data" / f"evalplus-subtle-{stem}-v{version}.jsonl.gz"))


def load_subtle(name: PlusName, version: int = SUBTLE_VERSION) -> list[dict[str, str]]:
    """The records (``task_id``, ``program``, ``mutation``) of ``subtle_file``."""
    path = subtle_file(name, version)
    if not path.is_file():
        raise DatasetFormatError(str(path), f"no subtly wrong programs of {LABELS[name]} version {version}; build them "
                                            f"with scripts/build_subtle_set.py --dataset {name} --version {version}")
    records = [json.loads(line) for line in gzip.decompress(path.read_bytes()).splitlines() if line.strip()]
    for number, record in enumerate(records, 1):
        if not all(isinstance(record.get(key), str) for key in ("task_id", "program", "mutation")):
            raise DatasetFormatError(f"{path}:{number}", "needs string fields task_id, program and mutation")
    return records
