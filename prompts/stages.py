"""The five reasoning stages: ids, names and what each side does at each stage.

This is metadata (for logs, metrics and configs); the words the model actually reads live in
the template files, so a user can rephrase them without touching code.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from numbers import Integral


@dataclass(frozen=True)
class Stage:
    """One stage of the generator's reasoning and the discriminator's matching test focus."""

    id: int
    key: str
    name: str
    description: str
    test_focus: str


STAGES: tuple[Stage, ...] = (
    Stage(1, "informal", "Informal reasoning",
          "Intuition in plain words: what is asked, what the inputs and outputs are.",
          "Basic functionality tests: the happy path, empty input, a single element."),
    Stage(2, "structured", "Structured reasoning",
          "A numbered breakdown of the problem, the approach, and the edge cases.",
          "Edge-case tests."),
    Stage(3, "pseudocode", "Pseudocode",
          "The algorithm as pseudocode.",
          "Algorithmic tests: loop bounds, off-by-one errors."),
    Stage(4, "constraints", "Constraints and invariants",
          "Assumptions, complexity, and the invariants the code must keep.",
          "Tests of the constraints and stress inputs."),
    Stage(5, "code", "Code",
          "The complete, executable Python function.",
          "Adversarial tests: tricky inputs, unexpected combinations."),
)

NUM_STAGES = len(STAGES)
CODE_STAGE = STAGES[-1].id
# Max new tokens of each generator stage unless a recipe says otherwise (the chain, RL, the warm start's teacher,
# the bootstrap and the memory estimate all start from it).
DEFAULT_GENERATOR_TOKENS: tuple[int, ...] = (96, 128, 128, 96, 256)


def stage_budgets(name: str, values: Sequence[int]) -> tuple[int, ...]:
    """Token budgets per stage: ``values`` holds 1 (used for every stage) or NUM_STAGES positive integers; returns
    NUM_STAGES of them. ValueError naming ``name`` otherwise. The one check of every stage budget in the project."""
    values = list(values)
    if len(values) not in (1, NUM_STAGES) or any(isinstance(v, bool) or not isinstance(v, Integral) or v < 1
                                                 for v in values):
        raise ValueError(f"{name} must be 1 or {NUM_STAGES} positive integers, got {values}")
    return tuple(int(v) for v in (values * NUM_STAGES if len(values) == 1 else values))


def get_stage(ref: int | str) -> Stage:
    """Look a stage up by id (1..5) or key ("informal", ..., "code"); ValueError otherwise."""
    for stage in STAGES:
        if ref == stage.id or ref == stage.key:
            return stage
    known = ", ".join(f"{s.id}/{s.key}" for s in STAGES)
    raise ValueError(f"unknown stage {ref!r}; known stages: {known}")
