"""Checkpoints that are either complete or ignored, resuming from them, and the `best_reward` adapters.

The Trainer writes a checkpoint as many files, by several processes (each writes its own RNG
state), so a run killed while saving leaves a folder that looks like a checkpoint but is not one.
``DuelCallback.on_save`` (``pipeline.training.callbacks``) runs after the Trainer has written everything
(weights, optimizer, scheduler, RNG states, trainer state; see ``Trainer._maybe_log_save_evaluate``); it waits
for every process, adds this project's state (``DuelState.save``: schedule position, replay buffer; the recipe
and run info) and writes the ``COMPLETE`` marker last (``mark_complete``). Resuming considers only folders
with the marker.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
from pathlib import Path
from prompts.roles import ROLES
from pipeline.models.adapters import ADAPTER_CONFIG

logger = logging.getLogger(__name__)

COMPLETE = "COMPLETE"
SCHEDULE_FILE = "schedule.json"
RECIPE_FILE = "recipe.yaml"
RUN_INFO_FILE = "run_info.json"
BEST_DIR = "best_reward"  # by training rewards; best_eval/ (pipeline.training.benchmark) ranks by a benchmark
BEST_FILE = "best_reward.json"
_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")


class CheckpointError(ValueError):
    """A checkpoint to resume from is missing, incomplete or inconsistent with the run."""


def checkpoint_step(path: str | os.PathLike[str]) -> int | None:
    match = _CHECKPOINT.match(Path(path).name)
    return int(match.group(1)) if match else None


def is_complete(path: str | os.PathLike[str]) -> bool:
    return (Path(path) / COMPLETE).is_file()


def checkpoints(output_dir: str | os.PathLike[str]) -> list[Path]:
    """Every ``checkpoint-<step>`` folder of ``output_dir``, oldest step first, complete or not."""
    root = Path(output_dir)
    found = [p for p in root.iterdir() if p.is_dir() and checkpoint_step(p) is not None] if root.is_dir() else []
    return sorted(found, key=lambda p: checkpoint_step(p) or 0)


def latest_complete(output_dir: str | os.PathLike[str]) -> Path | None:
    complete = [p for p in checkpoints(output_dir) if is_complete(p)]
    return complete[-1] if complete else None


def resolve_resume(output_dir: str | os.PathLike[str], value: str | None) -> Path | None:
    """The checkpoint to resume from: None (start fresh), ``latest`` (newest complete one, or None
    if there is none yet, so a restart loop can always pass it) or a path that must be complete."""
    if value is None or value == "" or str(value).lower() in ("no", "none", "false"):
        return None
    if str(value).lower() in ("latest", "true"):
        found = latest_complete(output_dir)
        if found is None:
            logger.warning("resume_from_checkpoint=latest: no complete checkpoint in %s, starting fresh", output_dir)
        return found
    path = Path(value)
    if not path.is_dir():
        raise CheckpointError(f"resume_from_checkpoint {value!r} is not a folder")
    if not is_complete(path):
        raise CheckpointError(
            f"checkpoint {value!r} has no {COMPLETE} marker: it was still being written when its run stopped. "
            "Resume from an earlier one, or pass 'latest' to take the newest complete checkpoint."
        )
    return path


def discard_after(output_dir: str | os.PathLike[str], step: int) -> list[Path]:
    """Remove incomplete checkpoints and those newer than ``step`` (an abandoned future the resumed run
    will write again). Main process only."""
    removed = []
    for path in checkpoints(output_dir):
        if not is_complete(path) or (checkpoint_step(path) or 0) > step:
            logger.warning("removing %s checkpoint %s", "incomplete" if not is_complete(path) else "newer", path)
            shutil.rmtree(path)
            removed.append(path)
    return removed


def fsync_write(path: Path, text: str) -> None:
    with open(path, "w") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())


class BestTracker:
    """Keeps ``output_dir/best_reward`` = the adapters of the checkpoint with the highest
    ``gen_weight * generator/pass_rate + validity_weight * discriminator/validity``.

    The two roles train in turns, so each metric's latest logged value stands for its role.
    """

    metrics = ("generator/pass_rate", "discriminator/validity")

    def __init__(self, output_dir: str | os.PathLike[str], gen_weight: float = 0.7, validity_weight: float = 0.3):
        self.output_dir = Path(output_dir)
        self.weights = (gen_weight, validity_weight)
        self.latest: dict[str, float] = {}
        self.best: float | None = None
        record = self.output_dir / BEST_DIR / BEST_FILE
        if record.is_file():  # resumed run: only a better checkpoint replaces the kept one
            self.best = float(json.loads(record.read_text())["score"])

    def observe(self, logs: dict[str, Any]) -> None:
        for name in self.metrics:
            value = logs.get(name)
            if isinstance(value, (int, float)) and value == value:  # not NaN
                self.latest[name] = float(value)

    def score(self) -> float | None:
        if not self.latest:
            return None
        return sum(w * self.latest.get(name, 0.0) for w, name in zip(self.weights, self.metrics))

    def consider(self, checkpoint: Path, step: int) -> bool:
        """Copy ``checkpoint``'s adapters to ``best_reward/`` if its score beats the kept one."""
        score = self.score()
        if score is None or (self.best is not None and score <= self.best):
            return False
        staging = self.output_dir / f".{BEST_DIR}.partial"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        for role in ROLES:
            if (checkpoint / role / ADAPTER_CONFIG).is_file():
                shutil.copytree(checkpoint / role, staging / role)
        for name in (RECIPE_FILE, RUN_INFO_FILE, SCHEDULE_FILE, "trainer_state.json"):
            if (checkpoint / name).is_file():
                shutil.copy2(checkpoint / name, staging / name)
        record = {"score": score, "global_step": step, "checkpoint": checkpoint.name,
                  "formula": f"{self.weights[0]} * {self.metrics[0]} + {self.weights[1]} * {self.metrics[1]}",
                  "metrics": dict(self.latest)}
        (staging / BEST_FILE).write_text(json.dumps(record, indent=2))
        target = self.output_dir / BEST_DIR
        shutil.rmtree(target, ignore_errors=True)
        staging.rename(target)
        self.best = score
        logger.info("new best_reward checkpoint %s (score %.4f)", checkpoint.name, score)
        return True


def mark_complete(folder: Path, step: int) -> None:
    """Write the ``COMPLETE`` marker last, after everything else in ``folder`` is on disk."""
    fsync_write(folder / COMPLETE, json.dumps({"global_step": step}))


def unmark(folder: Path) -> None:
    """A folder of a step about to be saved again (left by an abandoned run) must not look complete meanwhile."""
    (folder / COMPLETE).unlink(missing_ok=True)
