"""scripts/learning_experiment.py: the plan of each size, summary.json from finished evaluations (hand-worked
numbers), and, marked slow, the whole pipeline's wiring at toy size (tiny random model, one step of each)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.evaluation.compare import merge_results

REPO = Path(__file__).resolve().parents[1]


def _load_script():
    """The script as a module, registered first (its dataclasses look their module up in sys.modules)."""
    import sys
    from importlib.util import module_from_spec, spec_from_file_location

    spec = spec_from_file_location("learning_experiment", REPO / "scripts" / "learning_experiment.py")
    module = module_from_spec(spec)
    sys.modules["learning_experiment"] = module
    spec.loader.exec_module(module)
    return module


le = _load_script()

# (point, benchmark, mode) -> per-task (base, plus) verdicts of 3 tasks
VERDICTS = {
    ("base", "direct"): [(True, True), (False, False), (False, False)],
    ("base", "staged"): [(False, False), (False, False), (False, False)],
    ("bootstrap", "direct"): [(True, True), (False, False), (False, False)],
    ("bootstrap", "staged"): [(True, False), (False, False), (False, False)],
    ("rl", "direct"): [(True, True), (True, False), (False, False)],
    ("rl", "staged"): [(True, True), (True, True), (False, False)],
}


def results(bench: str, mode: str, verdicts: list[tuple[bool, bool]]) -> dict:
    prefix = "HumanEval" if bench == "humaneval+" else "Mbpp"
    tasks = {f"{prefix}/{i}": {"num_samples": 1, "num_correct": int(b), "num_correct_plus": int(p)}
             for i, (b, p) in enumerate(verdicts)}
    n = len(verdicts)
    run = {"num_tasks": n, "num_samples": n, "samples_per_task": 1, "pass@1": sum(b for b, _ in verdicts) / n,
           "syntax_valid_rate": 1.0, "collapse_rate": 0.0, "tasks": tasks,
           "evalplus": {"base": {"pass@1": sum(b for b, _ in verdicts) / n},
                        "plus": {"pass@1": sum(p for _, p in verdicts) / n}},
           "discriminator_benchmark": {"written": 10, "valid": 5, "valid_but_vacuous": 1, "valid_but_restated": 0,
                                       "valid_counted": 4, "tasks": n, "tasks_with_valid_test": 2,
                                       "subtle_programs": 5, "subtle_caught": 1}}
    return {"benchmark": bench, "mode": mode, "num_tasks": n, "greedy": True, "config": {}, "runs": {"adapter": run}}


def write_finished(out: Path) -> None:
    """The evaluation and comparison folders a finished run leaves (as evaluate.py writes them)."""
    for bench in le.BENCHMARKS:
        for mode in le.MODES:
            inputs = []
            for point in le.POINTS:
                folder = out / "heldout" / point / f"{le._slug(bench)}-{mode}"
                folder.mkdir(parents=True)
                inputs.append(results(bench, mode, VERDICTS[point, mode]))
                (folder / "results.json").write_text(json.dumps(inputs[-1]))
            folder = out / "compare" / f"{le._slug(bench)}-{mode}"
            folder.mkdir(parents=True)
            (folder / "results.json").write_text(json.dumps(merge_results(inputs, list(le.POINTS), ["a", "b", "c"])))


def test_summary_holds_every_field_with_hand_worked_numbers(tmp_path):
    write_finished(tmp_path)
    (tmp_path / "times.txt").write_text("rl\t12 s\tload 1.50 1.20 1.00\texit 0\n")
    summary = le.summarize(tmp_path, "toy", le.SIZES["toy"], {"fallback": False})
    assert summary["steps"] == [{"step": "rl", "seconds": 12.0, "load": ["1.50", "1.20", "1.00"], "exit": 0}]
    assert set(summary) == {"size", "steps", "size_config", "points", "adapters", "selection", "heldout", "paired",
                            "paired_pooled", "staged_vs_base_direct", "statistics"}  # main() adds "acceptance"
    rl = summary["heldout"]["rl"]["mbpp+"]["staged"]
    assert rl["pass@1_base"] == pytest.approx(2 / 3) and rl["pass@1_plus"] == pytest.approx(2 / 3)
    assert rl["discriminator"] == {"written": 10, "valid": 5, "valid_but_vacuous": 1, "valid_but_restated": 0,
                                   "valid_counted": 4, "tasks": 3, "tasks_with_valid_test": 2,
                                   "subtle_programs": 5, "subtle_caught": 1, "validity": 0.5, "catch_rate": 0.2}
    for bench in le.BENCHMARKS:
        for mode in le.MODES:
            pairs = [(p["first"], p["second"], p["metric"]) for p in summary["paired"][bench][mode]]
            assert pairs == [(a, b, m) for a, b in (("base", "bootstrap"), ("base", "rl"), ("bootstrap", "rl"))
                             for m in ("base", "plus")]
    # pooled over both benchmarks: 6 tasks; bootstrap -> rl staged, plus inputs: 0 solved before, 4 after
    pooled = {(p["first"], p["second"], p["metric"]): p for p in summary["paired_pooled"]["staged"]}
    boot_rl = pooled["bootstrap", "rl", "plus"]
    assert (boot_rl["num_tasks"], boot_rl["first_only"], boot_rl["second_only"]) == (6, 0, 4)
    assert boot_rl["mcnemar_p"] == 0.125 and boot_rl["difference"] == pytest.approx(4 / 6)
    # rl staged against base direct, base inputs: base direct solves task 0 of each benchmark, rl staged 0 and 1
    base_inputs = summary["staged_vs_base_direct"][0]
    assert (base_inputs["metric"], base_inputs["both"], base_inputs["second_only"], base_inputs["first_only"]) == \
        ("base", 2, 2, 0)


def test_acceptance_lines_with_hand_worked_numbers(tmp_path):
    from pipeline.training.report.log import TrainingLog

    write_finished(tmp_path)
    summary = le.summarize(tmp_path, "toy", le.SIZES["toy"], {"fallback": False})
    disc = [{"step": k, "loss": 0.0, "phase/role": 0.0, "discriminator/validity": v, "frac_reward_zero_std": z}
            for k, (v, z) in enumerate([(0.05, 0.5), (0.1, 0.25), (0.2, 0.25), (0.3, 0.0)], start=1)]
    gen = [{"step": 10, "loss": 0.0, "phase/role": 1.0, "frac_reward_zero_std": 1.0}]  # not the discriminator's
    lines = {line["line"]: line for line in le.acceptance(summary, TrainingLog(tmp_path, {}, disc + gen, []))}
    validity = lines["discriminator validity in training, last vs first quarter"]
    assert validity["measured"] == {"first_quarter": 0.05, "last_quarter": 0.3, "steps": 4} and validity["met"]
    zero_std = lines["discriminator reward's frac_reward_zero_std (mean over its steps)"]
    assert zero_std["measured"] == 0.25 and zero_std["met"]
    held_out = lines["discriminator validity held out, staged, mbpp+"]
    assert held_out["measured"]["validity"] == 0.5 and held_out["measured"]["counted"] == 4
    assert held_out["met"]  # 4 of 10 the rewards would count (the vacuous one is not): exactly the 0.40 asked
    catch = lines["catch rate on the subtly wrong programs, humaneval+, RL vs base model"]
    assert catch["measured"] == {"rl": [1, 5], "base": [1, 5]} and catch["met"] is False  # equal is not above
    gain = lines["generator staged pass@1, RL vs bootstrap, HumanEval+ and MBPP+ pooled, plus inputs"]
    assert gain["measured"]["mcnemar_p"] == 0.125 and gain["met"] is False  # 4 of 6 more, not significant
    assert lines["RL staged pass@1 vs the base model's direct pass@1, plus inputs, pooled"]["met"]
    assert lines["collapse after RL, both modes, both benchmarks"]["met"]
    # no RL log: the training lines are not measured, never passed
    untrained = {line["line"]: line for line in le.acceptance(summary, None)}
    assert untrained["discriminator validity in training, last vs first quarter"]["met"] is None


def test_the_markdown_summary_holds_the_tables(tmp_path):
    write_finished(tmp_path)
    summary = le.summarize(tmp_path, "toy", le.SIZES["toy"], {"fallback": False})
    summary["acceptance"] = le.acceptance(summary, None)
    text = le.render_markdown(summary)
    assert "| rl | mbpp+ | staged | 3 | 66.7 % | 66.7 % | 100.0 % | 0.0 % | 5 / 10 (50.0 %) | 4 | 1 / 5 |" in text
    assert "| staged | plus | bootstrap -> rl | 6 | 0.0 % | 66.7 % | +66.7 [" in text and "| 0.125 |" in text
    assert "| rl staged vs base direct | base | base direct -> rl staged | 6 | 33.3 % | 66.7 % |" in text
    assert "| discriminator validity in training, last vs first quarter | >= 3x the first quarter and >= 0.25 | " \
           "`null` | not measured |" in text


def test_sizes_plan_every_step_in_order(tmp_path):
    (tmp_path / "candidates.txt").write_text("".join(f"MBPP/{i}\n" for i in range(100)) + "# a comment\n")
    for name, size in le.SIZES.items():
        pre = le.pre_selection_steps(size, tmp_path, "python", [])
        solve = le.solve_rate_steps(size, tmp_path, "python", [])
        post = le.post_selection_steps(size, tmp_path, "python", [])
        assert [s.name for s in pre] == ["bootstrap candidates", "bootstrap", "discriminator round", "rl candidates"]
        assert post[0].name == "rl" and len(post) == 1 + 12 + 4, name
        argv = solve[0].argv
        assert argv[argv.index("--num_samples") + 1] == str(size.samples)
        rl = post[0].argv
        assert rl[rl.index("--train_task_ids_file") + 1] == str(tmp_path / "problems.txt")
        for step in (pre[1], pre[2], post[0]):  # an interrupted training step continues when the run is rerun
            assert step.argv[step.argv.index("--resume_from_checkpoint") + 1] == "latest", step.name
        sampled = [t for step in solve for t in step.chunk_ids] if len(solve) > 1 else None
        if sampled is not None:  # chunks: every candidate once, in order, each chunk its own folder and ids file
            assert sampled == [f"MBPP/{i}" for i in range(100)][: size.candidates_limit]
            assert len({step.done for step in solve}) == len(solve)
    assert [s.name for s in le.solve_rate_steps(le.SIZES["full"], tmp_path, "python", [])] == \
        ["solve rates 1/3", "solve rates 2/3", "solve rates 3/3"]  # 100 candidates, 40 a step
    assert le.SIZES["full"].candidates_limit is None and le.SIZES["full"].heldout_limit is None  # everything
    assert le.SIZES["full"].samples == le.SIZES["quick"].samples == 8


def test_chunked_solve_rates_join_in_order(tmp_path):
    steps = [le.Step(f"solve rates {k}/2", [], tmp_path / "solve_rates" / f"part-{k}" / "results.json") for k in (1, 2)]
    for k, step in enumerate(steps, start=1):
        step.done.parent.mkdir(parents=True)
        (step.done.parent / "samples.jsonl").write_text(f'{{"task_id": "MBPP/{k}"}}\n')
    joined = le.join_solve_rates(steps, tmp_path)
    assert joined.read_text() == '{"task_id": "MBPP/1"}\n{"task_id": "MBPP/2"}\n'


def _heldout_steps(tmp_path):
    steps = le.post_selection_steps(le.SIZES["toy"], tmp_path, "python", [])
    return [s for s in steps if s.gate]


def test_heldout_queue_hands_out_a_point_only_once_its_adapters_are_made(tmp_path):
    import threading

    steps = _heldout_steps(tmp_path)
    assert [s.gate for s in steps] == [p for p in le.POINTS for _ in le.BENCHMARKS for _ in le.MODES]
    queue = le.SharedQueue(steps)
    assert [queue.take().name for _ in range(4)] == [s.name for s in steps[:4]]  # the base model's, in order
    taken: list[str] = []
    waiting = threading.Thread(target=lambda: taken.append(queue.take().name), daemon=True)
    waiting.start()
    waiting.join(timeout=0.5)
    assert waiting.is_alive() and not taken  # nothing is ready: the lane waits
    queue.open("rl")  # RL's adapters can be ready first: its steps go before the bootstrap's still waiting
    waiting.join(timeout=5)
    assert taken == ["heldout rl humaneval+ staged"]
    queue.open("bootstrap")
    rest = [queue.take().name for _ in range(7)]
    assert rest == [s.name for s in steps[4:8]] + [s.name for s in steps[9:]]
    assert queue.take() is None  # none left: a lane stops


def test_two_lanes_share_every_heldout_step_exactly_once(tmp_path):
    import threading

    steps = _heldout_steps(tmp_path)
    queue = le.SharedQueue(steps, open_gates=tuple(le.POINTS))
    taken: dict[str, list[str]] = {"a": [], "b": []}

    def lane(name: str) -> None:
        while (step := queue.take()) is not None:
            taken[name].append(step.name)

    lanes = [threading.Thread(target=lane, args=(name,)) for name in taken]
    for thread in lanes:
        thread.start()
    for thread in lanes:
        thread.join(timeout=5)
    assert sorted(taken["a"] + taken["b"]) == sorted(s.name for s in steps)


def _chunks(tmp_path, n=2):
    return [le.Step(f"solve rates {k}/{n}", [], tmp_path / f"part-{k}" / "results.json", gate=le.SELECTION)
            for k in range(1, n + 1)]


def test_solve_rate_chunks_go_before_every_waiting_evaluation_and_either_lane_takes_them(tmp_path):
    steps = _heldout_steps(tmp_path)
    queue = le.SharedQueue(steps)
    chunks = _chunks(tmp_path, 3)
    queue.put_first(chunks)
    queue.open(le.SELECTION)
    queue.open("bootstrap")
    assert queue.take().name == "solve rates 1/3"  # the other lane, free: a chunk, not the base model's evaluation
    assert queue.take(le.SELECTION).name == "solve rates 2/3"  # the main lane takes chunks only
    assert queue.take().name == "solve rates 3/3"
    assert queue.take(le.SELECTION) is None  # no chunk left: the main lane goes on although evaluations wait
    assert queue.take().name == steps[0].name


def test_the_main_lane_waits_for_the_chunk_the_other_lane_runs_and_stops_when_that_lane_failed(tmp_path):
    import threading

    chunks = _chunks(tmp_path)
    queue = le.SharedQueue([])
    ended: list[str] = []
    waiting = threading.Thread(target=lambda: (queue.wait_for(chunks), ended.append("waited")), daemon=True)
    waiting.start()
    queue.done(chunks[1])
    waiting.join(timeout=0.5)
    assert waiting.is_alive() and not ended  # chunk 1 still running in the other lane
    queue.done(chunks[0])
    waiting.join(timeout=5)
    assert ended == ["waited"]
    queue = le.SharedQueue([])
    errors: list[BaseException] = []

    def wait() -> None:
        try:
            queue.wait_for(chunks)
        except SystemExit as err:
            errors.append(err)

    waiting = threading.Thread(target=wait, daemon=True)
    waiting.start()
    queue.fail(SystemExit("step 'solve rates 1/2' failed (exit 1)"))
    waiting.join(timeout=5)
    assert len(errors) == 1 and "solve rates 1/2" in str(errors[0])


def test_a_lane_runs_its_steps_logs_each_and_reports_the_one_that_fails(tmp_path):
    import sys

    ok, bad = (le.Step(f"solve rates {k}/2", [sys.executable, "-c", f"raise SystemExit({code})"],
                       tmp_path / f"part-{k}" / "results.json", gate=le.SELECTION) for k, code in ((1, 0), (2, 3)))
    queue = le.SharedQueue([ok, bad], open_gates=(le.SELECTION,))
    with pytest.raises(SystemExit, match="solve rates 2/2"):
        le.run_lane(queue, tmp_path, dry_run=False)
    assert queue.failure is not None and "exit 3" in str(queue.failure)
    queue.wait_for([ok])  # ended: returns at once
    assert sorted(p.name for p in (tmp_path / "logs").iterdir()) == ["solve_rates_1-of-2.log", "solve_rates_2-of-2.log"]
    assert [line.split("\t")[0] for line in (tmp_path / "times.txt").read_text().splitlines()] == [ok.name, bad.name]


@pytest.mark.slow
def test_toy_pipeline_writes_a_complete_summary(tmp_path, monkeypatch):
    """The wiring, end to end, on the tiny random model: every step runs as a real subprocess, one step each."""
    from pipeline.models.embedded import embedded_model_dir
    from pipeline.models.tiny import build_tiny_model

    from datasets_build.evalplus_release import locate_plus_file

    for name in ("humaneval+", "mbpp+"):  # the release files ship with datasets_build: a missing one is a failure
        assert locate_plus_file(name) is not None, f"{name}: no release file found, not even the packaged copy"
    tiny = build_tiny_model(tmp_path / "tiny", tokenizer_source=str(embedded_model_dir()))
    out = tmp_path / "out"
    assert le.main(["toy", "--out", str(out), "--model", str(tiny), "--jobs", "2"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert (out / "summary.md").read_text().startswith("# Learning experiment, size toy")
    for point in le.POINTS:
        for bench in le.BENCHMARKS:
            for mode in le.MODES:
                numbers = summary["heldout"][point][bench][mode]
                assert set(numbers) >= {"tasks", "pass@1_base", "pass@1_plus", "syntax_valid_rate", "collapse_rate"}
                assert numbers["tasks"] == le.SIZES["toy"].heldout_limit
    assert len(summary["paired_pooled"]["staged"]) == 6 and len(summary["staged_vs_base_direct"]) == 2
    for role in ("generator", "discriminator"):
        for adapter in summary["adapters"].values():
            assert (Path(adapter) / role / "adapter_config.json").is_file()
    assert isinstance(summary["selection"]["fallback"], bool)
    assert len(summary["acceptance"]) == 2 + 4 + 1 + 2 + 2  # issue 22's lines, each measured or None
    assert (out / "times.txt").read_text().count("exit 0") == 5 + 1 + 12 + 4  # every step ran, none failed
    # the second lane ran the base model's evaluations beside the training steps (--jobs 2)
    order = [line.split("\t")[0] for line in (out / "times.txt").read_text().splitlines()]
    assert order.index("heldout base humaneval+ staged") < order.index("rl")
