"""Issue 22's learning experiment in one command: bootstrap -> selection -> RL -> held-out at three points.

    scripts/learning_experiment.sh quick      # <= 60 min on 2 cores (estimate): small budgets, few steps, subsets
    scripts/learning_experiment.sh full       # the documented run (hours; run it in the background)
    .venv/bin/python scripts/learning_experiment.py SIZE [--out DIR] [--model DIR] [--jobs 1|2] [--dry_run]

Steps, each a subprocess of the project's own commands, each skipped when its output is already there (so an
interrupted run resumes where it stopped; delete a step's folder to redo it). Inside a step, the bootstrap's rounds
and RL keep their checkpoints, and every staged sampling (a bootstrap round's chains, a staged evaluation) its
chains after each batch (``pipeline.chain.partial``), so a killed step loses one batch at most:

1. ``bootstrap``: ``train.py --config configs/bootstrap_learn.yaml`` on the candidates of that recipe, MBPP+'s
   tasks held out (``scripts/select_problems.py candidates``), then the discriminator round
   (``configs/bootstrap_disc.yaml``) from its adapters;
2. ``selection``: every RL candidate (``configs/rl_learn.yaml``'s problems, MBPP+ held out) sampled ``samples``
   times, staged, with the bootstrap's adapters (``full``: 40 candidates a step, which either lane may take);
   the band 1..samples-1 passing is kept
   (``select_problems.py pick``). When no problem falls in the band (a toy model), RL trains on the candidates
   and ``summary.json`` says so under ``selection.fallback``;
3. ``rl``: ``train.py --config configs/rl_learn.yaml`` from the bootstrap, on the selection;
4. ``heldout``: greedy ``evaluate.py`` on HumanEval+ and MBPP+ (base and plus inputs), staged and direct, with
   the discriminator benchmark, at three points: ``base`` (no adapter), ``bootstrap``, ``rl``;
5. ``compare``: ``evaluate.py --compare base bootstrap rl`` per benchmark and mode (paired statistics);
6. ``summary.json``: every point's held-out numbers, the paired statistics of every comparison, pooled over
   both benchmarks too (issue 22's acceptance: 542 tasks), and the staged-vs-base-direct comparison.

With ``--jobs 2`` (the default) a second lane runs steps beside the training steps, from a queue both lanes share
(``SharedQueue``): the base model's held-out evaluations at once; the solve-rate chunks, ahead of everything else,
once the candidates are written (RL waits for them, so both lanes sample them); the bootstrap's held-out
evaluations once the discriminator round is done; RL's once RL is done. Each step is one single-threaded
process, so two cores run two.

Writes under ``outputs/learning_<size>/``: the adapters (``bootstrap/final``, ``bootstrap_disc/final``,
``rl/final``), every evaluation folder, ``times.txt`` (wall time and load of each step; of its last attempt when it
was resumed after a kill, ``logs/<step>.log`` holding every attempt, each from an ``=== attempt started`` line) and
``summary.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

POINTS = ("base", "bootstrap", "rl")
SELECTION = "selection"  # the shared queue's gate of the solve-rate chunks
BENCHMARKS = ("humaneval+", "mbpp+")
MODES = ("staged", "direct")


@dataclass(frozen=True)
class Size:
    """One size of the experiment: every budget that differs between quick, full and the CI's toy run."""

    bootstrap_args: tuple[str, ...] = field(default=(), metadata={"help": "Overrides of configs/bootstrap_learn.yaml."})
    disc_round_args: tuple[str, ...] = field(default=(), metadata={"help": "Overrides of configs/bootstrap_disc.yaml."})
    rl_args: tuple[str, ...] = field(default=(), metadata={"help": "Overrides of configs/rl_learn.yaml."})
    candidates_limit: int | None = field(default=None, metadata={
        "help": "Sample only the first N RL candidates (None: every one, as issue 22 asks)."})
    solve_chunk: int | None = field(default=None, metadata={
        "help": "Candidates per solve-rate step (each a resumable step of its own; None: one step for all)."})
    samples: int = field(default=8, metadata={"help": "Staged samples per candidate for the solve rate."})
    heldout_limit: int | None = field(default=None, metadata={
        "help": "Evaluate the first N tasks of each held-out benchmark (None: all 164 + 378)."})
    eval_args: tuple[str, ...] = field(default=(), metadata={
        "help": "Flags of every evaluate.py call (budgets, dtype, batch size)."})
    discriminator_benchmark: bool = field(default=True, metadata={
        "help": "Run the discriminator benchmark (validity, catch rate on the subtly wrong programs)."})


