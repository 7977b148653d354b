"""The console line of a training step (pipeline.training.console), with known answers."""

from __future__ import annotations

import logging
import warnings

from pipeline.training.console import compact_line
from pipeline.quiet import quiet_third_party


def test_a_training_log_becomes_one_short_line_with_what_a_person_watches() -> None:
    logs = {"loss": 0.01, "reward": 0.41234, "generator/pass_rate": 0.25, "generator/pass_rate_own": 0.5,
            "frac_reward_zero_std": 0.0, "generator/collapse_rate": 0.0, "phase/role": 1.0, "phase/train_stage": 2.0,
            "timing/step_s": 44.6, "timing/generation_share": 0.56, **{f"noise/{i}": i for i in range(100)}}
    line = compact_line(logs, max_steps=4, step=2)
    assert line == ("step 2/4 | generator stage 2 | reward 0.412 | pass 0.25 | pass_own 0.50 | zero_std 0.00 | "
                    "collapse 0.00 | 45 s/step (56% generation)")


def test_discriminator_unified_benchmark_and_summary_logs() -> None:
    disc = {"phase/role": 0.0, "phase/train_stage": 0.0, "discriminator/validity": 0.125, "reward": float("nan")}
    assert compact_line(disc, 0, 7) == "step 7 | discriminator all stages | valid 0.12"  # NaN reward left out
    assert compact_line({"phase/role": 2.0, "phase/train_stage": 1.0}, 4, 1) == "step 1/4 | unified stage 1"
    bench = {"eval_bench/direct/pass@1": 0.6, "eval_bench/direct/syntax_valid": 1.0}
    assert compact_line(bench, 4, 4) == "step 4/4 | direct pass@1 0.60"
    assert compact_line({"train_runtime": 204.1, "train_loss": 0.0}, 4, 4) == "step 4/4 | done in 204 s"
    assert compact_line({"epoch": 1.0}, 4, 4) == ""  # nothing a person needs: no line


def test_third_party_noise_is_filtered_and_ours_is_not() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        quiet_third_party()
        warnings.warn("`is_gradient_checkpointing` is deprecated and will be removed in v6.", FutureWarning)
        warnings.warn("`something_of_ours` is deprecated", FutureWarning)
    assert [str(w.message) for w in caught] == ["`something_of_ours` is deprecated"]
    assert logging.getLogger("bitsandbytes.backends.cpu.ops").getEffectiveLevel() == logging.ERROR
