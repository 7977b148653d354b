"""Problems for training and evaluation, in one schema, with references verified in the sandbox.

Sources: HumanEval, MBPP (``full`` / ``sanitized``), the project's HumanEval-mini, or any JSONL in
HumanEval's format. ``SCHEMA.md`` documents the columns. Build with ``python -m datasets_build``.
"""

from .build import BuildConfig, BuildReport, build, build_with_report
from .contamination import ContaminationConfig, ContaminationError, Overlap, check_contamination, find_overlaps
from .loading import DefaultSplits, load_problems
from .schema import COLUMNS, FEATURES, DatasetFormatError, DifficultyBands, split_key
from .sources import SOURCE_NAMES, SourceConfig, UnknownSourceError

__all__ = [
    "BuildConfig",
    "BuildReport",
    "build",
    "build_with_report",
    "ContaminationConfig",
    "ContaminationError",
    "Overlap",
    "check_contamination",
    "find_overlaps",
    "DefaultSplits",
    "load_problems",
    "COLUMNS",
    "FEATURES",
    "DatasetFormatError",
    "DifficultyBands",
    "split_key",
    "SOURCE_NAMES",
    "SourceConfig",
    "UnknownSourceError",
]