# The chain budgets RL trains with (configs/rl_learn.yaml); held-out evaluation uses the same ones.
EVAL_BUDGETS = ("--generator_tokens", "16", "16", "16", "16", "128", "--discriminator_tokens", "128", "80", "80", "80",
                "80", "--max_new_tokens", "256", "--batch_size", "20")
SIZES: dict[str, Size] = {
    "full": Size(eval_args=EVAL_BUDGETS, solve_chunk=40),
    "quick": Size(
        bootstrap_args=("--rounds", "1", "--max_problems_per_round", "20", "--samples_per_problem", "1",
                        "--max_steps", "4"),
        disc_round_args=("--max_problems_per_round", "10", "--max_steps", "4"),
        rl_args=("--max_steps", "4", "--bench_eval_steps", "1000"),
        candidates_limit=16, samples=8, heldout_limit=15, eval_args=EVAL_BUDGETS),
    "toy": Size(  # the CI's wiring check on the tiny random model: one step of everything
        bootstrap_args=("--rounds", "1", "--max_problems_per_round", "2", "--samples_per_problem", "1",
                        "--max_steps", "1", "--generator_tokens", "2", "2", "2", "2", "4", "--discriminator_tokens", "4",
                        "--generation_batch_size", "2"),
        disc_round_args=("--max_problems_per_round", "2", "--max_steps", "1", "--generator_tokens", "2", "2", "2", "2",
                         "4", "--discriminator_tokens", "4", "--generation_batch_size", "2"),
        rl_args=("--max_steps", "1", "--generator_tokens", "2", "2", "2", "2", "4", "--discriminator_tokens", "4",
                 "--bench_eval_steps", "1000", "--save_steps", "1000", "--per_device_train_batch_size", "2",
                 "--gradient_accumulation_steps", "1", "--num_generations", "2"),
        candidates_limit=2, samples=2, heldout_limit=2, discriminator_benchmark=False,
        eval_args=("--generator_tokens", "2", "2", "2", "2", "4", "--discriminator_tokens", "4", "--max_new_tokens",
                   "6", "--batch_size", "2")),
}


@dataclass
class Step:
    name: str
    argv: list[str]
    done: Path  # the step is skipped when this exists
    chunk_ids: tuple[str, ...] = ()  # a solve-rate chunk: the task ids its file lists (written before it runs)
    gate: str = ""  # a step of the shared queue waits for this gate: a held-out point (POINTS) whose adapters it
    # evaluates, or SELECTION (a solve-rate chunk); "" for a step only the main lane runs

    def __str__(self) -> str:
        return shlex.join(self.argv)


def _train(python: str, recipe: str, out: Path, *extra: str) -> list[str]:
    """A training step: ``--resume_from_checkpoint latest`` starts fresh in an empty folder and, after an
    interruption, continues from the newest complete checkpoint (RL) or finished round (bootstrap)."""
    return [python, "-m", "accelerate.commands.launch", "--config_file", "accelerate_configs/cpu.yaml",
            "--num_processes", "1", "--num_cpu_threads_per_process", "1", "train.py", "--config", recipe,
            "--output_dir", str(out), "--resume_from_checkpoint", "latest", *extra]


