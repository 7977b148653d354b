"""Problems for training and evaluation, in one schema, with references verified in the sandbox.

Sources: HumanEval, MBPP (``full`` / ``sanitized``), the project's HumanEval-mini, HumanEval+ and
MBPP+ (EvalPlus's release files, with their test inputs), or any JSONL in HumanEval's format.
``SCHEMA.md`` documents the columns. Build with ``python -m datasets_build``.
"""

from .build import BuildConfig, BuildReport, build, build_with_report
from .contamination import ContaminationConfig, ContaminationError, Overlap, check_contamination, find_overlaps, task_identity
from .evalplus import PlusData, load_plus_rows
from .evalplus_release import KNOWN_VERSIONS, PlusVersion, dataset_hash
from .loading import DefaultSplits, require_tasks, load_problems, read_task_ids
from .selection import DataSelectionError, TrainingData, dataset_folder, training_problems
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
    "task_identity",
    "KNOWN_VERSIONS",
    "PlusData",
    "PlusVersion",
    "dataset_hash",
    "load_plus_rows",
    "DefaultSplits",
    "load_problems",
    "require_tasks",
    "read_task_ids",
    "COLUMNS",
    "FEATURES",
    "DatasetFormatError",
    "DifficultyBands",
    "split_key",
    "SOURCE_NAMES",
    "SourceConfig",
    "UnknownSourceError",
    "DataSelectionError",
    "TrainingData",
    "dataset_folder",
    "training_problems",
]
