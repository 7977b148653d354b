"""What a bootstrap run samples, what it keeps, and how many rounds it repeats; the optimiser of each round's
fine-tuning lives in TRL's `SFTConfig` and the LoRA shape in `pipeline.models.ModelConfig`.

Flat, so `TrlParser` reads it from a YAML recipe or from flags (`train.py --job bootstrap --help`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from prompts.stages import DEFAULT_GENERATOR_TOKENS, stage_budgets


class BootstrapError(ValueError):
    """A bootstrap run that cannot work as configured."""


def _budgets(name: str, values: list[int]) -> tuple[int, ...]:
    try:
        return stage_budgets(name, values)
    except ValueError as err:
        raise BootstrapError(str(err)) from err


@dataclass
class BootstrapConfig:
    """Expert iteration (STaR / ReST): sample chains with the current adapters, keep what the sandbox verifies,
    fine-tune each adapter on its own kept samples, repeat."""

    rounds: int = field(
        default=2, metadata={"help": "Sample-filter-train rounds; each starts from the adapters the previous one saved."})
    samples_per_problem: int = field(
        default=4, metadata={"help": "Chains sampled per problem and round: more samples, more chances that one passes "
                                     "on a problem the model solves only sometimes (the point of rejection sampling)."})
    temperature: float = field(
        default=0.8, metadata={"help": "Sampling temperature of both roles; > 0, or every sample of a problem is the same."})
    top_p: float = field(default=1.0, metadata={"help": "Nucleus sampling mass of both roles."})
    generator_tokens: list[int] = field(
        default_factory=lambda: list(DEFAULT_GENERATOR_TOKENS),
        metadata={"help": "Max new tokens per generator stage (5 values, or 1 for all), as in RL."})
    discriminator_tokens: list[int] = field(
        default_factory=lambda: [128], metadata={"help": "Max new tokens per discriminator stage (5, or 1 for all)."})
    generation_batch_size: int = field(
        default=16, metadata={"help": "Chains per batched five-stage generation (memory bound, not a quality knob)."})
    max_problems_per_round: int | None = field(
        default=None, metadata={"help": "Problems sampled per round, drawn afresh each round with `seed`; None = all."})
    max_kept_per_problem: int | None = field(
        default=None, metadata={"help": "Passing chains kept per problem and round (the rest: 'over_quota'), so easy "
                                        "problems do not crowd out the rest of the data; None = no limit."})
    min_stage_chars: int = field(
        default=1, metadata={"help": "A generator stage with fewer non-blank characters counts as empty (dropped)."})
    collapse_threshold: float = field(
        default=0.5, metadata={"help": "Repetition score (prompts.collapse) at or above which a stage is "
                                       "collapsed and its chain dropped; keyword stutters always are."})
    collapse_ngram: int = field(default=8, metadata={"help": "n-gram length of the repetition score."})
    test_timeout_s: float = field(
        default=3.0, metadata={"help": "Sandbox seconds per test, for chains and for generated tests on the reference."})
    train_generator: bool = field(
        default=True, metadata={"help": "Fine-tune the generator adapter on its kept chains."})
    train_discriminator: bool = field(
        default=True, metadata={"help": "Fine-tune the discriminator adapter on its valid tests."})
    seed_with_own_tests: bool = field(
        default=True, metadata={"help": "Round 1 (every round with seed_every_round): a problem none of whose generated "
                                        "tests is valid lends its own tests "
                                        "(judged by the same rules) as a stage-1 target, so the discriminator learns "
                                        "the answer format even before it writes valid tests itself."})
    seed_every_round: bool = field(
        default=False, metadata={"help": "Seed with own tests in every round, not only round 1: while the "
                                         "discriminator writes few valid tests, later rounds would otherwise have "
                                         "nothing to train it on (docs/learning.md: round 2 had 3 tests, none valid)."})
    seed_every_stage: bool = field(
        default=False, metadata={"help": "Spread each seeded problem's own tests one per stage (stage s gets test "
                                         "s-1, cycling) instead of all at stage 1, so the discriminator learns to "
                                         "write a whole assert at every stage, as RL asks it to."})
    rationalize: bool = field(
        default=False, metadata={"help": "STaR's rationalization: a problem none of whose sampled chains passed lends one "
                                         "chain of the model's own stages 1-4 (its first sample with none blank or "
                                         "collapsed) and the problem's reference solution as stage 5, judged like a "
                                         "sampled chain (the reference must pass the problem's own tests). Counted apart, "
                                         "as source 'rationalized': where the model rarely solves a problem, the round "
                                         "still teaches the stage format with code that works."})
    templates: str = field(default="default", metadata={"help": "Prompt template set name or folder."})

    def __post_init__(self) -> None:
        for name in ("rounds", "samples_per_problem", "generation_batch_size", "min_stage_chars", "collapse_ngram"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise BootstrapError(f"{name} must be a positive integer, got {value!r}")
        for name in ("max_problems_per_round", "max_kept_per_problem"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise BootstrapError(f"{name} must be a positive integer or null, got {value!r}")
        if not self.temperature > 0:
            raise BootstrapError(f"temperature must be > 0 (rejection sampling needs different samples), "
                                 f"got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise BootstrapError(f"top_p must lie in (0, 1], got {self.top_p}")
        if not 0 < self.collapse_threshold <= 1:
            raise BootstrapError(f"collapse_threshold must lie in (0, 1], got {self.collapse_threshold}")
        if not self.test_timeout_s > 0:
            raise BootstrapError(f"test_timeout_s must be > 0, got {self.test_timeout_s}")
        if not (self.train_generator or self.train_discriminator):
            raise BootstrapError("train_generator and train_discriminator are both off: nothing would train")
        _budgets("generator_tokens", self.generator_tokens)
        _budgets("discriminator_tokens", self.discriminator_tokens)
