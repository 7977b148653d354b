"""Supervised warm start of the generator adapter before RL.

    from pipeline.warmstart import WarmStartConfig, run_warm_start, sft_training_args
    folder = run_warm_start(model_config, sft_training_args("outputs/sft"), WarmStartConfig(), rows)
    # RL: ModelConfig(generator_init_adapter=str(folder), discriminator_init_adapter=str(folder))

docs/warmstart.md explains the data formats, the loss masks and the recipe.
"""

from pipeline.warmstart.config import (
    RECIPE_DEFAULTS, WarmStartConfig, WarmStartError, check_sft_run, sft_training_args,
)  # fmt: skip
from pipeline.warmstart.data import (
    DROP_REASONS,
    DataReport,
    assistant_only_dataset,
    assistant_only_tokens,
    build_sft_dataset,
    sft_examples,
)
from pipeline.warmstart.probe import GenerationProbe
from pipeline.warmstart.run import adapter_digest, run_warm_start
from pipeline.warmstart.teacher import teacher_chains

__all__ = [
    "DROP_REASONS", "RECIPE_DEFAULTS", "DataReport", "GenerationProbe", "WarmStartConfig", "WarmStartError",
    "adapter_digest", "assistant_only_dataset", "check_sft_run", "assistant_only_tokens", "build_sft_dataset",
    "run_warm_start", "sft_examples", "sft_training_args", "teacher_chains",
]