def pre_selection_steps(size: Size, out: Path, python: str, model: list[str]) -> list[Step]:
    """Bootstrap, discriminator round, candidates and their solve rates (the pick follows, see ``pick``)."""
    py_select = [python, "scripts/select_problems.py"]
    boot, disc = out / "bootstrap", out / "bootstrap_disc"
    model_train = ["--model_name_or_path", model[1]] if model else []
    adapters = ["--generator_init_adapter", str(boot / "final"), "--discriminator_init_adapter", str(boot / "final")]
    steps = [
        Step("bootstrap candidates", [*py_select, "candidates", "--config", "configs/bootstrap_learn.yaml",
                                      "--out", str(out / "bootstrap_candidates.txt")], out / "bootstrap_candidates.txt"),
        Step("bootstrap", _train(python, "configs/bootstrap_learn.yaml", boot, *model_train, "--train_task_ids_file",
                                 str(out / "bootstrap_candidates.txt"), *size.bootstrap_args), boot / "final"),
        Step("discriminator round", _train(python, "configs/bootstrap_disc.yaml", disc, *model_train, *adapters,
                                           "--train_task_ids_file", str(out / "bootstrap_candidates.txt"),
                                           *size.disc_round_args), disc / "final"),
        Step("rl candidates", [*py_select, "candidates", "--config", "configs/rl_learn.yaml",
                               "--out", str(out / "candidates.txt")],
             out / "candidates.txt"),
    ]
    return steps


def solve_rate_steps(size: Size, out: Path, python: str, model: list[str]) -> list[Step]:
    """The solve rates of the RL candidates (``candidates.txt`` must exist): every candidate sampled ``samples``
    times, staged, with the bootstrap's adapters; in chunks of ``solve_chunk`` candidates, each its own step
    (``solve_rates/part-<k>/``), so that an interrupted run loses one chunk at most."""
    ids = _ids(out / "candidates.txt")[: size.candidates_limit]
    chunk = size.solve_chunk or max(1, len(ids))
    parts = [ids[i:i + chunk] for i in range(0, len(ids), chunk)] or [[]]
    steps = []
    for k, part in enumerate(parts, start=1):
        folder = out / "solve_rates" / (f"part-{k}" if len(parts) > 1 else "")
        ids_file = out / (f"candidates.part-{k}.txt" if len(parts) > 1 else "candidates.txt")
        limit = [] if len(parts) > 1 or not size.candidates_limit else ["--limit", str(size.candidates_limit)]
        name = f"solve rates {k}/{len(parts)}" if len(parts) > 1 else "solve rates"
        steps.append(Step(name, [
            python, "evaluate.py", "--benchmark", "mbpp", "--split", "train", "validation", "--task_ids_file",
            str(ids_file), *limit, "--mode", "staged", "--num_samples", str(size.samples), "--temperature",
            "0.8", "--ks", "1", *model, "--adapter", str(out / "bootstrap_disc" / "final"), *size.eval_args,
            "--output_dir", str(folder)], folder / "results.json", chunk_ids=tuple(part) if len(parts) > 1 else (),
            gate=SELECTION))
    return steps


def join_solve_rates(steps: list[Step], out: Path) -> Path:
    """``solve_rates/samples.jsonl``: the chunks' samples in order (the single step's own file when unchunked)."""
    joined = out / "solve_rates" / "samples.jsonl"
    if len(steps) > 1:
        joined.write_text("".join((step.done.parent / "samples.jsonl").read_text() for step in steps))
    return joined


def pick(size: Size, out: Path, python: str) -> dict[str, Any]:
    """The selection file: the band 1..samples-1 of the solve rates; the candidates sampled when the band is empty
    (recorded, never silent)."""
    problems = out / "problems.txt"
    argv = [python, "scripts/select_problems.py", "pick", str(out / "solve_rates" / "samples.jsonl"), "--samples",
            str(size.samples), "--min_passed", "1", "--max_passed", str(size.samples - 1), "--out", str(problems)]
    result = subprocess.run(argv, cwd=REPO, capture_output=True, text=True)
    if result.returncode == 0:
        header = problems.read_text().splitlines()[:2]
        return {"fallback": False, "file": str(problems), "header": header}
    if "passing samples" not in result.stderr:
        raise SystemExit(f"select_problems.py pick failed:\n{result.stderr}")
    sampled = {json.loads(line)["task_id"] for line in (out / "solve_rates" / "samples.jsonl").read_text().splitlines()
               if line.strip()}
    ids = [t for t in _ids(out / "candidates.txt") if t in sampled]
    problems.write_text("# no candidate in the band 1-%d of %d: training on the %d sampled candidates\n"
                        % (size.samples - 1, size.samples, len(ids)) + "\n".join(ids) + "\n")
    return {"fallback": True, "file": str(problems), "reason": result.stderr.strip().splitlines()[-1],
            "problems": len(ids)}


