"""Reward functions selectable by name, wrapped for TRL (open-r1 style registry).

``REWARD_FUNCS`` maps a name to a function of the batch's ``RewardContext``;
``get_reward_funcs`` turns names into TRL reward callables
``fn(prompts, completions, completion_ids, **kwargs) -> list[float | None]`` that share one
scorer, so the batch is executed once however many of them a trainer uses. TRL logs each under
its ``__name__``, which is the registry name.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

from rewards.config import RewardConfig
from rewards.engine import ExecutionEngine
from rewards.metrics import batch_metrics
from rewards.quality import quality_metrics
from rewards.scorer import RewardScorer
from rewards.context import RewardContext

RewardFn = Callable[[RewardContext], list]

REWARD_FUNCS: dict[str, RewardFn] = {
    "generator_pass_rate": RewardContext.generator_rewards,
    "discriminator_adversarial": lambda ctx: ctx.discriminator_rewards("adversarial"),
    "discriminator_weighted": lambda ctx: ctx.discriminator_rewards("weighted"),
    "discriminator_mutation": lambda ctx: ctx.discriminator_rewards("mutation"),
    "format": RewardContext.format_rewards,
    "repetition": RewardContext.repetition_rewards,
    "hack_penalty": RewardContext.hack_rewards,
}
ALIASES = ("discriminator",)  # -> discriminator_<config.discriminator_variant>


def resolve_names(names: Sequence[str], config: RewardConfig) -> list[str]:
    """Registry names for ``names`` ("discriminator" picks the configured variant); ValueError on
    an unknown or repeated name."""
    resolved = [f"discriminator_{config.discriminator_variant}" if n == "discriminator" else n for n in names]
    unknown = [n for n in resolved if n not in REWARD_FUNCS]
    if unknown:
        raise ValueError(f"unknown reward function(s) {unknown}; known: {sorted(REWARD_FUNCS) + list(ALIASES)}")
    if len(set(resolved)) != len(resolved):
        raise ValueError(f"reward functions named twice: {resolved}")
    return resolved


def default_reward_names(config: RewardConfig) -> list[str]:
    """Every reward of both roles, with the configured discriminator variant."""
    return resolve_names(
        ["generator_pass_rate", "discriminator", "format", "repetition", "hack_penalty"], config
    )


def get_reward_weights(names: Sequence[str], config: RewardConfig) -> list[float]:
    """``GRPOConfig.reward_weights`` for ``names``, from ``config.weights`` (default 1.0)."""
    return [float(config.weights.get(n, 1.0)) for n in resolve_names(names, config)]


def make_scorer(names: Sequence[str], config: RewardConfig, engine: ExecutionEngine | None = None,
                keep_scored: bool = False) -> RewardScorer:
    """The ``RewardScorer`` the reward functions of ``names`` share (it builds mutants only when a name needs them;
    ``keep_scored``: it keeps each scored batch until ``drain``, for a trainer that reads them after the step)."""
    resolved = resolve_names(names, config)
    need_mutants = "discriminator_mutation" in resolved or config.discriminator_variant == "mutation"
    return RewardScorer(config, engine, need_mutants, keep_scored=keep_scored)


def get_reward_funcs(
    names: Sequence[str],
    config: RewardConfig,
    engine: ExecutionEngine | None = None,
    log_metrics: bool = True,
    scorer: RewardScorer | None = None,
) -> list[Callable[..., list]]:
    """TRL reward callables for ``names``, sharing one ``RewardScorer`` (``fn.scorer``): ``scorer`` when given
    (``make_scorer``), so that a caller that also reads the batch's context (failure replay) holds it explicitly.

    With ``log_metrics``, the first function called on a new batch also sends ``batch_metrics``
    and ``quality_metrics`` (test diversity per stage, reasoning coherence) through TRL's
    ``log_metric`` kwarg (when the trainer passes one).
    Mutants are built when the ``mutation`` variant is among the names or configured.
    """
    resolved = resolve_names(names, config)
    scorer = scorer or make_scorer(resolved, config, engine)

    def make(name: str) -> Callable[..., list]:
        compute = REWARD_FUNCS[name]

        def reward(prompts: list, completions: list, completion_ids: list | None = None, **kwargs: Any) -> list:
            with scorer.timed():
                ctx, fresh = scorer.context(kwargs)
                log_metric = kwargs.get("log_metric")
                if fresh and log_metrics and callable(log_metric):
                    for metric, value in {**batch_metrics(ctx), **quality_metrics(ctx.samples, config.num_stages)}.items():
                        log_metric(metric, value)
                values = compute(ctx)
                ctx.returned[name] = list(values)
                return values

        reward.__name__ = reward.__qualname__ = name
        reward.scorer = scorer  # type: ignore[attr-defined]
        return reward

    return [make(name) for name in resolved]
