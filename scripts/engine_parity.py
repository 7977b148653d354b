"""Greedy verdicts of the two generation engines side by side: evaluate.py on a benchmark with ``--engine
transformers`` and ``--engine vllm``, direct and staged, in fp32 (the only dtype vLLM's CPU check uses), then
task by task: same verdict, same final code.

    .venv/bin/python scripts/engine_parity.py [--benchmark humaneval-mini] [--adapter CKPT] [--out outputs/parity]

Each vLLM evaluation starts its own server (``.venv-vllm``, made by scripts/setup_vllm.sh) and stops it. Prints
one line per mode and exits 1 when any verdict differs. Measured results are in the README ("Generation with
vLLM").
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def evaluate(out: Path, mode: str, engine: str, args: argparse.Namespace) -> tuple[dict[str, dict], float]:
    folder = out / f"{mode}-{engine}"
    command = [sys.executable, str(ROOT / "evaluate.py"), "--benchmark", args.benchmark, "--mode", mode,
               "--engine", engine, "--dtype", "float32", "--output_dir", str(folder)]
    if args.adapter:
        command += ["--adapter", args.adapter]
    started = time.perf_counter()
    subprocess.run(command, cwd=ROOT, check=True)
    seconds = time.perf_counter() - started
    records = [json.loads(line) for line in (folder / "samples.jsonl").read_text().splitlines() if line.strip()]
    return {r["task_id"]: r for r in records}, seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--benchmark", default="humaneval-mini")
    parser.add_argument("--adapter", default=None, help="checkpoint folder with generator/ and discriminator/")
    parser.add_argument("--modes", nargs="+", default=["direct", "staged"])
    parser.add_argument("--out", default="outputs/parity")
    args = parser.parse_args()
    out = Path(args.out)
    failed = False
    for mode in args.modes:
        reference, hf_s = evaluate(out, mode, "transformers", args)
        served, vllm_s = evaluate(out, mode, "vllm", args)
        same_verdict = [t for t in reference if served.get(t, {}).get("status") == reference[t]["status"]]
        same_code = [t for t in reference if served.get(t, {}).get("code") == reference[t].get("code")]
        passed = sum(r["status"] == "passed" for r in reference.values())
        print(f"{mode}: same verdict {len(same_verdict)}/{len(reference)}, same code {len(same_code)}/{len(reference)}, "
              f"passed {passed} (transformers) / {sum(r['status'] == 'passed' for r in served.values())} (vllm); "
              f"evaluate.py took {hf_s:.0f} s (transformers), {vllm_s:.0f} s (vllm, server start included)")
        for task in sorted(set(reference) - set(same_verdict)):
            print(f"  {task}: {reference[task]['status']} (transformers) vs {served.get(task, {}).get('status')} (vllm)")
        failed |= len(same_verdict) != len(reference)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