def _ids(path: Path) -> list[str]:
    return [line.split("#")[0].strip() for line in path.read_text().splitlines() if line.split("#")[0].strip()]


def post_selection_steps(size: Size, out: Path, python: str, model: list[str]) -> list[Step]:
    """RL, the held-out evaluations of the three points, and their comparisons."""
    disc, rl = out / "bootstrap_disc", out / "rl"
    model_train = ["--model_name_or_path", model[1]] if model else []
    steps = [Step("rl", _train(python, "configs/rl_learn.yaml", rl, *model_train,
                               "--generator_init_adapter", str(disc / "final"),
                               "--discriminator_init_adapter", str(disc / "final"),
                               "--train_task_ids_file", str(out / "problems.txt"), *size.rl_args), rl / "final")]
    adapters = {"base": [], "bootstrap": ["--adapter", str(disc / "final")], "rl": ["--adapter", str(rl / "final")]}
    limit = ["--limit", str(size.heldout_limit)] if size.heldout_limit else []
    for point in POINTS:
        for bench in BENCHMARKS:
            for mode in MODES:
                folder = out / "heldout" / point / f"{_slug(bench)}-{mode}"
                bench_flags = ["--discriminator_benchmark"] if size.discriminator_benchmark else []
                steps.append(Step(f"heldout {point} {bench} {mode}", [
                    python, "evaluate.py", "--benchmark", bench, *limit, "--mode", mode, *model, *adapters[point],
                    *bench_flags, *size.eval_args, "--output_dir", str(folder)], folder / "results.json",
                    gate=point))
    for bench in BENCHMARKS:
        for mode in MODES:
            folder = out / "compare" / f"{_slug(bench)}-{mode}"
            sources = [str(out / "heldout" / p / f"{_slug(bench)}-{mode}") for p in POINTS]
            steps.append(Step(f"compare {bench} {mode}", [python, "evaluate.py", "--compare", *sources, "--labels",
                                                          *POINTS, "--output_dir", str(folder)], folder / "results.json"))
    return steps


def _slug(bench: str) -> str:
    return bench.replace("+", "plus")


_TIMES = threading.Lock()  # two lanes append to times.txt


class SharedQueue:
    """The steps either lane may run, in order, each taken once: the solve-rate chunks and the held-out evaluations.
    A step waits until its gate opens (``open``): the main lane opens a point's gate when the training step that
    makes its adapters has ended (run or found done), so a lane never evaluates a ``final/`` still being written, as
    polling its folder could. ``put_first`` puts the solve-rate chunks ahead of every waiting evaluation, since RL
    waits for them. Lanes report each step they end (``done``) or the error that stopped them (``fail``), so the main
    lane can wait for the chunks the other lane took (``wait_for``) and learns of the other lane's failure there."""

    def __init__(self, steps: list[Step], open_gates: tuple[str, ...] = ("base",)):
        self._steps = list(steps)
        self._open = set(open_gates)
        self._done: set[str] = set()
        self.failure: BaseException | None = None
        self._changed = threading.Condition()

    def open(self, gate: str) -> None:
        with self._changed:
            self._open.add(gate)
            self._changed.notify_all()

    def put_first(self, steps: list[Step]) -> None:
        with self._changed:
            self._steps[:0] = steps
            self._changed.notify_all()

    def take(self, gate: str | None = None) -> Step | None:
        """The first waiting step whose gate is open, of ``gate`` only when given (blocks while none is open), or
        None when none is left (of ``gate``)."""
        with self._changed:
            while any(gate in (None, step.gate) for step in self._steps):
                for i, step in enumerate(self._steps):
                    if gate in (None, step.gate) and step.gate in self._open:
                        return self._steps.pop(i)
                self._changed.wait()
            return None

    def done(self, step: Step) -> None:
        with self._changed:
            self._done.add(step.name)
            self._changed.notify_all()

    def fail(self, err: BaseException) -> None:
        with self._changed:
            self.failure = self.failure or err
            self._changed.notify_all()

    def wait_for(self, steps: list[Step]) -> None:
        """Block until every one of ``steps`` has ended; SystemExit when a lane failed before that."""
        with self._changed:
            while not {step.name for step in steps} <= self._done:
                if self.failure is not None:
                    raise SystemExit(f"the other lane failed: {self.failure}")
                self._changed.wait()


