"""``DuelCallback``: the one owner of the ``DuelState``, at every step boundary of TRL's loop.

* ``on_step_begin`` (before the step's first micro-batch, hence before TRL generates): the state enters the
  step (its phase from the schedule), the phase's adapter becomes the only trainable one, and the phase guard
  refuses a step that would train a buffered generation batch of another phase (the schedule's alignment
  check makes that impossible; the guard catches it if a change ever breaks it);
* ``on_step_end``: the batches the rewards scored in the step come back from the scorer (``drain``); their
  failures feed the replay buffer (gathered from every process and applied in the same order everywhere),
  their first ``samples_per_step`` chains go to ``samples.jsonl``; a step that ends a phase forces a log, so
  no logged window mixes two phases; a folder about to be saved again loses its ``COMPLETE`` marker;
* ``on_log``: the best-checkpoint tracker sees the logged rewards;
* ``on_save`` (after the Trainer wrote the checkpoint): the state, the run's records, ``COMPLETE`` last, then
  ``best_reward/``.
In the ``unified`` schedule the generator adapter plays both roles.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from peft import PeftModel
from transformers import TrainerCallback

from pipeline.models.adapters import set_active_role
from pipeline.training.checkpoints import mark_complete, unmark
from pipeline.training.records import RunFiles, SampleLog
from pipeline.training.replay import failure_records
from pipeline.training.schedule import generation_period
from pipeline.training.state import DuelState

logger = logging.getLogger(__name__)


class DuelCallback(TrainerCallback):
    """Moves, feeds and saves the ``DuelState`` (see the module docstring).

    ``scorer`` is the rewards' shared scorer, made with ``keep_scored=True`` (``rewards.make_scorer``).
    """

    def __init__(self, duel: DuelState, model: PeftModel, scorer: Any, run_files: RunFiles,
                 samples: SampleLog | None = None):
        self.duel, self.model, self.scorer = duel, model, scorer
        self.run_files, self.samples = run_files, samples

    def _enter(self, step: int) -> None:
        if self.duel.enter(step):
            logger.info("step %d: phase %s, stage %s", step, self.duel.phase.role, self.duel.phase.train_stage or "all")
        set_active_role(self.model, "generator" if self.duel.phase.role == "unified" else self.duel.phase.role)

    def on_train_begin(self, args, state, control, **kwargs):
        self._enter(state.global_step)

    def on_step_begin(self, args, state, control, **kwargs):
        self._enter(state.global_step)
        period = generation_period(args.gradient_accumulation_steps, args.steps_per_generation, args.num_iterations)
        buffered = self.duel.batch_phase
        if state.global_step % period and buffered is not None and buffered != self.duel.phase:
            raise RuntimeError(f"phase changed to {self.duel.phase} inside a generation batch generated under "
                               f"{buffered}; the schedule is not aligned with generation batches")
        self.duel.clock.start()

    def on_step_end(self, args, state, control, **kwargs):
        from accelerate.utils import gather_object

        self.duel.clock.stop()
        scored, seconds = self.scorer.drain()
        self.duel.clock.add("rewards", seconds)
        if self.samples is not None and state.is_world_process_zero:
            self.samples.write(scored, self.duel)
        records = [record for context in scored for record in failure_records(context)]
        self.duel.buffer.update(gather_object(records))  # collective: every process calls it every step
        if self.duel.ends_phase(state.global_step):
            control.should_log = True
        if control.should_save and args.should_save:
            unmark(Path(args.output_dir) / f"checkpoint-{state.global_step}")
        return control

    def on_log(self, args, state, control, logs=None, **kwargs):
        self.duel.best.observe(logs or {})

    def on_save(self, args, state, control, **kwargs):
        from accelerate import PartialState

        folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
        PartialState().wait_for_everyone()  # every process has written its RNG state
        if state.is_world_process_zero:
            self.duel.save(folder, state.global_step)
            self.run_files.write(folder)
            mark_complete(folder, state.global_step)
            self.duel.best.consider(folder, state.global_step)
        PartialState().wait_for_everyone()
