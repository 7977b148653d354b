"""``PhaseCallback``: at every step boundary, point the rollout and the model at the schedule's phase."""

from __future__ import annotations

import logging

from peft import PeftModel
from transformers import TrainerCallback

from pipeline.models.adapters import set_active_role
from pipeline.chain.rollout import StagedRollout
from pipeline.training.schedule import AdversarialSchedule

logger = logging.getLogger(__name__)


class PhaseCallback(TrainerCallback):
    """Sets ``rollout.phase`` and the active (= only trainable) adapter from ``state.global_step``.

    ``on_step_begin`` runs before the step's first micro-batch, hence before ``_prepare_inputs``
    generates; the schedule's alignment check guarantees that a phase change also starts a new
    generation batch. In the ``unified`` schedule the generator adapter plays both roles.
    A step that ends a phase forces a log, so no logged window mixes two phases.
    """

    def __init__(self, schedule: AdversarialSchedule, rollout: StagedRollout, model: PeftModel):
        self.schedule, self.rollout, self.model = schedule, rollout, model

    def _apply(self, step: int) -> None:
        phase = self.schedule.phase_at(step)
        if phase != self.rollout.phase:
            logger.info("step %d: phase %s, stage %s", step, phase.role, phase.train_stage or "all")
        self.rollout.phase = phase
        set_active_role(self.model, "generator" if phase.role == "unified" else phase.role)

    def on_train_begin(self, args, state, control, **kwargs):
        self._apply(state.global_step)

    def on_step_begin(self, args, state, control, **kwargs):
        self._apply(state.global_step)

    def on_step_end(self, args, state, control, **kwargs):
        if self.schedule.phase_at(state.global_step) != self.schedule.phase_at(state.global_step - 1):
            control.should_log = True
        return control