def run_lane(queue: SharedQueue, out: Path, dry_run: bool, gate: str | None = None) -> None:
    """Run steps of the queue (of ``gate`` only when given) until none is left; a failure is reported to the queue
    and raised."""
    while (step := queue.take(gate)) is not None:
        try:
            run_step(step, out, dry_run)
        except BaseException as err:
            queue.fail(err)
            raise
        queue.done(step)


def run_step(step: Step, out: Path, dry_run: bool) -> None:
    if step.done.exists():
        print(f"skip  {step.name} (done: {step.done})", flush=True)
        return
    print(f"run   {step.name}: {step}", flush=True)
    if dry_run:
        return
    if step.chunk_ids:
        ids_file = Path(step.argv[step.argv.index("--task_ids_file") + 1])
        ids_file.write_text("".join(f"{task}\n" for task in step.chunk_ids))
    log = out / "logs" / f"{step.name.replace(' ', '_').replace('+', 'plus').replace('/', '-of-')}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    env = {**os.environ, "HF_HUB_OFFLINE": os.environ.get("HF_HUB_OFFLINE", "1"), "TRL_EXPERIMENTAL_SILENCE": "1",
           "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    with log.open("a") as handle:  # a step resumed after a kill keeps the log of its earlier attempts
        handle.write(f"=== attempt started {time.strftime('%Y-%m-%d %H:%M:%S %Z')}\n")
        handle.flush()
        code = subprocess.run(step.argv, cwd=REPO, stdout=handle, stderr=subprocess.STDOUT, env=env).returncode
    seconds = time.monotonic() - started
    with _TIMES, (out / "times.txt").open("a") as times:
        load = " ".join(f"{value:.2f}" for value in os.getloadavg())
        times.write(f"{step.name}\t{seconds:.0f} s\tload {load}\texit {code}\n")
    if code != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-30:])
        raise SystemExit(f"step {step.name!r} failed (exit {code}); log {log}:\n{tail}")


def _run_summary(results: dict[str, Any]) -> dict[str, Any]:
    """The numbers of one held-out evaluation that the summary keeps."""
    (run,) = results["runs"].values()
    plus = run.get("evalplus", {})
    out = {
        "tasks": run["num_tasks"],
        "pass@1_base": plus.get("base", {}).get("pass@1", run.get("pass@1")),
        "pass@1_plus": plus.get("plus", {}).get("pass@1"),
        "syntax_valid_rate": run["syntax_valid_rate"],
        "collapse_rate": run["collapse_rate"],
    }
    bench = run.get("discriminator_benchmark")
    if bench:
        out["discriminator"] = {key: bench.get(key) for key in (
            "written", "valid", "valid_but_vacuous", "valid_but_restated", "valid_counted", "tasks", "tasks_with_valid_test",
            "subtle_programs", "subtle_caught")}
        out["discriminator"]["validity"] = bench["valid"] / bench["written"] if bench.get("written") else 0.0
        out["discriminator"]["catch_rate"] = (bench["subtle_caught"] / bench["subtle_programs"]
                                              if bench.get("subtle_programs") else 0.0)
    return out


