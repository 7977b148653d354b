"""Build the project's ``DatasetDict``: load sources, filter, verify references, save or push."""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from datasets import DatasetDict

from sandbox import SandboxConfig

from .contamination import ContaminationConfig, Overlap, find_overlaps, task_name
from .loading import DefaultSplits, rows_to_dataset
from .schema import DIFFICULTIES, split_key
from .sources import SourceConfig, load_source
from .verify import DroppedRow, verify_rows

logger = logging.getLogger(__name__)

# "humaneval+", "mbpp+" (shipped too) are opt-in: building with mbpp+ removes 147 MBPP training/validation tasks.
DEFAULT_SOURCES = ("humaneval", "mbpp", "humaneval-mini")
REMOVAL_STAGES = ("overlap", "filtered", "failed")


def _reference_sandbox() -> SandboxConfig:
    # References are trusted to be quick, but a loaded machine must not drop a correct row:
    # give each test far more time than any benchmark reference needs.
    return SandboxConfig(timeout_s=10.0, job_timeout_s=120.0)


@dataclass
class BuildConfig:
    """Everything ``build`` does, in one place (the CLI fills it from flags).

    Attributes:
        sources: named sources (``sources.SOURCE_NAMES``) and/or paths of JSONL files.
        out: folder for ``DatasetDict.save_to_disk``; None to not save.
        push_to_hub: Hub repo id to push to; None to not push.
        verify: run every reference solution against its tests and drop rows that fail.
        max_reference_lines: keep only rows whose reference solution has at most this many code lines.
        difficulties: keep only these difficulty labels (empty: all).
        categories: keep only these categories (empty: all; HumanEval and MBPP have no category).
        progress: show a progress bar while verifying.
        decontaminate: remove rows of the ``splits.train`` splits that overlap rows of the
            evaluation splits (``splits.evaluation`` and ``splits.evaluation_if_built``, see
            ``contamination``).
        splits: which built splits are training and which evaluation.
        contamination: what counts as an overlap.
        source: where each source is read from.
        sandbox: sandbox settings for verification.
    """

    sources: tuple[str, ...] = DEFAULT_SOURCES
    out: str | None = None
    push_to_hub: str | None = None
    verify: bool = True
    max_reference_lines: int | None = None
    difficulties: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    progress: bool = True
    decontaminate: bool = True
    splits: DefaultSplits = field(default_factory=DefaultSplits)
    contamination: ContaminationConfig = field(default_factory=ContaminationConfig)
    source: SourceConfig = field(default_factory=SourceConfig)
    sandbox: SandboxConfig = field(default_factory=_reference_sandbox)

    def __post_init__(self) -> None:
        self.sources = tuple(self.sources)
        self.difficulties = tuple(self.difficulties)
        self.categories = tuple(self.categories)
        if not self.sources:
            raise ValueError("BuildConfig.sources is empty")
        if len(set(self.sources)) != len(self.sources):
            raise ValueError(f"BuildConfig.sources lists a source twice: {self.sources}")
        if self.max_reference_lines is not None and self.max_reference_lines < 1:
            raise ValueError("BuildConfig.max_reference_lines must be >= 1")
        unknown = set(self.difficulties) - set(DIFFICULTIES)
        if unknown:
            raise ValueError(f"unknown difficulties {sorted(unknown)}; expected some of {DIFFICULTIES}")


@dataclass
class BuildReport:
    """What the build did: where each source came from and every row it left out, with why.

    ``removed`` maps each stage to the rows it removed, in build order: ``overlap`` (training rows
    that duplicate evaluation rows), ``filtered`` (curriculum filters) and ``failed`` (the
    reference fails its own tests).
    """

    origins: dict[str, str] = field(default_factory=dict)
    loaded: Counter[tuple[str, str]] = field(default_factory=Counter)
    kept: Counter[tuple[str, str]] = field(default_factory=Counter)
    removed: dict[str, list[DroppedRow]] = field(default_factory=lambda: {stage: [] for stage in REMOVAL_STAGES})

    def table(self) -> str:
        """Rows per source and split at each stage, where each source came from, then why rows
        were removed (filter rules counted, other removals one line per row)."""
        header = ("source", "split", "loaded", *REMOVAL_STAGES, "kept")
        removed = {stage: Counter((d.source, d.split) for d in rows) for stage, rows in self.removed.items()}
        body = [
            (source, split, self.loaded[source, split], *(removed[stage][source, split] for stage in REMOVAL_STAGES), self.kept[source, split])
            for source, split in self.loaded
        ]
        totals = ("total", "", *(sum(r[i] for r in body) for i in range(2, len(header))))
        cells = [tuple(str(c) for c in r) for r in [header, *body, totals]]
        widths = [max(len(r[i]) for r in cells) for i in range(len(header))]

        def line(row: tuple[str, ...]) -> str:
            return "  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths)))

        rule = "  ".join("-" * w for w in widths)
        parts = [line(cells[0]), rule, *map(line, cells[1:-1]), rule, line(cells[-1]), ""]
        parts += [f"{source}: {origin}" for source, origin in self.origins.items()]
        if self.removed["filtered"]:
            reasons = Counter(d.reason for d in self.removed["filtered"])
            parts += ["", "filtered out:", *(f"  {n} x {reason}" for reason, n in reasons.most_common())]
        for stage, title in (("overlap", "removed from training (overlaps evaluation)"), ("failed", "dropped (reference fails its own tests)")):
            if self.removed[stage]:
                parts += ["", f"{title}:", *(f"  {d.task_id}: {d.reason}" for d in self.removed[stage])]
        return "\n".join(parts)


