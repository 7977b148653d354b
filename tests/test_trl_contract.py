"""The private parts of TRL's GRPOTrainer that DuelGRPOTrainer overrides or reads are still there, as named.

``pipeline.training.trainer.PRIVATE_HOOKS`` lists them with their parameters; a TRL or transformers release that
renames one, drops it or changes its parameters fails here, instead of silently skipping our override (a hook
TRL no longer calls would leave the phase guard or the per-adapter checkpoint restore out of a run).
"""

from __future__ import annotations

import inspect

import pytest
from trl import GRPOTrainer

from pipeline.training.trainer import PRIVATE_ATTRIBUTES, PRIVATE_HOOKS, DuelGRPOTrainer


@pytest.mark.parametrize("name", sorted(PRIVATE_HOOKS))
def test_each_private_hook_exists_in_trl_with_the_parameters_we_override(name: str) -> None:
    hook = getattr(GRPOTrainer, name, None)
    assert callable(hook), f"GRPOTrainer has no {name} any more"
    assert tuple(inspect.signature(hook).parameters)[1:] == PRIVATE_HOOKS[name]


def test_every_private_method_we_define_is_declared() -> None:
    ours = {name for name, value in vars(DuelGRPOTrainer).items()
            if name.startswith("_") and not name.startswith("__") and callable(value)}
    undeclared = {name for name in ours if hasattr(GRPOTrainer, name)} - set(PRIVATE_HOOKS)
    assert undeclared == set(), f"overrides of TRL's private methods not in PRIVATE_HOOKS: {undeclared}"


def test_the_private_attributes_we_read_are_set_by_trl() -> None:
    source = inspect.getsource(GRPOTrainer.__init__)
    for name in PRIVATE_ATTRIBUTES:
        assert f"self.{name} =" in source or f"self.{name}:" in source, name
