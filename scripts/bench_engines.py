"""Tokens per second of the two generation engines on the same prompts and budgets, in one run.

    .venv/bin/python scripts/bench_engines.py [--model embedded|DIR|HUB_ID] [--prompts 16] [--tokens 128]
                                              [--dtype float32] [--engine_url URL] [--lora_r 16]

For each engine: the base model (adapters off), one role (every prompt as the generator), and a mixed batch
(half the prompts as the generator, half as the discriminator). transformers runs a mixed batch as two batches,
one per adapter (peft runs one adapter per forward pass); vLLM gets the two halves as concurrent requests, each
naming its adapter, and batches them together. The adapters are fresh LoRA adapters with random B matrices (an
untrained LoRA is a no-op vLLM may skip). Greedy decoding, prompts from HumanEval-mini's direct prompt; the
tokens counted are those generated (up to each answer's end-of-turn token). Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch

from datasets_build import load_problems
from pipeline.engines import VllmServerConfig, model_stop_ids, open_vllm
from pipeline.engines.base import Sampling
from pipeline.engines.transformers_engine import TransformersEngine
from pipeline.models import ModelConfig, resolve_model_source
from pipeline.models.policies import load_policies
from prompts.chat import direct_messages, render_ids
from prompts.templates import load_templates


def prompts_for(tokenizer, count: int) -> list[list[int]]:
    templates = load_templates("default")
    rows = list(load_problems("humaneval-mini"))
    rows = (rows * (count // len(rows) + 1))[:count]
    return [render_ids(tokenizer, direct_messages(templates, problem=r["problem"], entry_point=r["entry_point"],
                                                  signature=r["signature"])) for r in rows]


def timed(label: str, run) -> tuple[int, float]:
    started = time.perf_counter()
    rows = run()
    tokens, seconds = sum(len(r) for r in rows), time.perf_counter() - started
    print(f"{label}: {tokens} tokens in {seconds:.1f} s", flush=True)
    return tokens, seconds


def measure(engine, prompts: list[list[int]], tokens: int) -> dict[str, tuple[int, float]]:
    greedy = Sampling(temperature=0.0)
    half = len(prompts) // 2

    def one(batch, adapter):
        return engine.conversations(batch).generate(tokens, greedy, adapter)

    def mixed():
        if engine.name == "transformers":  # one adapter per forward pass: two batches
            return one(prompts[:half], "generator") + one(prompts[half:], "discriminator")
        with ThreadPoolExecutor(2) as pool:  # two concurrent requests, batched together by the server
            parts = [pool.submit(one, prompts[:half], "generator"), pool.submit(one, prompts[half:], "discriminator")]
            return [row for part in parts for row in part.result()]

    return {"base": timed(f"{engine.name} base", lambda: one(prompts, None)),
            "one role": timed(f"{engine.name} one role", lambda: one(prompts, "generator")),
            "mixed roles": timed(f"{engine.name} mixed roles", mixed)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="embedded")
    parser.add_argument("--prompts", type=int, default=16)
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--lora_r", type=int, default=16)
    parser.add_argument("--engine_url", default=None, help="a running vLLM server instead of starting one")
    args = parser.parse_args()

    source = resolve_model_source(args.model)
    policies = load_policies(ModelConfig(model_name_or_path=args.model, lora_r=args.lora_r, dtype=args.dtype))
    policies.model.eval()
    with torch.no_grad():
        generator = torch.Generator().manual_seed(0)
        for name, param in policies.model.named_parameters():
            if "lora_B" in name:
                param.copy_(torch.randn(param.shape, generator=generator) * 0.01)
    prompts = prompts_for(policies.tokenizer, args.prompts)
    results = {"transformers": measure(TransformersEngine(policies.model, policies.tokenizer), prompts, args.tokens)}
    with tempfile.TemporaryDirectory() as work:
        saved = policies.save(Path(work) / "adapters")
        server = VllmServerConfig(url=args.engine_url, dtype=args.dtype, max_lora_rank=max(16, args.lora_r))
        started = time.perf_counter()
        with open_vllm(server, source, stop=model_stop_ids(source, policies.tokenizer), work_dir=work,
                       adapters={role: saved / role for role in ("generator", "discriminator")}) as engine:
            start_s = time.perf_counter() - started
            measure(engine, prompts[:2], 8)  # warm-up: first requests compile and allocate
            results["vllm"] = measure(engine, prompts, args.tokens)
    print(f"\n{len(prompts)} prompts x {args.tokens} new tokens (greedy), {args.dtype}, LoRA r={args.lora_r}; "
          f"vLLM server start {start_s:.0f} s\n")
    print("| engine | base tok/s | one role tok/s | mixed roles tok/s |")
    print("|---|---|---|---|")
    for name, cases in results.items():
        cells = [f"{n / s:.1f} ({n} tok, {s:.1f} s)" for n, s in cases.values()]
        print(f"| {name} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