def select(rows: list[dict[str, Any]], config: BuildConfig) -> tuple[list[dict[str, Any]], list[DroppedRow]]:
    """Apply the curriculum filters; return (kept, filtered out with the rule that removed each)."""
    kept, filtered = [], []
    for row in rows:
        reason = None
        if config.max_reference_lines is not None and row["reference_lines"] > config.max_reference_lines:
            reason = f"reference_lines > {config.max_reference_lines}"
        elif config.difficulties and row["difficulty"] not in config.difficulties:
            reason = f"difficulty not in {list(config.difficulties)}"
        elif config.categories and row["category"] not in config.categories:
            reason = f"category not in {list(config.categories)}"
        if reason is None:
            kept.append(row)
        else:
            filtered.append(DroppedRow(row["source"], row["split"], row["task_id"], reason))
    return kept, filtered


def decontaminate(
    rows: list[dict[str, Any]], splits: DefaultSplits, config: ContaminationConfig
) -> tuple[list[dict[str, Any]], list[DroppedRow]]:
    """Remove training rows that overlap evaluation rows, so the default splits are clean.

    The training side loses the row: evaluation sets stay comparable with published numbers.
    """
    train = [r for r in rows if split_key(r["source"], r["split"]) in splits.train]
    evaluation = [r for r in rows if splits.is_evaluation(split_key(r["source"], r["split"]))]
    by_train_task: dict[str, list[Overlap]] = {}
    for overlap in find_overlaps(train, evaluation, config):
        by_train_task.setdefault(overlap.train_task, []).append(overlap)
    kept, removed = [], []
    for row in rows:
        is_train = split_key(row["source"], row["split"]) in splits.train
        overlaps = by_train_task.get(task_name(row)) if is_train else None
        if overlaps:
            why = "; ".join(f"overlaps {o.eval_task} ({', '.join(o.reasons)})" for o in overlaps)
            removed.append(DroppedRow(row["source"], row["split"], row["task_id"], why))
        else:
            kept.append(row)
    return kept, removed


def build_with_report(config: BuildConfig) -> tuple[DatasetDict, BuildReport]:
    """Build the DatasetDict (one split per source and split, ``schema.split_key``), save and
    push it as configured, and report what was kept and dropped."""
    report = BuildReport()
    rows: list[dict[str, Any]] = []
    for name in config.sources:
        source_rows, origin = load_source(name, config.source)
        label = source_rows[0]["source"] if source_rows else name
        if label in report.origins:
            raise ValueError(f"two of the sources {config.sources} both give rows of source {label!r}")
        report.origins[label] = origin
        rows += source_rows
    report.loaded.update((r["source"], r["split"]) for r in rows)
    # Decontaminate before filtering, so a filter cannot hide an evaluation row's duplicate.
    if config.decontaminate:
        rows, report.removed["overlap"] = decontaminate(rows, config.splits, config.contamination)
    rows, report.removed["filtered"] = select(rows, config)
    if config.verify:
        rows, report.removed["failed"] = verify_rows(rows, config.sandbox, progress=config.progress)
    report.kept.update((r["source"], r["split"]) for r in rows)

    grouped: dict[str, list[dict[str, Any]]] = {split_key(s, sp): [] for s, sp in report.loaded}
    for row in rows:
        grouped[split_key(row["source"], row["split"])].append(row)
    for key in [key for key, group in grouped.items() if not group]:
        # The summary table shows it with 0 rows kept; `datasets` can save an empty split but not load it.
        logger.warning("split %s: no row passed verification, so it is left out", key)
        del grouped[key]
    dataset_dict = DatasetDict({key: rows_to_dataset(group) for key, group in grouped.items()})
    if config.out:
        dataset_dict.save_to_disk(config.out)
        logger.info("saved %d rows to %s", len(rows), config.out)
    if config.push_to_hub:
        dataset_dict.push_to_hub(config.push_to_hub)
        logger.info("pushed %d rows to the Hub repo %s", len(rows), config.push_to_hub)
    return dataset_dict, report


def build(config: BuildConfig) -> DatasetDict:
    """The built DatasetDict (see ``build_with_report`` for the report)."""
    dataset_dict, report = build_with_report(config)
    logger.info("build summary:\n%s", report.table())
    return dataset_dict
