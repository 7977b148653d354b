"""The training report (pipeline/training/report/) on a recorded log and on a synthetic one.

The expected numbers are worked out by hand from the logs (written next to each assertion), never by the
code under test. No training, no timing assertions.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.training.report import main, write_report

ROOT = Path(__file__).resolve().parents[1]
SMOKE = Path(__file__).parent / "data" / "trainer_state_smoke.json"  # final/trainer_state.json of configs/smoke.yaml
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def rows(report: str, section: str) -> dict[str, list[str]]:
    """{metric: cells after the metric name} of the table under ``## <section>``."""
    text = report.split(f"\n## {section}\n", 1)[1].split("\n## ", 1)[0]
    out = {}
    for line in text.splitlines():
        if line.startswith("| `"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            out[cells[0].strip("`")] = cells[1:]
    return out


def check_png(path: Path) -> None:
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC, path
    assert len(data) > 5000, path  # a drawn figure, not an empty file
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")  # IHDR
    assert width >= 400 and height >= 300, (path, width, height)


def run_dir(tmp_path: Path, state: Path | dict, where: str = "final") -> Path:
    run = tmp_path / "run"
    (run / where).mkdir(parents=True)
    target = run / where / "trainer_state.json"
    if isinstance(state, dict):
        target.write_text(json.dumps(state))
    else:
        shutil.copy(state, target)
    return run


# ------------------------------------------------------------------------------------------------ recorded log


def test_recorded_smoke_log(tmp_path: Path) -> None:
    assert SMOKE.stat().st_size < 100_000
    out = tmp_path / "out"
    report_path = write_report(SMOKE, out)
    assert report_path == out / "report.md"
    report = report_path.read_text()
    expected_plots = ["generator.png", "discriminator.png", "stability.png", "timing.png", "invalid_reasons.png",
                      "eval_bench.png"]
    for name in expected_plots:
        check_png(out / name)
        assert f"]({name})" in report  # linked from the report
    assert f"Read from `{SMOKE}`" in report

    # Steps 2 and 4 are generator phases (phase/role 1): reward 0.9166666269302368 then 0.875.
    # One value per quarter (max(1, 2 // 4) = 1): first 0.917, last 0.875, change -0.042, mean 0.8958.
    generator = rows(report, "Generator")
    assert generator["reward"][1:] == ["2", "0.917", "0.875", "-0.042", "0.896"]
    assert generator["generator/syntax_valid"][1:] == ["2", "0.500", "0.500", "0", "0.500"]
    # Steps 1 and 3 are discriminator phases: reward 0.0416666679084301 then 0.0; frac_reward_zero_std 0 then 1.
    discriminator = rows(report, "Discriminator")
    assert discriminator["reward"][1:] == ["2", "0.042", "0", "-0.042", "0.021"]
    assert discriminator["frac_reward_zero_std"][1:] == ["2", "0", "1.000", "1.000", "0.500"]
    # A role's metrics stay in its own table.
    assert not any(k.startswith("discriminator/") for k in generator)
    assert not any(k.startswith("generator/") for k in discriminator)
    assert "rewards/generator_pass_rate/mean" in generator and "rewards/generator_pass_rate/mean" not in discriminator
    # The run had neither the mutation reward nor the pass rate on generated tests: left out everywhere.
    assert "mutant_kill_rate" not in report and "pass_rate_generated" not in report
    drawn = json.loads((out / "summary.json").read_text())["plots"]
    assert not any("mutant_kill_rate" in s or "pass_rate_generated" in s for series in drawn.values() for s in series)
    assert "generator/pass_rate_own" in drawn["generator.png"]
    assert "discriminator/bug_catch_rate" in drawn["discriminator.png"]

    # frac_reward_zero_std over the 4 steps: (0 + 0 + 1 + 0) / 4; step time (138.07 + 81.82 + 95.71 + 58.07) / 4.
    assert "| mean `frac_reward_zero_std` (all steps) | 0.250 |" in report
    assert "| mean step time | 93.4 s |" in report
    assert "| last benchmark (step 4) | `eval_bench/direct/pass@1` 0.750 |" in report
    # no_assert: 19 at step 1 + 20 at step 3.
    assert "| `no_assert` | 39 |" in report


def test_run_folder_default_out_and_cli(tmp_path: Path) -> None:
    run = run_dir(tmp_path, SMOKE)
    result = subprocess.run([sys.executable, "-m", "pipeline.training.report", str(run)], cwd=ROOT,
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    state = run / "final" / "trainer_state.json"
    assert result.stdout.strip() == f"report: {run / 'report' / 'report.md'} (from {state})"
    assert (run / "report" / "report.md").is_file()
    check_png(run / "report" / "generator.png")


def test_help_describes_each_flag(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    text = " ".join(capsys.readouterr().out.split())  # argparse wraps to the terminal's width
    assert "RUN_DIR" in text and "checkpoint-N" in text and "--out DIR" in text and "default: RUN_DIR/report" in text


def test_newest_trainer_state_of_a_run(tmp_path: Path) -> None:
    state = json.loads(SMOKE.read_text())
    run = tmp_path / "run"
    for step in (2, 10):  # checkpoint-10 is newer than checkpoint-2, though "10" < "2" as text
        (run / f"checkpoint-{step}").mkdir(parents=True)
        (run / f"checkpoint-{step}" / "trainer_state.json").write_text(json.dumps({**state, "global_step": step}))
    (run / "checkpoint-30").mkdir()  # an interrupted save without a trainer state: ignored
    assert f"Read from `{run / 'checkpoint-10' / 'trainer_state.json'}`" in write_report(run).read_text()
    (run / "final").mkdir()
    (run / "final" / "trainer_state.json").write_text(json.dumps({**state, "global_step": 12}))
    assert f"Read from `{run / 'final' / 'trainer_state.json'}`" in write_report(run).read_text()
    (run / "checkpoint-20").mkdir()  # resumed after final/ was written, not finished since
    (run / "checkpoint-20" / "trainer_state.json").write_text(json.dumps({**state, "global_step": 20}))
    assert f"Read from `{run / 'checkpoint-20' / 'trainer_state.json'}`" in write_report(run).read_text()


@pytest.mark.parametrize("make, message", [
    (lambda d: d / "missing", "no such file or folder"),
    (lambda d: d, "no trainer_state.json in it"),
    (lambda d: _write(d / "x.json", "{not json"), "not a trainer_state.json (not JSON"),
    (lambda d: _write(d / "run_info.json", json.dumps({"schedule": "adversarial"})),
     "not a trainer_state.json (no log_history list)"),
    (lambda d: _write(d / "trainer_state.json", json.dumps({"global_step": 0, "log_history": [
        {"step": 0, "eval_bench/direct/pass@1": 0.25}]})), "the log has no training steps"),
])
def test_errors_exit_2_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str], make, message: str) -> None:
    target = make(tmp_path)
    assert main([str(target), "--out", str(tmp_path / "out")]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1 and captured.err.startswith(f"error: {target}: ")
    assert message in captured.err
    assert not (tmp_path / "out" / "report.md").exists()


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_error_exit_code_from_the_command_line(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "pipeline.training.report", str(tmp_path / "missing")], cwd=ROOT,
                            capture_output=True, text=True, check=False)
    assert result.returncode == 2
    assert result.stderr == f"error: {tmp_path / 'missing'}: no such file or folder\n"


def test_no_torch_needed() -> None:
    code = "import sys, pipeline.training.report; assert 'torch' not in sys.modules and 'trl' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)


# ------------------------------------------------------------------------------------------------ synthetic log

GEN_PASS = [0.0, 0.2, 0.2, 0.4, 0.4, 0.6, 0.8, 1.0]
DISC_VALIDITY = [0.5, 0.5, 0.6, 0.6, 0.7, 0.7, 0.9, 0.7]


def synthetic_state() -> dict:
    """16 steps alternating roles: discriminator at odd steps, generator at even ones, stage 1 then 2."""
    history: list[dict] = [{"step": 0, "eval_bench/direct/pass@1": 0.25}]  # a step-0 evaluation, no loss
    for step in range(1, 17):
        i = (step - 1) // 2  # index within the role's steps
        entry = {"step": step, "loss": 0.1, "phase/train_stage": 1.0 if step <= 8 else 2.0,
                 "frac_reward_zero_std": 1.0 if step <= 4 else 0.0,
                 "timing/step_s": 10.0 if step % 2 else 30.0, "timing/generation_s": 5.0 if step % 2 else 21.0,
                 "timing/generation_share": 0.5 if step % 2 else 0.7,
                 "stage1/reward": 99.0}  # a per-stage copy: never read as the reward
        if step % 2:
            entry.update({"phase/role": 0.0, "reward": -float(i), "rewards/discriminator_adversarial/mean": 0.1,
                          "discriminator/validity": DISC_VALIDITY[i],
                          "discriminator/bug_catch_rate": None if step == 1 else 0.25,  # None: not a value
                          "invalid_reasons/no_call": 2.0, "invalid_reasons/stage1/no_call": 1.0,
                          "invalid_reasons/stage2/no_call": 1.0})
            if step in (1, 3):
                entry.update({"invalid_reasons/vacuous": 1.0, "invalid_reasons/stage2/vacuous": 1.0})
        else:
            entry.update({"phase/role": 1.0, "reward": 10.0 + i, "rewards/generator_pass_rate/mean": GEN_PASS[i],
                          "generator/pass_rate": GEN_PASS[i], "generator/collapse_rate": 0.0})
            # 2 groups a step: both unsolved at the first 4 generator steps, then one with 2 passing samples
            entry.update({"generator/groups/solved_0": 2.0 if i < 4 else 1.0, "generator/groups/solved_1": 0.0,
                          "generator/groups/solved_2": 0.0 if i < 4 else 1.0})
            if step in (6, 10, 14):  # logged only where the discriminator wrote valid tests
                entry["generator/pass_rate_generated"] = {6: 0.3, 10: 0.6, 14: 0.9}[step]
        history.append(entry)
    history[-1]["eval_bench/direct/pass@1"] = 0.5  # the evaluation at the last step rides on its log line
    history.append({"step": 16, "train_loss": 0.1, "train_runtime": 320.0})  # end-of-training summary
    return {"global_step": 16, "max_steps": 16, "log_history": history}


def test_synthetic_log_quarters(tmp_path: Path) -> None:
    run = run_dir(tmp_path, synthetic_state(), where="checkpoint-16")
    report = write_report(run, tmp_path / "out").read_text()
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["training_steps"] == 16 and summary["steps_per_role"] == {"discriminator": 8, "generator": 8}

    generator = rows(report, "Generator")
    # 8 generator steps -> quarters of 2 values. pass rate: first (0.0 + 0.2) / 2, last (0.8 + 1.0) / 2,
    # all 3.6 / 8 = 0.45.
    assert generator["generator/pass_rate"][1:] == ["8", "0.100 (0–0.200)", "0.900 (0.800–1.000)", "0.800", "0.450"]
    # reward 10..17 at the generator steps: first (10 + 11) / 2, last (16 + 17) / 2, all 108 / 8.
    assert generator["reward"][1:] == ["8", "10.500 (10.000–11.000)", "16.500 (16.000–17.000)", "6.000", "13.500"]
    # frac_reward_zero_std at generator steps 2, 4, 6, ..., 16: 1, 1, 0, ..., 0.
    assert generator["frac_reward_zero_std"][1:] == ["8", "1.000 (1.000–1.000)", "0 (0–0)", "-1.000", "0.250"]
    # pass_rate_generated logged at 3 steps only: quarters of 1 value, no zeros filled in.
    assert generator["generator/pass_rate_generated"][1:] == ["3", "0.300", "0.900", "0.600", "0.600"]

    discriminator = rows(report, "Discriminator")
    # validity 0.5, 0.5, 0.6, 0.6, 0.7, 0.7, 0.9, 0.7: first 0.5, last (0.9 + 0.7) / 2, all 5.2 / 8.
    assert discriminator["discriminator/validity"][1:] == ["8", "0.500 (0.500–0.500)", "0.800 (0.700–0.900)",
                                                           "0.300", "0.650"]
    # reward 0, -1, ..., -7: first -0.5, last -6.5, all -28 / 8.
    assert discriminator["reward"][1:] == ["8", "-0.500 (-1.000–0)", "-6.500 (-7.000–-6.000)", "-6.000", "-3.500"]
    # bug_catch_rate is None at step 1: 7 values of 0.25 -> quarters of max(1, 7 // 4) = 1 value.
    assert discriminator["discriminator/bug_catch_rate"][1:] == ["7", "0.250", "0.250", "0", "0.250"]
    assert "discriminator/mutant_kill_rate" not in discriminator and "generator/syntax_valid" not in generator

    # Run-wide: frac_reward_zero_std 4 / 16; step time (8 x 10 + 8 x 30) / 16 = 20 s, generation
    # (8 x 5 + 8 x 21) / 16 = 13 s = 65 % of it.
    assert "| mean `frac_reward_zero_std` (all steps) | 0.250 |" in report
    assert "| mean step time | 20.0 s |" in report
    assert "| generation | 13.00 | 65.0% |" in report
    # Invalid reasons: no_call 2 x 8 discriminator steps; vacuous at steps 1 and 3; per chain stage.
    assert "| reason | total | stage 1 | stage 2 |" in report
    assert "| `no_call` | 16 | 8 | 8 |" in report
    assert "| `vacuous` | 2 | 0 | 2 |" in report
    # Groups: solved_0 4 x 2 + 4 x 1 = 12, solved_1 0, solved_2 4 x 1 = 4, of 16 groups.
    assert summary["group_pass_counts"] == {"0": 12.0, "1": 0.0, "2": 4.0}
    assert "| 0 | 12 | 75.0% |" in report and "| 2 | 4 | 25.0% |" in report
    # Both evaluations, the step-0 one from a log line of its own.
    assert "| 0 | 0.250 |" in report and "| 16 | 0.500 |" in report
    for name in ("generator.png", "discriminator.png", "stability.png", "timing.png", "invalid_reasons.png",
                 "eval_bench.png"):
        check_png(tmp_path / "out" / name)


def test_absent_families_leave_no_plot_and_stale_plots_go(tmp_path: Path) -> None:
    """A log without phase/role, timing, invalid reasons or evaluations: every step counts for both roles."""
    out = tmp_path / "out"
    write_report(SMOKE, out)
    assert (out / "eval_bench.png").is_file()
    history = [{"step": s, "loss": 0.0, "reward": float(s), "generator/pass_rate": 0.5} for s in (1, 2, 3, 4)]
    report = write_report(run_dir(tmp_path, {"global_step": 4, "log_history": history}), out).read_text()
    assert sorted(p.name for p in out.glob("*.png")) == ["generator.png"]  # no discriminator metric: no section
    assert "no `phase/role`" in report
    assert rows(report, "Generator")["reward"][1:] == ["4", "1.000", "4.000", "3.000", "2.500"]
    assert "## Step time" not in report and "## Invalid" not in report and "## Benchmark" not in report
