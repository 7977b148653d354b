"""``DuelState``: everything the duel keeps between steps, in one object with one save and one load.

TRL's loop owns the step; what this project adds to it lives here: where the schedule stands (``step``,
``phase``), the failure ``replay`` buffer, the best checkpoint so far by training rewards (``best``) and the
step's wall-clock parts (``clock``). ``DuelCallback`` (``pipeline.training.callbacks``) is its one owner: it
moves it at every step boundary and saves it into every checkpoint. The rollout reads it (it is the rollout's
``RolloutState``) and reports what it generated; the trainer's ``log`` reads its metrics. Nothing else writes it.
"""

from __future__ import annotations

import json
import logging
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from prompts.roles import ROLE_CODES

from pipeline.chain.rollout import RolloutState
from pipeline.training.checkpoints import SCHEDULE_FILE, BestTracker, CheckpointError, fsync_write, discard_after
from pipeline.training.replay import ReplayBuffer
from pipeline.training.schedule import AdversarialSchedule

logger = logging.getLogger(__name__)


class StepClock:
    """Wall time per optimizer step and the parts of it that were measured (``add``), summed until ``drain``."""

    def __init__(self) -> None:
        self.totals: dict[str, float] = defaultdict(float)
        self._started: float | None = None

    def add(self, part: str, seconds: float) -> None:
        self.totals[part] += seconds

    def start(self) -> None:
        self._started = time.perf_counter()

    def stop(self) -> None:
        if self._started is not None:
            self.totals["step"] += time.perf_counter() - self._started
            self.totals["steps"] += 1
            self._started = None

    def drain(self, sandbox_seconds: float) -> dict[str, float]:
        """Per-step means and shares of the window since the last drain (empty if no step ended)."""
        totals, self.totals = self.totals, defaultdict(float)
        steps, wall = totals["steps"], totals["step"]
        if steps == 0 or wall <= 0:
            return {}
        parts = {"generation": totals["generation"], "rewards": totals["rewards"], "sandbox": sandbox_seconds}
        parts["optimisation"] = max(0.0, wall - parts["generation"] - parts["rewards"])
        out = {"timing/step_s": wall / steps}
        for name, seconds in parts.items():
            out[f"timing/{name}_s"] = seconds / steps
            out[f"timing/{name}_share"] = seconds / wall
        return out


class DuelState(RolloutState):
    """The schedule's position, the replay buffer, the best checkpoint and the step clock of one RL run."""

    def __init__(self, schedule: AdversarialSchedule, replay: ReplayBuffer, best: BestTracker):
        super().__init__(phase=schedule.phase_at(0), step=0, replay=replay)
        self.schedule, self.buffer, self.best = schedule, replay, best
        self.clock = StepClock()

    def enter(self, step: int) -> bool:
        """Move to optimizer step ``step``: its phase (from the schedule); True when the phase changed."""
        phase = self.schedule.phase_at(step)
        changed = phase != self.phase
        self.phase, self.step = phase, step
        return changed

    def ends_phase(self, step: int) -> bool:
        """Whether the step that just finished (``step`` steps done) was the last of its phase."""
        return self.schedule.phase_at(step) != self.schedule.phase_at(step - 1)

    def generated(self, seconds: float) -> None:
        super().generated(seconds)
        self.clock.add("generation", seconds)

    def metrics(self) -> dict[str, float]:
        """What every training log carries of the duel: the phase and the replay buffer's counters."""
        return {"phase/role": float(ROLE_CODES[self.phase.role]), "phase/train_stage": float(self.phase.train_stage),
                **self.buffer.metrics()}

    # ------------------------------------------------------------ checkpoints

    def state_dict(self, global_step: int) -> dict[str, Any]:
        return {"schedule": self.schedule.state_dict(global_step), "replay": self.buffer.state_dict()}

    def save(self, folder: Path, global_step: int) -> None:
        """Into a checkpoint: the schedule position (``schedule.json``) and the replay buffer (``replay.json``)."""
        state = self.state_dict(global_step)
        fsync_write(folder / SCHEDULE_FILE, json.dumps(state["schedule"], indent=2))
        self.buffer.save(folder)

    def load_state_dict(self, state: dict[str, Any]) -> int:
        """The saved position must be where this run's schedule puts that step (``ScheduleError`` if not); the
        replay buffer comes back (when the state has one). Returns the saved step."""
        self.schedule.check_state(state["schedule"])
        if state.get("replay") is not None:
            self.buffer.load_state_dict(state["replay"])
        step = int(state["schedule"]["position"]["global_step"])
        self.enter(step)
        return step

    def load(self, folder: Path) -> int:
        """From a checkpoint: its ``schedule.json`` (``load_state_dict``) and ``replay.json`` (absent: replay was
        off). Returns the checkpoint's step."""
        path = Path(folder) / SCHEDULE_FILE
        try:
            schedule = json.loads(path.read_text())
        except (OSError, ValueError) as err:
            raise CheckpointError(f"{path} is missing or unreadable ({err}); this is not a checkpoint of train.py") from err
        step = self.load_state_dict({"schedule": schedule, "replay": None})
        self.buffer.load(folder)
        return step

    def resume(self, checkpoint: Path, output_dir: Path) -> None:
        """Before resuming from ``checkpoint``: ``load`` it, and (main process) discard the checkpoints after it,
        leftovers of the run that was interrupted. Every process calls it; they wait for each other at the end."""
        from accelerate import PartialState

        state = PartialState()
        step = self.load(checkpoint)
        if state.is_main_process:
            discard_after(output_dir, step)
        state.wait_for_everyone()
        logger.info("resuming from %s", checkpoint)


__all__ = ["DuelState", "StepClock"]
