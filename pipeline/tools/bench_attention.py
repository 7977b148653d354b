"""Benchmark: the attention the chain decodes with on the CPU (`pipeline.models.attention`) against eager and SDPA.

    python -m pipeline.tools.bench_attention [--batch-size 20] [--context 1500] [--chains 8] [--dtype auto]

Two measurements, on one thread (as each lane of the learning experiment runs):
1. one layer's attention for one decoding step at the embedded model's head layout (9 query heads, 3 key-value
   heads, 64 dimensions), ``--batch-size`` rows of ``--context`` cached tokens, for each implementation;
2. ``--chains`` five-stage chains of HumanEval's first problems with the embedded model, greedy, at the learning
   experiment's budgets, decoded once with each implementation: wall time, tokens per second, and whether the
   texts are the same (greedy decoding: they should be, unless a near-tie flips on rounding).
Prints the figures and the ratios; nothing is asserted.
"""

from __future__ import annotations

import argparse
import time
from typing import Callable

import torch

from pipeline.models import attention
from pipeline.tools.bench_rollout import _problems

IMPLEMENTATIONS = ("eager", "sdpa", attention.GROUPED)
BUDGETS = {"generator_tokens": (16, 16, 16, 16, 128), "discriminator_tokens": (128, 80, 80, 80, 80)}


def _timed(call: Callable[[], object], repeats: int) -> float:
    call()  # warm-up
    started = time.perf_counter()
    for _ in range(repeats):
        call()
    return (time.perf_counter() - started) / repeats


def layer_times(batch: int, context: int, dtype: torch.dtype, repeats: int = 10) -> dict[str, float]:
    """Seconds per call of each implementation's attention for one decoding step."""
    from transformers.integrations.sdpa_attention import sdpa_attention_forward
    from transformers.models.llama.modeling_llama import eager_attention_forward

    query = torch.randn(batch, 9, 1, 64, dtype=dtype)
    key, value = (torch.randn(batch, 3, context, 64, dtype=dtype) for _ in range(2))
    mask = torch.zeros(batch, 1, 1, context, dtype=dtype)
    mask[:, :, :, : context // 10] = torch.finfo(dtype).min  # some padding, as in a batch of chains
    module = torch.nn.Module().eval()
    module.num_key_value_groups, module.is_causal = 3, True
    functions = {"eager": eager_attention_forward, "sdpa": sdpa_attention_forward,
                 attention.GROUPED: attention.grouped_attention}
    return {name: _timed(lambda f=f: f(module, query, key, value, mask, 0.125), repeats)
            for name, f in functions.items()}


def chain_run(policies, problems: list[dict], implementation: str) -> tuple[float, int, list[list[str]]]:
    """Wall seconds, generated tokens and texts of greedy chains decoded with ``implementation``."""
    from pipeline.chain import ChainConfig, generate_chains

    attention.decoding_implementation = implementation
    try:
        started = time.perf_counter()
        chains = generate_chains(policies, problems, ChainConfig(**BUDGETS, temperature=0.0))
        seconds = time.perf_counter() - started
    finally:
        attention.decoding_implementation = attention.GROUPED
    tokens = sum(len(ids) for c in chains for turns in (c.generator, c.discriminator) for ids in turns.generated)
    return seconds, tokens, [c.stage_texts + c.test_texts for c in chains]


def main(argv: list[str] | None = None) -> None:
    from pipeline.models import ModelConfig, resolve_dtype
    from pipeline.models.policies import load_policies

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch-size", type=int, default=20, help="rows of the one-layer measurement")
    parser.add_argument("--context", type=int, default=1500, help="cached tokens of the one-layer measurement")
    parser.add_argument("--chains", type=int, default=8, help="chains of the whole-chain measurement (0: skip it)")
    parser.add_argument("--dtype", default="auto", help="'auto' (bf16 on a CPU with native bf16), 'float32', ...")
    parser.add_argument("--baseline", default="eager", choices=("eager", "sdpa"),
                        help="the implementation the whole-chain measurement compares with")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    dtype = resolve_dtype(args.dtype)

    times = layer_times(args.batch_size, args.context, dtype)
    print(f"one layer, one decoding step: batch {args.batch_size}, {args.context} cached tokens, {dtype}, 1 thread")
    for name, seconds in times.items():
        print(f"  {name:18s} {seconds * 1000:8.2f} ms   x{times[name] / times[attention.GROUPED]:.1f} of grouped")
    if args.chains <= 0:
        return
    policies = load_policies(ModelConfig(dtype=args.dtype))
    policies.model.eval()
    problems = _problems(args.chains)
    runs = {name: chain_run(policies, problems, name) for name in (args.baseline, attention.GROUPED)}
    print(f"{args.chains} greedy chains (HumanEval's first), budgets {BUDGETS}, {dtype}, 1 thread")
    for name, (seconds, tokens, _) in runs.items():
        print(f"  {name:18s} {seconds:8.1f} s  {tokens} tokens  {tokens / seconds:6.1f} tokens/s")
    base, grouped = runs[args.baseline], runs[attention.GROUPED]
    same = sum(a == b for a, b in zip(base[2], grouped[2]))
    print(f"  speed-up x{base[0] / grouped[0]:.2f}; chains with the same texts: {same} of {args.chains}")


if __name__ == "__main__":
    main()
