"""The ``rollout_func`` TRL's ``GRPOTrainer`` calls: five-stage chains turned into trainable completions.

Contract of TRL 1.16 (see ../shared/NOTES.md): called as ``rollout_func(prompts, trainer)`` with the
prompts already repeated ``num_generations`` times; returns ``prompt_ids``, ``completion_ids``,
``logprobs`` (the sampler's per-token logprobs when the engine reports them, as the vLLM engine does, NaN on
inserted tokens; None with transformers, which samples from the trained model itself), ``env_mask``
(1 = a token the policy generated and is trained on, 0 = inserted context) and any extra fields,
which TRL forwards to the reward functions as keyword arguments.

For the role being trained, the completion is that role's conversation after its first prompt:

    generator:      stage1 | end+user turn 2 | stage2 | ... | stage5
    discriminator:  tests1 | end+user turn 2 (shows generator stage 2) | tests2 | ... | tests5

where only the role's own generated stages >= ``train_stage`` are unmasked (the stage curriculum;
``train_stage`` 0 trains all stages). The other role runs frozen, without gradient.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any, Protocol, Sequence

from prompts.record import PROBLEM_COLUMNS, RolloutRecord, columns
from prompts.stages import NUM_STAGES

from pipeline.chain import Chain, ChainConfig, generate_chains
from pipeline.engines.base import GenerationEngine
from prompts.roles import ROLES
from pipeline.models.policies import Policies


@dataclass(frozen=True)
class Phase:
    """What a generation batch trains: a role (or ``unified``: both roles, alternating per prompt
    group, played by one adapter) and the curriculum stage (0 = all stages)."""

    role: str = "generator"
    train_stage: int = 0

    def __post_init__(self) -> None:
        if self.role not in (*ROLES, "unified"):
            raise ValueError(f"role must be one of {(*ROLES, 'unified')}, got {self.role!r}")
        if not 0 <= self.train_stage <= NUM_STAGES:
            raise ValueError(f"train_stage must be 0 (all) or 1..{NUM_STAGES}, got {self.train_stage}")


def prompt_key(prompt: Any) -> str:
    """A stable key for a dataset prompt (a string or a list of chat messages)."""
    return prompt if isinstance(prompt, str) else json.dumps(prompt, sort_keys=True)


class ProblemIndex:
    """Finds the problem row behind each prompt TRL hands the rollout (TRL passes prompts only)."""

    def __init__(self, rows: Sequence[dict[str, Any]], prompt_column: str = "prompt"):
        self.rows: dict[str, dict[str, Any]] = {}
        for row in rows:
            self.add(row, prompt_column)

    def add(self, row: dict[str, Any], prompt_column: str = "prompt") -> None:
        self.rows[prompt_key(row[prompt_column])] = dict(row)

    def __getitem__(self, prompt: Any) -> dict[str, Any]:
        try:
            return self.rows[prompt_key(prompt)]
        except KeyError:
            raise KeyError(f"the rollout got a prompt that is in none of its problems: {str(prompt)[:200]!r}") from None


def assemble(chain: Chain, role: str, train_stage: int) -> tuple[list[int], list[int], list[int]]:
    """``prompt_ids``, ``completion_ids`` and ``env_mask`` of ``role``'s side of ``chain``."""
    turns = chain.generator if role == "generator" else chain.discriminator
    completion: list[int] = []
    mask: list[int] = []
    for stage, generated in enumerate(turns.generated, start=1):
        if stage > 1:
            inserted = turns.inserted[stage - 2]
            completion += inserted
            mask += [0] * len(inserted)
        trained = train_stage == 0 or stage >= train_stage
        completion += generated
        mask += [int(trained)] * len(generated)
    return list(turns.prompt), completion, mask


def sampler_logprobs(chain: Chain, role: str) -> list[float] | None:
    """The sampler's logprob of every completion token of ``role``'s side (NaN on inserted tokens, which
    nobody sampled), aligned with ``assemble``'s ``completion_ids``; None when the engine reported none."""
    turns = chain.generator if role == "generator" else chain.discriminator
    if turns.logprobs is None:
        return None
    out: list[float] = []
    for stage, values in enumerate(turns.logprobs, start=1):
        if stage > 1:
            out += [float("nan")] * len(turns.inserted[stage - 2])
        out += values
    return out


