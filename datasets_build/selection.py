"""The training problems of a run: the verified datasets, built once and cached, then selected.

``TrainingData`` is the part of a recipe that says which problems a run trains on (every ``train.py``
mode shares it); ``training_problems`` builds the verified DatasetDict once per MBPP source into a cache
folder (the main process builds, the others wait), checks the training rows against the evaluation rows
for contamination, applies the filters, and gives each row the short ``prompt`` TRL hands the rollout.
Every problem with the selection is a ``DataSelectionError`` whose message says what to change.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import tempfile
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from datasets import Dataset, concatenate_datasets

from .build import BuildConfig, build_with_report
from .contamination import ContaminationError, check_contamination
from .loading import DefaultSplits, load_problems, read_task_ids, require_tasks
from .schema import DatasetFormatError
from .sources import SourceConfig

logger = logging.getLogger(__name__)


class DataSelectionError(ValueError):
    """A data selection that cannot give training problems; raised before any model is loaded."""


@dataclass
class TrainingData:
    """Which problems a run trains on, and where the verified datasets come from."""

    dataset_dir: str | None = field(
        default=None, metadata={"help": "A DatasetDict folder written by `python -m datasets_build`; "
                                        "None = build it once into dataset_cache_dir."})
    dataset_cache_dir: str | None = field(
        default=None, metadata={"help": "Where built datasets are cached (default: $DUELCODER_CACHE/datasets)."})
    mbpp_file: str | None = field(
        default=None, metadata={"help": "MBPP's original JSONL release, used when the Hub is unreachable (default: "
                                        "the copy packaged with datasets_build)."})
    train_splits: list[str] = field(
        default_factory=lambda: list(DefaultSplits().train), metadata={"help": "Splits to train on."})
    eval_splits: list[str] = field(
        default_factory=lambda: list(DefaultSplits().evaluation),
        metadata={"help": "Evaluation splits the training rows are checked against for contamination."})
    allow_contamination: bool = field(
        default=False, metadata={"help": "Train even if training rows overlap evaluation rows (logged)."})
    max_reference_lines: int | None = field(
        default=None, metadata={"help": "Keep training problems whose reference has at most this many lines."})
    max_train_problems: int | None = field(
        default=None, metadata={"help": "Keep the first N training problems (after the filter above)."})
    train_task_ids_file: str | None = field(
        default=None, metadata={"help": "Then keep only the problems listed in this file (one task_id per line, '#' "
                                        "comments), e.g. those of a measured solve rate (scripts/select_problems.py)."})

    def __post_init__(self) -> None:
        """The checks that need no data, so a recipe fails as it is read, before anything is loaded."""
        if self.max_train_problems is not None and self.max_train_problems < 1:
            raise DataSelectionError("max_train_problems must be >= 1 (or null for all)")
        if not self.train_splits:
            raise DataSelectionError("train_splits is empty")
        if not self.eval_splits and not self.allow_contamination:
            raise DataSelectionError("eval_splits is empty, so contamination cannot be checked; name the evaluation "
                                     "splits or set allow_contamination: true")
        if self.mbpp_file is not None and not Path(self.mbpp_file).is_file():
            raise DataSelectionError(f"mbpp_file {self.mbpp_file} does not exist")


def dataset_folder(data: TrainingData, cache_root: Path,
                   main_process_first: Callable[[], AbstractContextManager] = nullcontext,
                   is_main_process: bool = True) -> Path:
    """The verified DatasetDict: ``dataset_dir``, or one built once per MBPP source under ``cache_root``."""
    if data.dataset_dir is not None:
        folder = Path(data.dataset_dir)
        if not (folder / "dataset_dict.json").is_file():
            raise DataSelectionError(f"dataset_dir {folder} is not a DatasetDict folder "
                                     "(run `python -m datasets_build --out DIR`)")
        return folder
    local = Path(data.mbpp_file) if data.mbpp_file else None  # None: the Hub, else the packaged release
    if local is not None and not local.is_file():
        raise DataSelectionError(f"mbpp_file {local} does not exist")
    stat = local.stat() if local else None
    source = [str(local.resolve()), stat.st_size, stat.st_mtime_ns] if local and stat else ["hub-or-package"]
    key = hashlib.sha256(json.dumps(source).encode()).hexdigest()[:16]
    root = Path(data.dataset_cache_dir) if data.dataset_cache_dir else cache_root
    folder = root / key
    with main_process_first():
        if not (folder / "dataset_dict.json").is_file() and is_main_process:
            logger.info("building and verifying the datasets into %s (once)", folder)
            root.mkdir(parents=True, exist_ok=True)
            # A staging folder of its own: two runs building at once (two jobs on one machine) must not
            # write into each other's; the first rename wins and the other build is dropped.
            staging = Path(tempfile.mkdtemp(prefix=f".{key}.", suffix=".partial", dir=root))
            config = BuildConfig(out=str(staging), progress=False,
                                 source=SourceConfig(mbpp_file=str(local) if local else None))
            try:
                _, report = build_with_report(config)
                logger.info("dataset build:\n%s", report.table())
                if not (folder / "dataset_dict.json").is_file():
                    shutil.rmtree(folder, ignore_errors=True)  # an incomplete folder from a killed build
                    try:
                        staging.rename(folder)
                    except OSError:
                        if not (folder / "dataset_dict.json").is_file():  # not a concurrent build that won
                            raise
            except DatasetFormatError as err:
                raise DataSelectionError(f"could not build the datasets: {err} (pass --mbpp_file or --dataset_dir)") \
                    from err
            finally:
                shutil.rmtree(staging, ignore_errors=True)
    return folder


def _load_splits(folder: Path, splits: list[str]) -> Dataset:
    try:
        return concatenate_datasets([load_problems(folder, split=s) for s in splits])
    except DatasetFormatError as err:
        raise DataSelectionError(f"dataset: {err}") from err


def training_problems(data: TrainingData, folder: Path) -> Dataset:
    """Training rows of ``folder`` with a short unique ``prompt`` column, after the contamination check."""
    train = _load_splits(folder, data.train_splits)
    if data.eval_splits:
        evaluation = _load_splits(folder, data.eval_splits)
        try:
            check_contamination(train, evaluation, allow=data.allow_contamination)
        except ContaminationError as err:
            raise DataSelectionError(f"{err}\n(set allow_contamination: true to train anyway)") from err
    if data.max_reference_lines is not None:
        train = train.filter(lambda row: row["reference_lines"] <= data.max_reference_lines)
    if data.max_train_problems is not None:
        train = train.select(range(min(data.max_train_problems, len(train))))
    if data.train_task_ids_file is not None:
        try:
            wanted = require_tasks(read_task_ids(data.train_task_ids_file), train["task_id"], data.train_task_ids_file)
        except DatasetFormatError as err:
            raise DataSelectionError(f"train_task_ids_file: {err}") from err
        train = train.filter(lambda row: row["task_id"] in wanted)
    if len(train) == 0:
        raise DataSelectionError("no training problem is left after the filters")
    # TRL hands the rollout prompts only: a short text that names the task identifies its row.
    train = train.map(lambda row: {"prompt": f"{row['task_id']}: {row['problem'].strip().splitlines()[0][:120]}"})
    if len(set(train["prompt"])) != len(train):
        raise DataSelectionError("training rows share a task_id; their prompts would not identify them")
    return train
