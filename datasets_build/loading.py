"""The API the trainer and evaluator use to get problems as ``datasets.Dataset`` objects."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from datasets import Dataset, DatasetDict, concatenate_datasets, load_from_disk

from .schema import FEATURES, DatasetFormatError, split_key
from .sources import SOURCE_NAMES, SourceConfig, load_source


@dataclass(frozen=True)
class DefaultSplits:
    """Split keys of a built ``DatasetDict`` that training and evaluation use by default.

    Train on MBPP's train and validation tasks; evaluate on HumanEval-mini, HumanEval and MBPP's
    test tasks (every default build has these), and on HumanEval+ and MBPP+ when they are built
    (``evaluation_if_built``: their release files are not always at hand). The two sides share
    no task (``contamination.check_contamination`` verifies it; building with ``mbpp+`` removes
    the MBPP training tasks that MBPP+ evaluates on).
    """

    train: tuple[str, ...] = ("mbpp_train", "mbpp_validation")
    evaluation: tuple[str, ...] = ("humaneval_mini_test", "humaneval_test", "mbpp_test")
    evaluation_if_built: tuple[str, ...] = ("humanevalplus_test", "mbppplus_test")

    def is_evaluation(self, key: str) -> bool:
        """Whether rows of the built split ``key`` are evaluation rows."""
        return key in self.evaluation or key in self.evaluation_if_built


def rows_to_dataset(rows: list[dict[str, Any]]) -> Dataset:
    """Rows to a Dataset with exactly the schema's features (also when there are no rows)."""
    return Dataset.from_list(rows, features=FEATURES)


def load_problems(
    source_or_path: str | Path,
    split: str | Sequence[str] | None = None,
    *,
    config: SourceConfig | None = None,
) -> Dataset:
    """Problems of one source, one JSONL file, or a folder written by ``build`` (``save_to_disk``).

    ``split`` selects rows by their split (``"train"``) or by built split key
    (``"mbpp_train"``); several may be given; None keeps everything. Rows read from a source
    are not verified in the sandbox: use a built folder for verified rows.
    """
    wanted = None if split is None else {split} if isinstance(split, str) else set(split)
    path = Path(source_or_path)
    if str(source_or_path) not in SOURCE_NAMES and path.is_dir():
        return _from_built_folder(path, wanted)
    rows, _ = load_source(str(source_or_path), config or SourceConfig())
    if wanted is not None:
        rows = [r for r in rows if r["split"] in wanted or split_key(r["source"], r["split"]) in wanted]
        _require_some(rows, wanted, str(source_or_path))
    return rows_to_dataset(rows)


def read_task_ids(path: str | Path) -> list[str]:
    """The task ids listed in ``path``: one per line, blank lines skipped, ``#`` starts a comment (so a selection
    file can say where its ids came from). A missing file, an empty list or a repeated id is an error."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise DatasetFormatError(str(path), f"cannot read the task id list ({exc.strerror or exc})") from None
    ids: list[str] = []
    for number, line in enumerate(lines, 1):
        task_id = line.split("#", 1)[0].strip()
        if not task_id:
            continue
        if task_id in ids:
            raise DatasetFormatError(f"{path}:{number}", f"task id {task_id!r} is listed twice")
        ids.append(task_id)
    if not ids:
        raise DatasetFormatError(str(path), "lists no task id")
    return ids


def require_tasks(listed: Sequence[str], available: Sequence[str], where: str) -> set[str]:
    """``listed`` as a set, once every id is among ``available``: an id the problems do not hold is an error naming
    it (a selection made on other data, or a typo), never a silent drop."""
    present = set(available)
    missing = [t for t in listed if t not in present]
    if missing:
        raise DatasetFormatError(where, f"{len(missing)} listed task id(s) are not among the {len(present)} problems "
                                        f"(first: {missing[0]!r})")
    return set(listed)


def _from_built_folder(path: Path, wanted: set[str] | None) -> Dataset:
    try:
        built = load_from_disk(str(path))
    except (FileNotFoundError, ValueError) as exc:
        raise DatasetFormatError(str(path), f"is not a folder written by save_to_disk ({exc})") from None
    if not isinstance(built, DatasetDict):
        built = DatasetDict({"all": built})
    missing_columns = set(FEATURES) - set(next(iter(built.values())).column_names) if built else set()
    if missing_columns:
        raise DatasetFormatError(
            str(path), f"is not in this project's schema (missing columns {sorted(missing_columns)}): rebuild it with python -m datasets_build"
        )
    parts = []
    for key, dataset in built.items():
        if wanted is None or key in wanted:
            parts.append(dataset)
            continue
        indices = [i for i, row_split in enumerate(dataset["split"]) if row_split in wanted]
        if indices:
            parts.append(dataset.select(indices, keep_in_memory=True))
    if wanted is not None:
        _require_some(parts, wanted, str(path), available=list(built))
    return concatenate_datasets(parts) if parts else rows_to_dataset([])


def _require_some(found: list[Any], wanted: set[str], where: str, available: list[str] | None = None) -> None:
    if not found:
        hint = f"; available: {available}" if available else ""
        raise DatasetFormatError(where, f"has no rows in split(s) {sorted(wanted)}{hint}")
