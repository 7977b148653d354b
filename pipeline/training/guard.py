"""`CollapseGuard`: stop a run whose samples degenerate into repetition, and say which checkpoint was the
last one saved before it happened.

The guard computes nothing itself: it watches one logged metric (a mode-collapse rate measured on
sampled generations, e.g. `probe/collapse_rate` from `GenerationProbe`, or an evaluation's
`eval_bench/direct/collapse_rate`), so it works unchanged under `SFTTrainer` and `GRPOTrainer`.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

logger = logging.getLogger(__name__)

GUARD_FILE = "collapse_guard.json"
_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")


@dataclass(frozen=True)
class CollapseGuardConfig:
    """metric: logged key to watch (higher = more collapse); threshold: value at or above which the run has
    collapsed; stop_on_collapse: end training then; patience: consecutive collapsed logs needed to stop
    (rates measured on a handful of samples are noisy)."""

    metric: str = "probe/collapse_rate"
    threshold: float = 0.5
    stop_on_collapse: bool = False
    patience: int = 1

    def __post_init__(self) -> None:
        if not self.metric:
            raise ValueError("metric must name a logged key")
        if not 0.0 < self.threshold <= 1.0:
            raise ValueError(f"threshold must lie in (0, 1], got {self.threshold}")
        if self.patience < 1:
            raise ValueError(f"patience must be >= 1, got {self.patience}")


class CollapseGuard(TrainerCallback):
    """Warns when `config.metric` reaches the threshold; with `stop_on_collapse`, stops training after
    `patience` such logs in a row and cancels that step's save (a save could rotate the last good
    checkpoint out under `save_total_limit`). Writes `collapse_guard.json` to `output_dir` at each
    collapsed log, naming `last_good_checkpoint`: the newest checkpoint still on disk that was saved
    before the current run of collapsed logs began.

    A metric that is never logged leaves the guard with nothing to watch (a renamed metric, a recipe naming the
    wrong key): at the end of training it warns, with the number of logs it read, instead of staying quiet.
    ``seen`` counts the logs that carried the metric.
    """

    def __init__(self, config: CollapseGuardConfig | None = None):
        self.config = config or CollapseGuardConfig()
        self.saved: dict[int, str] = {}   # step -> checkpoint folder
        self.events: list[dict[str, Any]] = []
        self.streak_start: int | None = None  # step of the first log of the current collapsed run
        self.streak = 0
        self.stopped = False
        self.output_dir: str | None = None
        self.logs = 0  # logs read by on_log
        self.seen = 0  # of which carried config.metric

    # -- what the guard knows

    def last_good_checkpoint(self) -> str | None:
        """Newest existing checkpoint saved before the current collapse (any checkpoint if none is under way)."""
        limit = self.streak_start if self.streak_start is not None else math.inf
        for step in sorted(self.saved, reverse=True):
            if step < limit and Path(self.saved[step]).is_dir():
                return self.saved[step]
        return None

    def report(self) -> dict[str, Any]:
        return {"config": asdict(self.config), "stopped": self.stopped, "collapse_start_step": self.streak_start,
                "last_good_checkpoint": self.last_good_checkpoint(), "events": self.events,
                "logs_with_metric": self.seen}

    # -- callback events

    def on_train_begin(self, args, state, control, **kwargs):
        """A resumed run: checkpoints already on disk up to the resume step count as saved."""
        self.output_dir = args.output_dir
        root = Path(args.output_dir)
        if root.is_dir():
            for child in root.iterdir():
                match = _CHECKPOINT.match(child.name)
                if match and child.is_dir() and int(match.group(1)) <= state.global_step:
                    self.saved[int(match.group(1))] = str(child)

    def on_save(self, args, state, control, **kwargs):
        self.saved[state.global_step] = os.path.join(args.output_dir, f"checkpoint-{state.global_step}")

    def on_train_end(self, args, state, control, **kwargs):
        if self.logs and not self.seen:
            logger.warning("collapse guard: %s was never logged (%d logs read); the guard watched nothing. "
                           "Set collapse_guard_metric to a metric the run logs", self.config.metric, self.logs)

    def on_log(self, args, state, control, logs=None, **kwargs):
        self.logs += 1
        value = (logs or {}).get(self.config.metric)
        if value is None:
            return control
        self.seen += 1
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            logger.warning("collapse guard: %s = %r at step %d is not a finite number; ignored",
                           self.config.metric, value, state.global_step)
            return control
        self.output_dir = args.output_dir
        if value < self.config.threshold:
            if self.streak:
                self.events.append({"step": state.global_step, "value": float(value), "event": "recovered"})
                logger.info("collapse guard: %s back to %.3f at step %d", self.config.metric, value,
                            state.global_step)
                self._write(state)
            self.streak, self.streak_start = 0, None
            return control
        self.streak += 1
        if self.streak_start is None:
            self.streak_start = state.global_step
        event = "collapsed"
        if self.config.stop_on_collapse and self.streak >= self.config.patience:
            control.should_training_stop = True
            control.should_save = False
            self.stopped = True
            event = "stopped"
        self.events.append({"step": state.global_step, "value": float(value), "event": event})
        logger.warning("collapse guard: %s = %.3f >= %.3f at step %d%s; last good checkpoint: %s",
                       self.config.metric, value, self.config.threshold, state.global_step,
                       ", stopping training" if event == "stopped" else "", self.last_good_checkpoint())
        self._write(state)
        return control

    def _write(self, state) -> None:
        if self.output_dir is None or not state.is_world_process_zero:
            return
        path = Path(self.output_dir) / GUARD_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(self.report(), indent=2) + "\n")
        tmp.replace(path)  # readers never see half a file
