"""Every knob of the reward computation in one validated dataclass.

Kept apart from the reward code so that train configs (YAML / CLI via ``TrlParser``) can build it
and so that a bad value fails at start-up with the field's name, not in the middle of a step.
"""

from __future__ import annotations

import json

import math
from dataclasses import dataclass, field

from prompts.stages import NUM_STAGES
from sandbox import SandboxConfig

DISCRIMINATOR_VARIANTS = ("adversarial", "weighted", "mutation")
STAGE_SCOPES = ("cumulative", "current")


@dataclass
class RewardConfig:
    """Configuration of the reward functions (see ``rewards/README.md`` for the formulas).

    Attributes:
        num_stages: number of generator stages; ``tests_by_stage`` and ``stage_texts`` have this length.
        centred: generator reward is ``pass_rate - 0.5`` instead of ``pass_rate`` (a signed signal
            when every completion of a group is judged against a fixed point, not only each other).
        discriminator_variant: which formula ``discriminator`` / ``default_reward_names`` use:
            ``adversarial``, ``weighted`` or ``mutation``.
        stage_scope: which discriminator tests a discriminator reward counts for a sample with
            ``train_stage = k``: ``cumulative`` = tests written after stages 1..k, ``current`` =
            tests written after stage k only. ``train_stage = 0`` always means all stages. The
            generator is always judged on the cumulative tests (they are what its code must pass).
        count_rejections_as_invalid: tests the rollout's parser rejected (``disc_rejections``) count
            as invalid in the discriminator's validity when its scope covers every stage (the
            rejection counts carry no stage, so stage-restricted scores cannot include them).
        weighted_valid, weighted_invalid, weighted_bug_catch: coefficients of the ``weighted``
            variant: ``valid*valid_pct - invalid*invalid_pct + bug_catch*bug_catch_rate``, clamped to
            [-1, 1].
        max_mutants: cap on mutants of one reference solution (``mutation`` variant). Each mutant
            meets every valid generated test of its problem in the batch, so the sandbox work of
            the variant grows as ``max_mutants x distinct valid tests`` per problem and step.
        mutation_seed: seed of the mutant sampler (mutants are a pure function of source and seed).
        repetition_ngram: token n-gram length used by ``repetition_score``.
        repetition_threshold: repetition scores at or below this are normal text and cost nothing.
        repetition_cost: multiplier of the repetition score above the threshold (reward = -cost*score); not
            GRPOConfig's ``repetition_penalty``, which changes generation.
        hack_penalty: reward given to a sample whose execution raised any sandbox flag (<= 0).
        test_timeout: seconds per test on the reference solution (None: the sandbox's default).
        verdict_runs: independent runs (separate processes) a verdict must repeat in before a reward
            relies on it: the reference must pass a generated test in this many runs for the test
            to be valid, and a candidate's or a mutant's failure counts as a catch or a kill only if
            it fails in this many runs, while the reference, run again beside it, still passes. A
            test whose verdicts disagree is invalid (``nondeterministic``). 1 trusts single runs.
        time_floor, time_factor: a test's time limit on candidates and mutants is
            ``min(test_timeout, max(time_floor, time_factor * the reference's time on that test))``
            (EvalPlus sets its per-input limits the same way), so a loop that never ends costs
            ``time_floor``, and a test that only waits cannot outlast the reference's limit.
        too_slow_share: a generated test on which the reference needs more than this share of
            ``test_timeout`` is invalid (``too_slow``); keep it at most ``1 / time_factor`` so that
            a timeout only counts against a candidate when the reference finished well inside the
            candidate's limit (a timeout where the reference took more than ``limit / time_factor``
            is left unjudged).
        cache_size: verdicts kept across steps (the reference and mutants meet the same tests again
            and again); 0 keeps them for the current batch only.
        weights: per reward-function weights, in the order of ``get_reward_weights``; reward
            functions not named here get 1.0.
    """

    num_stages: int = NUM_STAGES
    centred: bool = False
    discriminator_variant: str = "adversarial"
    stage_scope: str = "cumulative"
    count_rejections_as_invalid: bool = True
    weighted_valid: float = 0.4
    weighted_invalid: float = 0.6
    weighted_bug_catch: float = 0.6
    max_mutants: int = 8
    mutation_seed: int = 0
    repetition_ngram: int = 4
    repetition_threshold: float = 0.5
    repetition_cost: float = 1.0
    hack_penalty: float = -1.0
    test_timeout: float | None = None
    verdict_runs: int = 2
    time_floor: float = 1.0
    time_factor: float = 4.0
    too_slow_share: float = 0.25
    cache_size: int = 100_000
    weights: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        def need(ok: bool, message: str) -> None:
            if not ok:
                raise ValueError(f"RewardConfig: {message}")

        def finite(name: str) -> float:
            value = getattr(self, name)
            need(
                isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value),
                f"{name} must be a finite number, got {value!r}",
            )
            return float(value)

        def positive_int(name: str, minimum: int) -> None:
            value = getattr(self, name)
            need(
                isinstance(value, int) and not isinstance(value, bool) and value >= minimum,
                f"{name} must be an integer >= {minimum}, got {value!r}",
            )

        positive_int("num_stages", 1)
        positive_int("max_mutants", 0)
        positive_int("mutation_seed", 0)
        positive_int("repetition_ngram", 2)
        positive_int("cache_size", 0)
        need(
            self.discriminator_variant in DISCRIMINATOR_VARIANTS,
            f"discriminator_variant must be one of {DISCRIMINATOR_VARIANTS}, got {self.discriminator_variant!r}",
        )
        need(self.stage_scope in STAGE_SCOPES, f"stage_scope must be one of {STAGE_SCOPES}, got {self.stage_scope!r}")
        for name in ("weighted_valid", "weighted_invalid", "weighted_bug_catch", "repetition_cost"):
            need(finite(name) >= 0, f"{name} must be >= 0, got {getattr(self, name)!r}")
        need(0 <= finite("repetition_threshold") < 1, "repetition_threshold must lie in [0, 1)")
        need(finite("hack_penalty") <= 0, "hack_penalty is a penalty: it must be <= 0")
        positive_int("verdict_runs", 1)
        need(finite("time_floor") > 0, "time_floor must be positive")
        need(finite("time_factor") >= 1, "time_factor must be >= 1 (a candidate gets at least the reference's time)")
        need(0 < finite("too_slow_share") <= 1, "too_slow_share must lie in (0, 1]")
        if self.test_timeout is not None:
            need(finite("test_timeout") > 0, "test_timeout must be positive (or None for the sandbox default)")
        need(isinstance(self.weights, dict), "weights must map reward names to numbers")
        if self.test_timeout is not None and self.time_floor > self.test_timeout:
            need(False, f"time_floor ({self.time_floor}) must not exceed test_timeout ({self.test_timeout})")
        for name, weight in self.weights.items():
            need(
                isinstance(weight, (int, float)) and not isinstance(weight, bool) and math.isfinite(weight),
                f"weights[{name!r}] must be a finite number, got {weight!r}",
            )

    @property
    def reference_timeout(self) -> float:
        """Seconds per test on the reference: ``test_timeout``, or the sandbox's default."""
        return self.test_timeout if self.test_timeout is not None else SandboxConfig.timeout_s

    def candidate_limit(self, reference_s: float) -> float:
        """A test's time limit on candidates and mutants, from the reference's time on it (rounded
        up to 0.1 s, so that tests of similar speed share a sandbox job)."""
        limit = max(self.time_floor, self.time_factor * reference_s)
        return min(self.reference_timeout, math.ceil(limit * 10) / 10)


@dataclass
class RewardArguments(RewardConfig):
    """``RewardConfig`` as a recipe reads it: ``weights`` is also JSON text on the command line
    (``--weights '{"format": 0.5}'``), a mapping in the YAML."""

    weights: str = field(default="{}", metadata={"help": "Per reward-function weights: a YAML mapping, or JSON text."})

    def __post_init__(self) -> None:
        if isinstance(self.weights, str):
            try:
                self.weights = json.loads(self.weights)
            except ValueError as err:
                raise ValueError(f"weights must be a JSON object, got {self.weights!r}") from err
        super().__post_init__()
