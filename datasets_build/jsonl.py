"""Reading JSON Lines files (plain or gzipped) with errors that name the file and line."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .schema import DatasetFormatError

Record = tuple[str, dict[str, Any]]  # (where: "file:line", the JSON object)


def read_records(path: str | Path) -> list[Record]:
    """Every non-blank line of a ``.jsonl`` / ``.jsonl.gz`` file as a JSON object.

    Raises DatasetFormatError for a missing file, a file that is not UTF-8 text, a line that is
    not JSON, or a line that holds something other than an object (e.g. a JSON array file).
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetFormatError(str(path), "no such file")
    return list(_records(path))


def _records(path: Path) -> Iterator[Record]:
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt", encoding="utf-8") as handle:
            lines = handle.readlines()
    except (UnicodeDecodeError, gzip.BadGzipFile, EOFError) as exc:
        raise DatasetFormatError(str(path), f"not a UTF-8 JSON Lines file ({exc})") from None
    yield from records_from_lines(str(path), lines)


def records_from_lines(name: str, lines: list[str]) -> Iterator[Record]:
    """The JSON object on each non-blank line, located as ``name:line``."""
    for number, line in enumerate(lines, start=1):
        where = f"{name}:{number}"
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            hint = " (the file looks like one JSON document; expected one object per line)" if number == 1 and line.lstrip().startswith("[") else ""
            raise DatasetFormatError(where, f"not valid JSON: {exc.msg} at column {exc.colno}{hint}") from None
        if not isinstance(value, dict):
            raise DatasetFormatError(where, f"expected a JSON object per line, got {type(value).__name__}")
        yield where, value


def require(where: str, record: dict[str, Any], name: str, kind: type | tuple[type, ...]) -> Any:
    """``record[name]``, checked to exist and have type ``kind``; DatasetFormatError otherwise."""
    if name not in record:
        raise DatasetFormatError(where, "missing", name)
    value = record[name]
    if isinstance(value, bool) and kind is int or not isinstance(value, kind):
        expected = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise DatasetFormatError(where, f"must be {expected}, got {type(value).__name__}", name)
    return value


def require_strings(where: str, record: dict[str, Any], name: str) -> list[str]:
    """``record[name]`` checked to be a list of strings (Hub rows may hold tuples or arrays)."""
    value = require(where, record, name, (list, tuple))
    if not all(isinstance(item, str) for item in value):
        raise DatasetFormatError(where, "must be a list of strings", name)
    return list(value)
