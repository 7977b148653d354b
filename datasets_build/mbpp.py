"""MBPP (Austin et al., 2021) records to schema rows, from the Hub or the original JSONL release.

MBPP gives a one-sentence statement, a reference ``code`` (``\\r\\n`` line endings in the
release), three assert lines and sometimes setup code; it names no entry point, so the entry
point is the function the asserts call. Official splits are fixed by task id, which lets the
local file reproduce the Hub's splits exactly.

The original release (974 tasks, CC BY 4.0) ships with this package, gzipped
(``data/mbpp.jsonl.gz``, attribution in ``data/README.md``), so that a machine without the Hub and
without a copy of its own still builds MBPP: the Hub stays the first choice when it is reachable.
"""

from __future__ import annotations

import ast
import gzip
import hashlib
import importlib.resources
import logging
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .hub import load_hub_rows
from .jsonl import Record, read_records, require, require_strings
from .pysource import code_lines, docstring_literal, normalise_newlines, parse, signature_of
from .schema import DatasetFormatError, DifficultyBands, make_row, reject_duplicate_ids

logger = logging.getLogger(__name__)

# sha256 of the uncompressed original release (as published with its README), checked on every packaged read.
RELEASE_SHA256 = "143559fa164408d45cab058238471288b0e447507ce55db3057c56113d9dccb4"


def packaged_release() -> Path:
    """The original MBPP release that ships with this package (gzipped JSONL)."""
    return Path(str(importlib.resources.files("datasets_build") / "data" / "mbpp.jsonl.gz"))


def _checked_release() -> Path:
    path = packaged_release()
    try:
        digest = hashlib.sha256(gzip.decompress(path.read_bytes())).hexdigest()
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise DatasetFormatError(str(path), f"the packaged MBPP release cannot be read ({exc}); reinstall the "
                                            "package or pass --mbpp_file") from exc
    if digest != RELEASE_SHA256:
        raise DatasetFormatError(str(path), f"the packaged MBPP release has sha256 {digest}, not the original "
                                            f"release's {RELEASE_SHA256}; reinstall the package or pass --mbpp_file")
    return path


# (split, first task id, last task id), as documented with the release.
MBPP_SPLITS = (("prompt", 1, 10), ("test", 11, 510), ("validation", 511, 600), ("train", 601, 974))


@dataclass(frozen=True)
class _Fields:
    """The fields one MBPP config names differently."""

    text: str
    required: tuple[str, ...]


_CONFIG_FIELDS = {
    "full": _Fields("text", ("task_id", "text", "code", "test_list", "test_setup_code", "challenge_test_list")),
    "sanitized": _Fields("prompt", ("task_id", "prompt", "code", "test_list", "test_imports")),
}


def official_split(where: str, task_id: int) -> str:
    for split, first, last in MBPP_SPLITS:
        if first <= task_id <= last:
            return split
    raise DatasetFormatError(where, f"{task_id} is outside MBPP's ids 1-974, so it has no official split", "task_id")


