"""Where rows come from: named sources (Hub with local fallback, or EvalPlus's release files) or
a user's JSONL by path."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .evalplus import HUB_REPOS, load_plus_rows
from .evalplus_release import PLUS_NAMES, dataset_hash, read_plus_file, version_of
from .humaneval import humaneval_rows, load_humaneval
from .jsonl import read_records
from .mbpp import load_mbpp, mbpp_rows
from .mini import load_mini
from .schema import DatasetFormatError, DifficultyBands

SOURCE_NAMES = ("humaneval", "mbpp", "mbpp-sanitized", "humaneval-mini", "humaneval+", "mbpp+")


class UnknownSourceError(DatasetFormatError):
    """A source that is neither a known name nor an existing file."""


@dataclass
class SourceConfig:
    """Where to read each source from.

    Attributes:
        use_hub: try the Hugging Face Hub first (skipped anyway when ``HF_HUB_OFFLINE=1``).
        hub_timeout_s: how long the reachability probe may take before falling back.
        humaneval_repo / humaneval_config: the Hub dataset (or a local folder shaped like it).
        mbpp_repo: the Hub dataset for both MBPP configs (or a local folder shaped like it).
        mbpp_file: MBPP ``full`` in the original JSONL release format, used when the Hub is not.
        mbpp_sanitized_file: MBPP ``sanitized`` as JSONL (fields of the Hub's ``sanitized`` config).
        humanevalplus_file: HumanEval+'s EvalPlus release file (``HumanEvalPlus-v0.1.10.jsonl`` or
            ``.jsonl.gz``). If None: the file named by ``HUMANEVAL_OVERRIDE_PATH``, else the one in
            the evalplus package's cache (``~/.cache/evalplus/HumanEvalPlus-v0.1.10.jsonl``), else
            the copy shipped in ``datasets_build/data/`` (sha256-checked). Only known versions are accepted (``evalplus_release.KNOWN_VERSIONS``).
        mbppplus_file: the same for MBPP+ (``MbppPlus-v0.2.0.jsonl[.gz]``, ``MBPP_OVERRIDE_PATH``).
        humanevalplus_repo / mbppplus_repo: Hub datasets tried when no file is found (an install
            without its packaged data); the official
            ones hold the tests as code, not the inputs, so they are refused with a message
            saying how to get the release file.
        difficulty: bands that label rows whose source states no difficulty.
    """

    use_hub: bool = True
    hub_timeout_s: float = 5.0
    humaneval_repo: str = "openai/openai_humaneval"
    humaneval_config: str = "openai_humaneval"
    mbpp_repo: str = "google-research-datasets/mbpp"
    mbpp_file: str | None = None
    mbpp_sanitized_file: str | None = None
    humanevalplus_file: str | None = None
    mbppplus_file: str | None = None
    humanevalplus_repo: str = HUB_REPOS["humaneval+"]
    mbppplus_repo: str = HUB_REPOS["mbpp+"]
    difficulty: DifficultyBands = field(default_factory=DifficultyBands)

    def __post_init__(self) -> None:
        if not self.hub_timeout_s > 0:
            raise ValueError("SourceConfig.hub_timeout_s must be positive")


def load_source(name_or_path: str, config: SourceConfig) -> tuple[list[dict[str, Any]], str]:
    """Rows of one source and a description of where they were read from (``hub:...`` or
    ``file:...``). A path to a ``.jsonl``/``.jsonl.gz`` file is read as HumanEval format, as
    MBPP format when its first record has MBPP's ``test_list``, or as HumanEval+ / MBPP+ when
    it is one of their known releases."""
    bands = config.difficulty
    hub = {"use_hub": config.use_hub, "hub_timeout_s": config.hub_timeout_s, "bands": bands}
    if name_or_path == "humaneval":
        return load_humaneval(config.humaneval_repo, config.humaneval_config, **hub)
    if name_or_path == "mbpp":
        return load_mbpp("full", repo=config.mbpp_repo, local_file=config.mbpp_file, **hub)
    if name_or_path == "mbpp-sanitized":
        return load_mbpp("sanitized", repo=config.mbpp_repo, local_file=config.mbpp_sanitized_file, **hub)
    if name_or_path == "humaneval-mini":
        return load_mini(bands)
    if name_or_path in PLUS_NAMES:
        file, repo = (
            (config.humanevalplus_file, config.humanevalplus_repo) if name_or_path == "humaneval+" else (config.mbppplus_file, config.mbppplus_repo)
        )
        data = load_plus_rows(name_or_path, file, config.use_hub, hub_repo=repo, hub_timeout_s=config.hub_timeout_s, bands=bands)
        return data.rows, data.describe()
    path = Path(name_or_path)
    if not path.is_file() or not path.name.endswith((".jsonl", ".jsonl.gz")):
        raise UnknownSourceError(
            name_or_path, f"unknown source: expected one of {SOURCE_NAMES} or the path of an existing .jsonl/.jsonl.gz file"
        )
    version = version_of(dataset_hash(path))
    if version is not None:
        data = load_plus_rows(version.name, path, False, bands=bands)
        return data.rows, data.describe()
    records = read_records(path)
    if not records:
        raise DatasetFormatError(str(path), "holds no records")
    if "plus_input" in records[0][1]:
        # An EvalPlus file of an unknown version: read_plus_file says which versions are known.
        read_plus_file("mbpp+" if "assertion" in records[0][1] else "humaneval+", path)
    source = path.name.removesuffix(".gz").removesuffix(".jsonl")
    if "test_list" in records[0][1]:
        rows = mbpp_rows({None: records}, config="full" if "text" in records[0][1] else "sanitized", bands=bands)
    else:
        rows = humaneval_rows(records, source=source, bands=bands)
    return rows, f"file:{path}"
