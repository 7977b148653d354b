"""Sampling the runs of one evaluation: the adapters' run and/or the base model's, direct or staged.

``evaluate.py`` hands the benchmark rows here and scores what comes back. A run is named by what
generates it: ``adapter`` (the trained adapters on) or ``base`` (adapters disabled on the same loaded
model, so the comparison costs one model load, not two). Each run is seeded the same way, so the two
differ only by the adapters. Model loading errors (``ModelLoadError``, ``EmbeddedModelError``) pass
through for the script to turn into a message.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline.evaluation.config import EvalConfig
from pipeline.evaluation.samples import Sample

if TYPE_CHECKING:
    from pipeline.chain.partial import PartialBatches

logger = logging.getLogger(__name__)


def run_names(cfg: EvalConfig) -> list[str]:
    """'adapter' (adapters on) and/or 'base' (adapters disabled), in that order."""
    if cfg.adapter is None:
        return ["base"]
    return ["adapter", "base"] if cfg.compare_base else ["adapter"]


def stage_names(cfg: EvalConfig) -> list[str]:
    """The names of the generator's answers per sample, for the report: one for direct mode, five staged."""
    if cfg.completions:
        return []
    if cfg.mode == "direct":
        return ["direct"]
    from prompts.stages import STAGES

    return [stage.name for stage in STAGES]


def chain_config(cfg: EvalConfig) -> Any:
    """Staged mode's chain: the evaluation's budgets and sampling, no top-k (as TRL's sampling in training)."""
    from pipeline.chain import ChainConfig

    budgets = {"generator_tokens": tuple(cfg.generator_tokens)} if cfg.generator_tokens else {}
    return ChainConfig(**budgets, discriminator_tokens=tuple(cfg.discriminator_tokens), temperature=cfg.temperature,
                       top_p=cfg.top_p, top_k=0, templates=cfg.templates)


def generate_runs(cfg: EvalConfig, rows: Sequence[dict[str, Any]]) -> tuple[dict[str, list[Sample]], dict[str, Any]]:
    """Sample every run; returns the samples per run and facts for results.json (model, timings, and the
    discriminator's tests when ``cfg.discriminator_benchmark``)."""
    from pipeline.engines.base import Sampling
    from pipeline.evaluation.generation import EngineBackend, HfBackend
    from pipeline.evaluation.loading import load_eval_policies
    from pipeline.engines import VllmServerConfig, model_stop_ids, open_vllm
    from pipeline.models import load_tokenizer, resolve_model_source
    from pipeline.models.adapters import resolve_adapter_dir
    from pipeline.models.policies import Policies
    from prompts.roles import ROLES
    from prompts.templates import load_templates

    templates = load_templates(cfg.templates)
    sampling = Sampling(temperature=cfg.temperature, top_p=cfg.top_p, max_new_tokens=cfg.max_new_tokens,
                        batch_size=cfg.batch_size)
    test_sampling = Sampling(temperature=cfg.temperature, top_p=cfg.top_p, max_new_tokens=max(cfg.discriminator_tokens),
                             batch_size=cfg.batch_size)
    rows_by_id = {row["task_id"]: row for row in rows}
    started = time.perf_counter()
    stack = contextlib.ExitStack()
    engine = None
    if cfg.engine == "vllm":
        source = resolve_model_source(cfg.model)
        tokenizer = load_tokenizer(source, trust_remote_code=cfg.trust_remote_code)
        adapters = {role: resolve_adapter_dir(cfg.adapter, role) for role in ROLES} if cfg.adapter else None
        server = VllmServerConfig(url=cfg.engine_url, dtype=vllm_dtype(cfg.dtype))
        engine = stack.enter_context(open_vllm(server, source, stop=model_stop_ids(source, tokenizer),
                                               work_dir=Path(cfg.output_dir) / "vllm", adapters=adapters))
        policies = Policies(None, tokenizer)  # the tokenizer only: the chain generates on the engine
        backend: Any = EngineBackend(engine, tokenizer)
    else:
        policies, source = load_eval_policies(cfg.model, cfg.adapter, dtype=cfg.dtype,
                                              trust_remote_code=cfg.trust_remote_code,
                                              load_in_4bit=cfg.load_in_4bit,
                                              bnb_4bit_compute_dtype=cfg.bnb_4bit_compute_dtype)
        backend = HfBackend(policies.model, policies.tokenizer)
    facts: dict[str, Any] = {"model": source, "timing": {"load_s": time.perf_counter() - started},
                             "discriminator_tests": {}}

    with stack:
        _sample_runs(cfg, rows, rows_by_id, policies, backend, engine, templates, sampling, test_sampling, facts)
    return facts.pop("runs"), facts