def roles_for(phase: Phase, n: int, num_generations: int, offset: int = 0) -> list[str]:
    """The role of each of ``n`` completions: the phase's, or in ``unified`` mode alternating per
    group of ``num_generations`` (GRPO compares completions within a group, so a group keeps one role).
    ``offset`` is the index of the first completion in the whole generation batch: under several
    processes a group can span two of them, and both must give it the same role."""
    if phase.role != "unified":
        return [phase.role] * n
    return [ROLES[((offset + i) // num_generations) % 2] for i in range(n)]


class ReplaySource(Protocol):
    """Failure replay as the rollout sees it (``pipeline.training.replay.ReplayBuffer``): the stored problem that
    replaces the prompt group of ``key`` at ``step``, or None. A pure function of its arguments and the buffer,
    so every process decides the same for the same group."""

    def choose(self, key: str, step: int) -> dict[str, Any] | None: ...


@dataclass
class RolloutState:
    """What the rollout reads when it generates, owned by the training loop (``pipeline.training.state.DuelState``
    extends it): the ``phase`` and optimizer ``step`` the batch is generated for, and the failure ``replay`` to
    draw from (None: none). The rollout reports back through ``generated``: the phase the buffered generation
    batch belongs to (``batch_phase``, which the phase guard compares); ``DuelState`` also clocks the seconds."""

    phase: Phase = field(default_factory=Phase)
    step: int = 0
    replay: ReplaySource | None = None
    batch_phase: Phase | None = None

    def generated(self, seconds: float) -> None:
        self.batch_phase = self.phase


class StagedRollout:
    """``rollout_func`` for ``GRPOTrainer``: reads ``state`` (phase, step, replay) and builds one batch.

    ``adapters`` maps each role to the adapter that plays it (in ``unified`` mode both map to one);
    ``num_generations`` is the GRPO group size (the ``unified`` phase gives each group one role).
    ``engine`` generates; None: transformers on the trainer's own model, which TRL's rollout contract hands over
    as ``trainer`` (the one thing read from it: the model to generate with, unwrapped for generation).
    """

    def __init__(self, problems: ProblemIndex, chain: ChainConfig, state: RolloutState | None = None,
                 adapters: dict[str, str] | None = None, engine: GenerationEngine | None = None,
                 num_generations: int | None = None):
        self.problems = problems
        self.chain = chain
        self.state = state if state is not None else RolloutState()
        self.adapters = adapters or {role: role for role in ROLES}
        self.engine = engine
        self.num_generations = num_generations

    def __call__(self, prompts: list[Any], trainer: Any) -> dict[str, Any]:
        from accelerate import PartialState
        from trl.models import unwrap_model_for_generation

        rows, replayed = self.rows_for(prompts)
        started = time.perf_counter()
        if self.engine is not None:
            chains = generate_chains(Policies(trainer.model, trainer.processing_class), rows, self.chain,
                                     adapters=self.adapters, engine=self.engine)
        else:
            with unwrap_model_for_generation(trainer.model_wrapped, trainer.accelerator,
                                             gradient_checkpointing_kwargs=trainer.args.gradient_checkpointing_kwargs) as model:
                policies = Policies(model, trainer.processing_class)
                chains = generate_chains(policies, rows, self.chain, adapters=self.adapters)
        self.state.generated(time.perf_counter() - started)
        offset = PartialState().process_index * len(chains)  # TRL gives each process one slice
        return self.to_trl(chains, self.roles(len(chains), offset), rows, replayed)

    def roles(self, n: int, offset: int = 0) -> list[str]:
        """The role of each of ``n`` completions under the current phase (see ``roles_for``)."""
        if self.state.phase.role == "unified" and not self.num_generations:
            raise ValueError("the unified phase needs the rollout's num_generations (the GRPO group size)")
        return roles_for(self.state.phase, n, self.num_generations or 1, offset)

    def rows_for(self, prompts: list[Any]) -> tuple[list[dict[str, Any]], list[bool]]:
        """The problem row behind each prompt, whole prompt groups swapped for failure replay's stored problems
        where ``state.replay`` draws one, and which rows were swapped."""
        rows = [self.problems[p] for p in prompts]
        replay = self.state.replay
        if replay is None:
            return rows, [False] * len(rows)
        decided: dict[str, dict[str, Any] | None] = {}
        out, replayed = [], []
        for prompt, row in zip(prompts, rows):
            key = prompt_key(prompt)
            if key not in decided:
                decided[key] = replay.choose(key, self.state.step)
            item = decided[key]
            out.append({**row, **item} if item is not None else row)
            replayed.append(item is not None)
        return out, replayed

    def to_trl(self, chains: list[Chain], roles: list[str], rows: Sequence[dict[str, Any]],
               replayed: Sequence[bool] | None = None) -> dict[str, Any]:
        """The dict TRL expects, plus every field of each completion's ``RolloutRecord`` as extra fields
        (``prompts.record``): the problem posed (``rows``) and what the chain wrote."""
        out: dict[str, Any] = {"prompt_ids": [], "completion_ids": [], "logprobs": None, "env_mask": []}
        logprobs = []
        train_stage = self.state.phase.train_stage
        for chain, role in zip(chains, roles):
            prompt, completion, mask = assemble(chain, role, train_stage)
            out["prompt_ids"].append(prompt)
            out["completion_ids"].append(completion)
            out["env_mask"].append(mask)
            logprobs.append(sampler_logprobs(chain, role))
        if logprobs and all(values is not None for values in logprobs):
            out["logprobs"] = logprobs
        replayed = replayed if replayed is not None else [False] * len(chains)
        out.update(columns([
            RolloutRecord(**{name: row.get(name) for name in PROBLEM_COLUMNS}, role=role, train_stage=train_stage,
                          stage_texts=c.stage_texts, test_texts=c.test_texts, final_code=c.final_code,
                          tests_by_stage=c.tests_by_stage, disc_rejections=dict(c.rejections),
                          stage_tokens=c.stage_tokens, replayed=bool(again))
            for c, role, row, again in zip(chains, roles, rows, replayed)
        ]))
        return out
