"""Execution-based rewards for the five-stage generator and the test-writing discriminator."""

from rewards.batch import BatchError, parse_batch
from rewards.config import RewardArguments, RewardConfig
from rewards.engine import ExecStats, ExecutionEngine, Program, Verdict, shared_sandbox
from rewards.metrics import batch_metrics
from rewards.mutation import Mutant, generate_mutants
from rewards.quality import quality_metrics
from rewards.registry import (
    REWARD_FUNCS,
    default_reward_names,
    get_reward_funcs,
    get_reward_weights,
    make_scorer,
    resolve_names,
)
from rewards.scorer import RewardScorer
from rewards.context import DiscriminatorScore, RewardContext
from rewards.shaping import repetition_score, format_score

__all__ = [
    "BatchError", "DiscriminatorScore", "ExecStats", "ExecutionEngine", "Mutant", "Program",
    "REWARD_FUNCS", "RewardArguments", "RewardConfig", "RewardContext", "RewardScorer", "Verdict",
    "batch_metrics", "repetition_score", "default_reward_names", "format_score", "generate_mutants",
    "get_reward_funcs", "get_reward_weights", "make_scorer", "parse_batch", "quality_metrics", "resolve_names", "shared_sandbox",
]
