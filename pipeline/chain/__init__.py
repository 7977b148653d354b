"""The five-stage chain and the rollout: the generator writes each stage, the discriminator tests it, and the
``StagedRollout`` hands TRL the completions, masks and the plain-data record the rewards read.

Imports ``prompts``, ``pipeline.models`` and ``pipeline.engines`` (which runs the model).
``stages`` (``generate_chains``: both roles through the five stages), ``rollout`` (TRL's ``rollout_func``).
"""

from pipeline.chain.stages import (
    Chain, ChainConfig, PrefixUnstableError, Turns, accumulate_tests, generate_chains, iter_chain_stages,
)  # fmt: skip

__all__ = ["Chain", "ChainConfig", "PrefixUnstableError", "Turns", "accumulate_tests", "generate_chains",
           "iter_chain_stages"]
