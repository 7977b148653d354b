"""Which role trains on which curriculum stage at every optimizer step.

The adversarial schedule, per curriculum stage (1 -> 5, or one block of "all stages at once"):

    N discriminator steps | N generator steps | K steps alternating roles (discriminator first,
    ``alternate_every`` steps per turn)

so each stage first lets the discriminator learn to test the current generator, then lets the
generator answer those tests, then keeps both moving. The ``unified`` schedule has one phase per stage
(one adapter plays both roles in the same batches). Past the end of the schedule, training stays
in the last stage and keeps alternating.

The schedule is a pure function of ``global_step``, so a resumed run lands in exactly the same
phase; the position is also written into every checkpoint (``schedule.json``) to check that.

GRPOTrainer generates one batch every ``steps_per_generation * num_iterations`` micro-steps and
trains on it for that many micro-steps (``GRPOTrainer._prepare_inputs``). A phase is a property of
the generated batch (its role, its stage masks, its rewards), so it may change only where a new
batch is generated: ``check_alignment`` refuses schedules that would change it mid-batch.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

from prompts.stages import NUM_STAGES

from pipeline.chain.rollout import Phase

SCHEDULES = ("adversarial", "unified")
CURRICULA = ("staged", "all")


class ScheduleError(ValueError):
    """A schedule that cannot work with the trainer's settings; the message says what to change."""