def _sample_runs(cfg: EvalConfig, rows: Sequence[dict[str, Any]], rows_by_id: dict[str, Any], policies: Any,
                 backend: Any, engine: Any, templates: Any, sampling: Any, test_sampling: Any,
                 facts: dict[str, Any]) -> None:
    from transformers import set_seed

    from pipeline.evaluation.discriminator_bench import pooled_tests
    from pipeline.evaluation.samples import direct_samples, discriminator_tests, problem_tests, staged_samples

    runs: dict[str, list[Sample]] = {}
    for name in run_names(cfg):
        use_adapters = name == "adapter"
        set_seed(cfg.seed)
        started = time.perf_counter()
        logger.info("generating %s run: %d tasks x %d samples (%s mode)", name, len(rows), cfg.num_samples, cfg.mode)
        if cfg.mode == "direct":
            run_backend = backend.with_adapters(use_adapters)
            samples = direct_samples(run_backend, rows, templates, sampling, cfg.num_samples,
                                     with_logprobs=bool(cfg.best_of))
            if cfg.best_of:
                discriminator_tests(run_backend, rows_by_id, [s for s in samples if s.index < cfg.best_of],
                                    templates, test_sampling)
            if cfg.discriminator_benchmark:
                facts["discriminator_tests"][name] = problem_tests(run_backend, rows, templates, test_sampling,
                                                                   cfg.num_samples)
        else:
            with_tests = bool(cfg.best_of) or cfg.discriminator_benchmark
            partial = staged_partial(cfg, name, rows, with_tests)
            samples = staged_samples(policies, rows, chain_config(cfg), cfg.num_samples, batch_size=cfg.batch_size,
                                     with_tests=with_tests, use_adapters=use_adapters,
                                     engine=engine.with_adapters(use_adapters) if engine is not None else None,
                                     partial=partial)
            if partial.resumed:  # generation_<run>_s below covers only the samples this attempt drew
                facts["timing"][f"generation_{name}_resumed_samples"] = partial.resumed
            if cfg.discriminator_benchmark:
                facts["discriminator_tests"][name] = pooled_tests(samples)
        runs[name] = samples
        facts["timing"][f"generation_{name}_s"] = time.perf_counter() - started
    facts["runs"] = runs


# What decides a staged run's samples: a saved partial run is continued only when all of these are the same.
PARTIAL_KEY_FIELDS = ("model", "adapter", "dtype", "load_in_4bit", "bnb_4bit_compute_dtype", "num_samples",
                      "temperature", "top_p", "generator_tokens", "discriminator_tokens", "seed", "batch_size",
                      "engine", "templates")


def partial_file(output_dir: str | Path, run: str) -> Path:
    """Where a staged run's samples are written batch by batch until its results are written."""
    return Path(output_dir) / f".{run}-chains.json"


def staged_partial(cfg: EvalConfig, run: str, rows: Sequence[dict[str, Any]],
                   with_tests: bool) -> PartialBatches[Sample]:
    """The staged ``run``'s samples so far (``pipeline.chain.partial``): an evaluation stopped after hours of
    chains continues from its last batch when rerun with the same settings and tasks."""
    from pipeline.chain.partial import PartialBatches

    key = {"run": run, "mode": cfg.mode, "tasks": [row["task_id"] for row in rows], "with_tests": with_tests,
           **{name: getattr(cfg, name) for name in PARTIAL_KEY_FIELDS}}
    return PartialBatches(partial_file(cfg.output_dir, run), key, Sample.to_dict, Sample.from_dict)


def vllm_dtype(dtype: str) -> str:
    """The vLLM server's dtype for evaluate's ``--dtype``: the same precision as the transformers engine would
    use (``auto`` resolves as it does there, bf16 only on a CPU with native bf16)."""
    from pipeline.models import resolve_dtype

    return str(resolve_dtype(dtype)).removeprefix("torch.")
