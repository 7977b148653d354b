"""HumanEval+ and MBPP+ (EvalPlus, Liu et al. 2023) as schema rows: the loader.

EvalPlus keeps each task of HumanEval / MBPP and adds many test *inputs* (``plus_input``) to the
original ones (``base_input``); a solution is judged by comparing its outputs on them with the
canonical solution's. ``load_plus_rows`` finds a release file, checks its version and turns its
records into rows. The copy this package ships is found after every place the evalplus package
looks, so the Hub is tried only by an install without its data, and only to say why that copy cannot
serve.

The work is split by job: ``evalplus_release`` finds and verifies the release files the way the ``evalplus``
package does (versions are the md5 of the uncompressed JSONL, ``KNOWN_VERSIONS`` only);
``evalplus_rows`` turns their records into rows; ``evalplus_subtle`` holds the packaged subtly
wrong programs of the discriminator benchmark.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any

from .evalplus_release import (
    LABELS,
    OVERRIDE_ENV,
    PlusName,
    check_name,
    how_to_provide,
    locate_plus_file,
    read_plus_file,
)
from .evalplus_rows import plus_rows
from .hub import load_hub_rows
from .schema import DatasetFormatError, DifficultyBands

logger = logging.getLogger(__name__)

# The Hub copies: they hold the tests as code, not the inputs as data (see load_plus_rows).
HUB_REPOS: dict[str, str] = {"humaneval+": "evalplus/humanevalplus", "mbpp+": "evalplus/mbppplus"}


@dataclass(frozen=True)
class PlusData:
    """Rows of one EvalPlus dataset and where they came from.

    ``origin``: ``file:<path>`` or ``hub:<repo>``; ``found_by``: how the file was found (the
    given path, the override variable's name, ``evalplus cache``, ``packaged copy``, or ``hub``). ``version`` and
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
    the one in the evalplus cache folder, else the copy shipped in ``datasets_build/data/``
    (``locate_plus_file``; its sha256 is checked on every read); it must be a known version
    (``KNOWN_VERSIONS``). Without a file (an install that lost its data), the Hub (``hub_repo``,
    default ``HUB_REPOS[name]``) is tried when ``use_hub``; its copies hold the tests as code rather
    than the inputs as data, which raises DatasetFormatError saying how to get the release file
    instead, as does finding nothing at all.
    """
    check_name(name)
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
            LABELS[name], f"no release file given, {OVERRIDE_ENV[name]} unset, none in the evalplus cache, no packaged copy, and {hub}; "
            f"{how_to_provide(name)}",
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