def summarize(out: Path, size_name: str, size: Size, selection: dict[str, Any] | None) -> dict[str, Any]:
    """summary.json's content from the finished evaluation folders (see the module docstring)."""
    from pipeline.evaluation.paired import compare_verdicts, run_verdicts

    heldout: dict[str, Any] = {}
    verdicts: dict[tuple[str, str, str, str], dict[str, bool]] = {}  # (point, bench, mode, metric) -> verdicts
    for point in POINTS:
        for bench in BENCHMARKS:
            for mode in MODES:
                results = json.loads((out / "heldout" / point / f"{_slug(bench)}-{mode}" / "results.json").read_text())
                heldout.setdefault(point, {}).setdefault(bench, {})[mode] = _run_summary(results)
                (run,) = results["runs"].values()
                for metric in ("base", "plus"):
                    verdicts[point, bench, mode, metric] = {f"{bench}:{t}": v for t, v in
                                                            run_verdicts(run, metric, point).items()}
    comparisons: dict[str, Any] = {}
    for bench in BENCHMARKS:
        for mode in MODES:
            merged = json.loads((out / "compare" / f"{_slug(bench)}-{mode}" / "results.json").read_text())
            comparisons.setdefault(bench, {})[mode] = merged["paired"]
    pooled: dict[str, Any] = {}
    for mode in MODES:
        for metric in ("base", "plus"):
            for i, first in enumerate(POINTS):
                for second in POINTS[i + 1:]:
                    a = {k: v for b in BENCHMARKS for k, v in verdicts[first, b, mode, metric].items()}
                    b_ = {k: v for b in BENCHMARKS for k, v in verdicts[second, b, mode, metric].items()}
                    pooled.setdefault(mode, []).append(compare_verdicts(
                        a, b_, first_label=first, second_label=second, metric=metric).to_dict())
    # Do the stages pay for themselves? RL's staged answers against the base model's direct ones, same tasks.
    stages_pay: list[dict[str, Any]] = []
    for metric in ("base", "plus"):
        base_direct = {k: v for b in BENCHMARKS for k, v in verdicts["base", b, "direct", metric].items()}
        rl_staged = {k: v for b in BENCHMARKS for k, v in verdicts["rl", b, "staged", metric].items()}
        stages_pay.append(compare_verdicts(base_direct, rl_staged, first_label="base direct",
                                           second_label="rl staged", metric=metric).to_dict())
    steps = []
    if (out / "times.txt").is_file():  # wall time and load of each step, as run_step wrote them
        for line in (out / "times.txt").read_text().splitlines():
            name, seconds, load, code = line.split("\t")
            steps.append({"step": name, "seconds": float(seconds.split()[0]), "load": load.split()[1:],
                          "exit": int(code.split()[1])})
    return {
        "size": size_name,
        "steps": steps,
        "size_config": asdict(size),
        "points": {"base": None, "bootstrap": str(out / "bootstrap_disc" / "final"), "rl": str(out / "rl" / "final")},
        "adapters": {"bootstrap": str(out / "bootstrap" / "final"), "bootstrap_disc": str(out / "bootstrap_disc" / "final"),
                     "rl": str(out / "rl" / "final")},
        "selection": selection,
        "heldout": heldout,
        "paired": comparisons,
        "paired_pooled": pooled,
        "staged_vs_base_direct": stages_pay,
        "statistics": "pipeline/evaluation/paired.py: Newcombe (1998) hybrid score interval, exact McNemar p",
    }