@dataclass
class ScheduleConfig:
    """The adversarial schedule (see the module docstring)."""

    schedule: str = field(
        default="adversarial",
        metadata={"help": "'adversarial': generator and discriminator adapters train in turns (default); "
                          "'unified': one adapter plays both roles in the same batches."},
    )
    curriculum: str = field(
        default="staged",
        metadata={"help": "'staged': one block per stage in `stages` (stage k trains stages >= k); "
                          "'all': one block that trains all stages at once (train_stage 0)."},
    )
    stages: list[int] = field(
        default_factory=lambda: list(range(1, NUM_STAGES + 1)),
        metadata={"help": f"Curriculum stages in order (each in 1..{NUM_STAGES}); used by curriculum 'staged'."},
    )
    role_steps: int = field(
        default=2,
        metadata={"help": "N: each stage opens with N discriminator steps, then N generator steps."},
    )
    alternating_steps: int = field(
        default=4, metadata={"help": "K: steps after the opening in which the roles alternate."}
    )
    alternate_every: int = field(
        default=1, metadata={"help": "Steps per turn while alternating (discriminator first)."}
    )

    def __post_init__(self) -> None:
        if self.schedule not in SCHEDULES:
            raise ScheduleError(f"schedule must be one of {SCHEDULES}, got {self.schedule!r}")
        if self.curriculum not in CURRICULA:
            raise ScheduleError(f"curriculum must be one of {CURRICULA}, got {self.curriculum!r}")
        if isinstance(self.stages, (str, bytes)) or not self.stages:
            raise ScheduleError(f"stages must be a non-empty list of stage numbers, got {self.stages!r}")
        for stage in self.stages:
            if isinstance(stage, bool) or not isinstance(stage, int) or not 1 <= stage <= NUM_STAGES:
                raise ScheduleError(f"stages: each stage must be an integer in 1..{NUM_STAGES} "
                                    f"(use curriculum 'all' for all stages at once), got {stage!r}")
        for name, minimum in (("role_steps", 0), ("alternating_steps", 0), ("alternate_every", 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise ScheduleError(f"{name} must be an integer >= {minimum}, got {value!r}")
        if self.stage_length == 0:
            raise ScheduleError("role_steps and alternating_steps are both 0: every stage would be empty")

    @property
    def stage_length(self) -> int:
        return 2 * self.role_steps + self.alternating_steps

    @property
    def train_stages(self) -> list[int]:
        """The ``train_stage`` of each block (0 = all stages at once)."""
        return [0] if self.curriculum == "all" else list(self.stages)


class AdversarialSchedule:
    """``Phase`` of every optimizer step (``global_step``, 0-based) of a ``ScheduleConfig``."""

    def __init__(self, config: ScheduleConfig):
        self.config = config

    @property
    def length(self) -> int:
        """Steps until the last block ends (training may go on: it stays in the last stage)."""
        return self.config.stage_length * len(self.config.train_stages)

    def _alternating_role(self, index: int) -> str:
        return "discriminator" if (index // self.config.alternate_every) % 2 == 0 else "generator"

    def position(self, step: int) -> dict[str, int | str]:
        """Where ``step`` lies: block index, step within the block, and the phase's role and stage."""
        if step < 0:
            raise ValueError(f"step must be >= 0, got {step}")
        cfg, stages = self.config, self.config.train_stages
        block = min(step // cfg.stage_length, len(stages) - 1)
        offset = step - block * cfg.stage_length  # beyond the schedule: keeps counting in the last block
        if cfg.schedule == "unified":
            role = "unified"
        elif offset < cfg.role_steps:
            role = "discriminator"
        elif offset < 2 * cfg.role_steps:
            role = "generator"
        else:
            role = self._alternating_role(offset - 2 * cfg.role_steps)
        return {"global_step": step, "block": block, "step_in_block": offset,
                "role": role, "train_stage": stages[block]}

    def phase_at(self, step: int) -> Phase:
        where = self.position(step)
        return Phase(str(where["role"]), int(where["train_stage"]))

    def boundaries(self, max_steps: int) -> list[int]:
        """Steps (1..max_steps-1) whose phase differs from the previous step's."""
        changes, previous = [], self.phase_at(0)
        for step in range(1, max_steps):
            current = self.phase_at(step)
            if current != previous:
                changes.append(step)
            previous = current
        return changes

    def segments(self, max_steps: int) -> list[tuple[int, int, Phase]]:
        """``(first_step, last_step, phase)`` runs up to ``max_steps``, for logs and docs."""
        starts = [0, *self.boundaries(max_steps)]
        ends = [s - 1 for s in starts[1:]] + [max_steps - 1]
        return [(a, b, self.phase_at(a)) for a, b in zip(starts, ends)]

    def state_dict(self, step: int) -> dict:
        """What a checkpoint records: the configuration and the position at ``step``."""
        return {"config": asdict(self.config), "position": self.position(step)}

    def check_state(self, saved: dict) -> None:
        """Refuse to resume when the saved position is not where this schedule puts that step."""
        step = saved.get("position", {}).get("global_step")
        if not isinstance(step, int):
            raise ScheduleError(f"schedule state has no integer position.global_step: {saved!r}")
        expected = self.position(step)
        if saved.get("position") != expected:
            raise ScheduleError(
                f"the checkpoint was written at {saved.get('position')} but this run's schedule puts step {step} "
                f"at {expected}: the schedule settings changed since (saved: {saved.get('config')}). "
                "Resume with the same schedule, or start a new output_dir."
            )


def generation_period(gradient_accumulation_steps: int, steps_per_generation: int, num_iterations: int) -> int:
    """Optimizer steps P such that every multiple of P starts with a freshly generated batch.

    TRL generates every ``steps_per_generation * num_iterations`` micro-steps; optimizer step s
    starts at micro-step ``s * gradient_accumulation_steps``.
    """
    generate_every = steps_per_generation * num_iterations
    return generate_every // math.gcd(gradient_accumulation_steps, generate_every)


def check_alignment(schedule: AdversarialSchedule, max_steps: int, *, gradient_accumulation_steps: int,
                    steps_per_generation: int, num_iterations: int, save_steps: int | None) -> int:
    """Raise ScheduleError if a phase change or a checkpoint falls inside a generation batch;
    return the generation period (optimizer steps)."""
    period = generation_period(gradient_accumulation_steps, steps_per_generation, num_iterations)
    if period == 1:
        return period
    why = (f"one generation batch spans {period} optimizer steps (steps_per_generation={steps_per_generation} x "
           f"num_iterations={num_iterations} micro-steps, gradient_accumulation_steps={gradient_accumulation_steps})")
    misaligned = [s for s in schedule.boundaries(max_steps) if s % period]
    if misaligned:
        cfg = schedule.config
        raise ScheduleError(
            f"the schedule changes phase at step(s) {misaligned[:5]}, inside a generation batch: {why}. "
            f"Make role_steps ({cfg.role_steps}), alternating_steps ({cfg.alternating_steps}) and alternate_every "
            f"({cfg.alternate_every}) multiples of {period}, or lower num_iterations / steps_per_generation."
        )
    if save_steps is not None and save_steps % period:
        raise ScheduleError(f"save_steps={save_steps} would checkpoint inside a generation batch ({why}); "
                            f"use a multiple of {period} so that a resumed run regenerates where the batch began")
    return period
