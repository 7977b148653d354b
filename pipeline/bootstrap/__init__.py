"""Expert iteration without a teacher (STaR, ReST): sample chains with the current adapters, keep what the
sandbox verifies, fine-tune each adapter on its own kept samples, repeat.

    from pipeline.bootstrap import BootstrapConfig, run_bootstrap
    final = run_bootstrap(model_config, sft_training_args("outputs/bootstrap"), BootstrapConfig(rounds=2), rows)

docs/bootstrap.md explains a round, the drop reasons and the saved files.
"""

from pipeline.bootstrap.config import BootstrapConfig, BootstrapError
from pipeline.bootstrap.filters import (
    GENERATOR_REASONS, TEST_REASONS, ChainRecord, Tally, TestRecord, degenerate_reason, judge_chains, judge_tests,
    seed_tests,
)  # fmt: skip
from pipeline.bootstrap.run import (
    FINAL_DIR, RECORD_FILE, SUMMARY_FILE, check_bootstrap_run, finished_rounds, round_dir, run_bootstrap,
)  # fmt: skip

__all__ = [
    "FINAL_DIR", "GENERATOR_REASONS", "RECORD_FILE", "SUMMARY_FILE", "TEST_REASONS", "BootstrapConfig",
    "BootstrapError", "ChainRecord", "check_bootstrap_run", "Tally", "TestRecord", "degenerate_reason", "finished_rounds", "judge_chains",
    "judge_tests", "round_dir", "run_bootstrap", "seed_tests",
]