def acceptance(summary: dict[str, Any], training: Any | None) -> list[dict[str, Any]]:
    """Issue 22's acceptance lines, each with what was measured and whether it holds (``met``: None when the run
    did not measure it). ``training`` is RL's ``pipeline.training.report.TrainingLog`` (None: no RL log)."""
    from pipeline.training.report.log import quarter_stats, series

    lines: list[dict[str, Any]] = []

    def line(name: str, target: str, measured: Any, met: bool | None) -> None:
        lines.append({"line": name, "target": target, "measured": measured, "met": met})

    disc_steps = training.role_steps("discriminator") if training is not None else []
    validity = [v for _, v in series(disc_steps, "discriminator/validity")]
    if validity:
        q = quarter_stats(validity)
        line("discriminator validity in training, last vs first quarter", ">= 3x the first quarter and >= 0.25",
             {"first_quarter": q["first_mean"], "last_quarter": q["last_mean"], "steps": q["n"]},
             q["last_mean"] >= 0.25 and q["last_mean"] >= 3 * q["first_mean"])
    else:
        line("discriminator validity in training, last vs first quarter", ">= 3x the first quarter and >= 0.25",
             None, None)
    zero_std = [v for _, v in series(disc_steps, "frac_reward_zero_std")]
    line("discriminator reward's frac_reward_zero_std (mean over its steps)", "<= 0.5",
         sum(zero_std) / len(zero_std) if zero_std else None, (sum(zero_std) / len(zero_std) <= 0.5) if zero_std else None)
    heldout = summary["heldout"]
    for bench in BENCHMARKS:
        rl, base = (heldout[p][bench]["staged"].get("discriminator") for p in ("rl", "base"))
        counted = rl and rl.get("valid_counted")  # None from an evaluation older than the count
        line(f"discriminator validity held out, staged, {bench}",
             ">= 0.40, counting only the tests the rewards would pay for (not vacuous, not a restated own assert)",
             rl and {"validity": rl["validity"], "valid": rl["valid"], "written": rl["written"],
                     "vacuous": rl["valid_but_vacuous"], "restated": rl["valid_but_restated"], "counted": counted},
             (counted >= 0.40 * rl["written"]) if rl and counted is not None else None)
        line(f"catch rate on the subtly wrong programs, {bench}, RL vs base model", "above the base model's",
             rl and base and {"rl": [rl["subtle_caught"], rl["subtle_programs"]],
                              "base": [base["subtle_caught"], base["subtle_programs"]]},
             (rl["catch_rate"] > base["catch_rate"]) if rl and base else None)
    pooled = {(p["first"], p["second"], p["metric"]): p for p in summary["paired_pooled"]["staged"]}
    gain = pooled.get(("bootstrap", "rl", "plus"))
    line("generator staged pass@1, RL vs bootstrap, HumanEval+ and MBPP+ pooled, plus inputs",
         "RL above, exact McNemar p < 0.05",
         gain and {k: gain[k] for k in ("num_tasks", "pass_first", "pass_second", "difference", "ci_low", "ci_high",
                                          "mcnemar_p")},
         (gain["difference"] > 0 and gain["mcnemar_p"] < 0.05) if gain else None)
    for paired in summary["staged_vs_base_direct"]:
        line(f"RL staged pass@1 vs the base model's direct pass@1, {paired['metric']} inputs, pooled",
             "at least the base model's direct",
             {k: paired[k] for k in ("num_tasks", "pass_first", "pass_second", "difference", "mcnemar_p")},
             paired["pass_second"] >= paired["pass_first"])
    after = [(bench, mode, heldout["rl"][bench][mode]) for bench in BENCHMARKS for mode in MODES]
    line("collapse after RL, both modes, both benchmarks", "0",
         {f"{b} {m}": n["collapse_rate"] for b, m, n in after}, all(n["collapse_rate"] == 0 for _, _, n in after))
    line("syntax validity after RL, both modes, both benchmarks", ">= 0.95",
         {f"{b} {m}": n["syntax_valid_rate"] for b, m, n in after},
         all(n["syntax_valid_rate"] >= 0.95 for _, _, n in after))
    return lines


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f} %"


