"""EvalPlus's release files of HumanEval+ and MBPP+: finding one, reading it, checking its version.

Kept apart from turning records into rows (``evalplus_rows``) because this is the part that must
match the ``evalplus`` package itself: it looks for the file where that package does
(``locate_plus_file``) and names a version as it does, by the md5 of the uncompressed JSONL
(``dataset_hash``). Only versions in ``KNOWN_VERSIONS`` are read, so results always say which data
they are on, and every failure says how to provide the right file (``how_to_provide``).

The current release files also ship with this package (``data/``, Apache-2.0, attribution in
``data/README.md``), found after every place the evalplus package looks, so that a fresh clone
evaluates on HumanEval+ / MBPP+ offline. A packaged copy is read only if its bytes are the release's
(sha256 of the ``.gz``, ``PACKAGED_SHA256``): a damaged install is an error, never silently other data.
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.resources
import os
import sys
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from .jsonl import Record, records_from_lines
from .schema import DatasetFormatError

PlusName = Literal["humaneval+", "mbpp+"]
PLUS_NAMES: tuple[PlusName, ...] = ("humaneval+", "mbpp+")
LABELS: dict[str, str] = {"humaneval+": "HumanEval+", "mbpp+": "MBPP+"}
# The environment variables the evalplus package reads instead of its cache (an uncompressed .jsonl).
OVERRIDE_ENV: dict[str, str] = {"humaneval+": "HUMANEVAL_OVERRIDE_PATH", "mbpp+": "MBPP_OVERRIDE_PATH"}
OPTIONS: dict[str, str] = {"humaneval+": "humanevalplus_file", "mbpp+": "mbppplus_file"}
# How ``locate_plus_file`` names the copy that ships in datasets_build/data/.
PACKAGED = "packaged copy"
# sha256 of the packaged .gz files, the release files exactly as published (datasets_build/data/README.md).
PACKAGED_SHA256: dict[str, str] = {
    "humaneval+": "272720b90ac375502c8ed23cd791c2a93dfb22a911641a494da74a426c09f101",
    "mbpp+": "af43697e8791c4c149bdfd6b489d8b5412507551ac20e28a439f650b8225db63",
}


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


def check_name(name: str) -> None:
    """Raise ValueError unless ``name`` is one of ``PLUS_NAMES``."""
    if name not in PLUS_NAMES:
        raise ValueError(f"unknown EvalPlus dataset {name!r}; expected one of {PLUS_NAMES}")


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


def packaged_file(name: str) -> Path:
    """The copy of ``name``'s current release file that ships with ``datasets_build`` (gzipped as released)."""
    check_name(name)
    current = CURRENT_VERSIONS[name]
    return Path(str(importlib.resources.files("datasets_build") / "data" / f"{current.dataset}-{current.version}.jsonl.gz"))


def _ways_to_give(name: str) -> str:
    """The ways a user gives the release file (the places the evalplus package reads it from)."""
    current = CURRENT_VERSIONS[name]
    option = OPTIONS[name]
    return (
        f"get {current.dataset}.jsonl.gz from {current.url} and pass its path (.jsonl or .jsonl.gz) as "
        f"SourceConfig.{option} / --{option.replace('_', '-')}, or set {OVERRIDE_ENV[name]} to it, or put it "
        f"uncompressed at {evalplus_cache_dir() / current.cache_file} (the evalplus package's cache)"
    )


def how_to_provide(name: str) -> str:
    """Every way to give the loader the release file, for error messages (one line)."""
    check_name(name)
    return (
        f"{_ways_to_give(name)}; without any of these the copy datasets_build ships is read "
        f"({packaged_file(name)}: reinstall the package to restore it)"
    )


def locate_plus_file(name: PlusName, path: str | os.PathLike[str] | None = None) -> tuple[Path, str] | None:
    """The release file to read and how it was found, in the evalplus package's order: ``path``
    if given, else the override variable (``HUMANEVAL_OVERRIDE_PATH`` / ``MBPP_OVERRIDE_PATH``),
    else the evalplus cache folder; then, where evalplus would download, the copy this package ships
    (``packaged_file``, found as ``PACKAGED``); None if none of them names a file (an install without
    its data). A path given explicitly or through the variable is returned even if missing, so
    reading it reports that."""
    check_name(name)
    if path is not None:
        return Path(path), "given path"
    variable = OVERRIDE_ENV[name]
    if os.environ.get(variable, "").strip():
        return Path(os.environ[variable].strip()).expanduser(), variable
    cached = evalplus_cache_dir() / CURRENT_VERSIONS[name].cache_file
    for candidate in (cached, cached.with_name(cached.name + ".gz")):
        if candidate.is_file():
            return candidate, "evalplus cache"
    packaged = packaged_file(name)
    return (packaged, PACKAGED) if packaged.is_file() else None


def _uncompressed(path: Path) -> bytes:
    """The file's bytes, gunzipped when it is gzip data (whatever its name); a packaged copy only
    after its sha256 is checked (``_check_packaged``)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise DatasetFormatError(str(path), "no such file") from None
    except IsADirectoryError:
        raise DatasetFormatError(str(path), "is a folder, not a .jsonl / .jsonl.gz file") from None
    _check_packaged(path, data)
    if data[:2] == b"\x1f\x8b":
        try:
            return gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as exc:
            raise DatasetFormatError(str(path), f"is not a valid gzip file ({exc})") from None
    return data


def _check_packaged(path: Path, data: bytes) -> None:
    """Raise DatasetFormatError if ``path`` is one of the packaged copies and ``data`` are not the
    release file's bytes. Checked on the compressed bytes, before anything is decoded, so a
    truncated or edited copy says it is damaged rather than failing later as some other version
    or as bad gzip; a file the user names elsewhere is judged by its version alone."""
    for name in PLUS_NAMES:
        packaged = packaged_file(name)
        if path.resolve() != packaged.resolve():
            continue
        digest = hashlib.sha256(data).hexdigest()
        if digest != PACKAGED_SHA256[name]:
            raise DatasetFormatError(
                str(path),
                f"the packaged {CURRENT_VERSIONS[name].label} release file is damaged ({len(data)} bytes, sha256 {digest}, "
                f"not the release's {PACKAGED_SHA256[name]}); reinstall the package (or git checkout the file), or "
                f"{_ways_to_give(name)}",
            )


def dataset_hash(path: str | os.PathLike[str]) -> str:
    """EvalPlus's identifier of a dataset file: md5 hex of its uncompressed bytes (the same for
    ``X.jsonl`` and ``X.jsonl.gz``)."""
    return hashlib.md5(_uncompressed(Path(path))).hexdigest()


def version_of(md5: str) -> PlusVersion | None:
    """The known release with this dataset hash, or None."""
    return next((v for v in KNOWN_VERSIONS if v.md5 == md5), None)


def read_plus_file(name: PlusName, path: str | os.PathLike[str]) -> tuple[list[Record], PlusVersion]:
    """The records of a release file, after checking it is a known version of ``name``."""
    check_name(name)
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