def mbpp_row(where: str, record: dict[str, Any], *, config: str, split: str, bands: DifficultyBands) -> dict[str, Any]:
    """One schema row from one MBPP record of config ``full`` or ``sanitized``."""
    names = _CONFIG_FIELDS[config]
    for name in names.required:
        if name not in record:
            raise DatasetFormatError(where, f"missing (expected MBPP '{config}' fields {list(names.required)})", name)
    task_id = require(where, record, "task_id", int)
    text = require(where, record, names.text, str).strip()
    code = normalise_newlines(require(where, record, "code", str)).rstrip() + "\n"
    tests = [_clean_test(t) for t in require_strings(where, record, "test_list")]
    if config == "full":
        setup = normalise_newlines(require(where, record, "test_setup_code", str))
        challenge = [_clean_test(t) for t in require_strings(where, record, "challenge_test_list")]
    else:
        # Sanitized tasks list the imports their asserts need separately; each test carries them.
        imports = "".join(line + "\n" for line in require_strings(where, record, "test_imports"))
        setup, challenge, tests = "", [], [imports + t for t in tests]
    if not text:
        raise DatasetFormatError(where, "is empty", names.text)
    try:
        tree = parse(code)
    except SyntaxError as exc:
        raise DatasetFormatError(where, f"does not compile: {exc.msg} (line {exc.lineno})", "code") from None
    func = _entry_function(where, tree, tests)
    imports_text = "".join(ast.get_source_segment(code, s) + "\n" for s in tree.body if isinstance(s, (ast.Import, ast.ImportFrom)))
    signature = signature_of(func)
    doc = docstring_literal(f"{text}\n\nYour code should pass this test:\n{tests[0]}", "    ")
    reference_lines = code_lines(code)
    return make_row(
        where,
        task_id=f"MBPP/{task_id}",
        source="mbpp" if config == "full" else "mbpp-sanitized",
        split=split,
        entry_point=func.name,
        signature=signature,
        problem=text,
        prompt=(imports_text + "\n\n" if imports_text else "") + signature + "\n" + doc,
        context=imports_text,
        reference_solution=code,
        tests=tests,
        test_setup=setup,
        challenge_tests=challenge,
        category="",
        difficulty=bands.label(reference_lines),
        reference_lines=reference_lines,
    )


def _clean_test(test: str) -> str:
    """One test source ending in exactly one newline, like the HumanEval-derived tests (MBPP's
    asserts carry stray trailing blanks and ``\\r\\n``)."""
    return normalise_newlines(test).strip() + "\n"


def _entry_function(where: str, tree: ast.Module, tests: list[str]) -> ast.FunctionDef | ast.AsyncFunctionDef:
    """The top-level function the tests call most (first called on ties). Classes the tests
    also build (task 601's ``Pair``) are helpers, not the entry point."""
    functions = {s.name: s for s in tree.body if isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef))}
    if not tests:
        raise DatasetFormatError(where, "is empty", "test_list")
    calls: Counter[str] = Counter()
    for index, test in enumerate(tests):
        try:
            test_tree = parse(test)
        except SyntaxError as exc:
            raise DatasetFormatError(where, f"test {index} does not compile: {exc.msg}", "test_list") from None
        calls.update(n.func.id for n in ast.walk(test_tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id in functions)
    if not calls:
        raise DatasetFormatError(where, f"calls none of the functions 'code' defines ({sorted(functions)})", "test_list")
    return functions[calls.most_common(1)[0][0]]


def mbpp_rows(records_by_split: dict[str | None, list[Record]], *, config: str, bands: DifficultyBands) -> list[dict[str, Any]]:
    """Rows from records grouped by split; records under ``None`` get their official split."""
    located = []
    for split, records in records_by_split.items():
        for where, record in records:
            task_split = split or official_split(where, require(where, record, "task_id", int))
            located.append((where, mbpp_row(where, record, config=config, split=task_split, bands=bands)))
    return reject_duplicate_ids(located)


def load_mbpp(
    config: str,
    *,
    repo: str,
    local_file: str | Path | None,
    use_hub: bool,
    hub_timeout_s: float,
    bands: DifficultyBands,
) -> tuple[list[dict[str, Any]], str]:
    """MBPP rows of one config and where they came from: the Hub when reachable, else ``local_file``, else (for
    ``full``) the release packaged with ``datasets_build``."""
    source = "mbpp" if config == "full" else "mbpp-sanitized"
    by_split: dict[str | None, list[Record]] | None = None
    if use_hub:
        hub = load_hub_rows(repo, config, timeout_s=hub_timeout_s)
        by_split = dict(hub) if hub is not None else None
    if by_split is not None:
        origin = f"hub:{repo}"
    elif local_file is None and config == "full":
        release = _checked_release()
        by_split, origin = {None: read_records(release)}, f"package:datasets_build/data/{release.name}"
    elif local_file is None:
        raise DatasetFormatError(source, f"the Hub ({repo}) is not reachable and no local file was given "
                                         "(--mbpp-sanitized-file)")
    else:
        by_split, origin = {None: read_records(local_file)}, f"file:{local_file}"
    logger.info("%s: using %s", source, origin)
    return mbpp_rows(by_split, config=config, bands=bands), origin