def render_markdown(summary: dict[str, Any]) -> str:
    """``summary.md``: the held-out numbers of each point, the paired comparisons pooled over both benchmarks and
    the acceptance lines, as tables for docs/learning.md."""
    lines = [f"# Learning experiment, size {summary['size']}", "", "## Held out (greedy pass@1)", "",
             "| point | benchmark | mode | tasks | base inputs | plus inputs | syntax valid | collapse | "
             "discriminator valid / written | of which counted | subtle programs caught |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for point, benches in summary["heldout"].items():
        for bench, modes in benches.items():
            for mode, n in modes.items():
                d = n.get("discriminator")
                disc = f"{d['valid']} / {d['written']} ({_pct(d['validity'])})" if d else "-"
                counted = "-" if not d or d.get("valid_counted") is None else str(d["valid_counted"])
                caught = f"{d['subtle_caught']} / {d['subtle_programs']}" if d else "-"
                lines.append(f"| {point} | {bench} | {mode} | {n['tasks']} | {_pct(n['pass@1_base'])} | "
                             f"{_pct(n['pass@1_plus'])} | {_pct(n['syntax_valid_rate'])} | {_pct(n['collapse_rate'])} | "
                             f"{disc} | {counted} | {caught} |")
    lines += ["", "## Paired, HumanEval+ and MBPP+ pooled (difference, Newcombe 95 % interval, exact McNemar p)", "",
              "| mode | inputs | first -> second | tasks | first | second | difference [95 % interval] | p |",
              "|---|---|---|---|---|---|---|---|"]
    rows = [(mode, p) for mode, pairs in summary["paired_pooled"].items() for p in pairs]
    rows += [("rl staged vs base direct", p) for p in summary["staged_vs_base_direct"]]
    for mode, p in rows:
        lines.append(f"| {mode} | {p['metric']} | {p['first']} -> {p['second']} | {p['num_tasks']} | "
                     f"{_pct(p['pass_first'])} | {_pct(p['pass_second'])} | {100 * p['difference']:+.1f} "
                     f"[{100 * p['ci_low']:+.1f}, {100 * p['ci_high']:+.1f}] | {p['mcnemar_p']:.3g} |")
    if summary.get("acceptance"):
        lines += ["", "## Issue 22's acceptance lines", "", "| line | target | measured | met |", "|---|---|---|---|"]
        for line in summary["acceptance"]:
            met = {True: "yes", False: "no", None: "not measured"}[line["met"]]
            lines.append(f"| {line['line']} | {line['target']} | `{json.dumps(line['measured'])}` | {met} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("size", choices=sorted(SIZES))
    parser.add_argument("--out", type=Path, default=None, help="default: outputs/learning_<size>")
    parser.add_argument("--model", default=None, help="base model folder for every step (default: the embedded one)")
    parser.add_argument("--python", default=str(REPO / ".venv" / "bin" / "python"))
    parser.add_argument("--dry_run", action="store_true", help="print the commands, run nothing")
    parser.add_argument("--jobs", type=int, choices=(1, 2), default=2,
                        help="2 (default, the 2 cores the sizes are planned for): a second lane runs the held-out "
                             "evaluations beside the training steps, and shares RL's with the first lane once RL is "
                             "done (two single-threaded processes); 1: one step at a time, for a busy machine")
    args = parser.parse_args(argv)
    size = SIZES[args.size]
    out = (args.out or REPO / "outputs" / f"learning_{args.size}").resolve()
    out.mkdir(parents=True, exist_ok=True)
    model = ["--model", args.model] if args.model else []
    post = post_selection_steps(size, out, args.python, model)
    queue = SharedQueue([s for s in post if s.gate])

    def side_lane() -> None:
        try:
            run_lane(queue, out, args.dry_run)
        except BaseException:  # noqa: BLE001 - in queue.failure, raised by the main lane
            pass

    lane = threading.Thread(target=side_lane, daemon=True)
    if args.jobs > 1:
        lane.start()
    for step in pre_selection_steps(size, out, args.python, model):
        run_step(step, out, args.dry_run)
    if args.dry_run and not (out / "candidates.txt").exists():
        solve = [Step("solve rates", ["evaluate.py", "..."], out / "solve_rates" / "results.json", gate=SELECTION)]
    else:
        solve = solve_rate_steps(size, out, args.python, model)
    queue.put_first(solve)
    queue.open(SELECTION)
    queue.open("bootstrap")  # the discriminator round's adapters are the bootstrap point
    run_lane(queue, out, args.dry_run, gate=SELECTION)  # the other lane takes chunks too when it is free
    queue.wait_for(solve)
    if args.dry_run:
        selection = None
    else:
        join_solve_rates(solve, out)
        selection_file = out / "selection.json"
        if not selection_file.exists():
            selection_file.write_text(json.dumps(pick(size, out, args.python), indent=2) + "\n")
        selection = json.loads(selection_file.read_text())
    training = [step for step in post if not step.gate and not step.name.startswith("compare")]
    for step in training:
        run_step(step, out, args.dry_run)
    queue.open("rl")
    run_lane(queue, out, args.dry_run)  # this lane takes whatever the other has not started
    if lane.is_alive():
        lane.join()
    if queue.failure is not None:
        raise SystemExit(f"the other lane failed: {queue.failure}")
    for step in post:
        if step.name.startswith("compare"):
            run_step(step, out, args.dry_run)
    if args.dry_run:
        return 0
    summary = summarize(out, args.size, size, selection)
    from pipeline.training.report.log import ReportError, load_log

    try:
        training = load_log(out / "rl")
    except ReportError:
        training = None
    summary["acceptance"] = acceptance(summary, training)
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    (out / "summary.md").write_text(render_markdown(summary))
    print(f"wrote {out / 'summary.json'} and {out / 'summary.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
