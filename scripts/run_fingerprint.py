"""A finished run's fingerprint, to show that a change of the code left training bit for bit the same.

    .venv/bin/python scripts/run_fingerprint.py outputs/smoke > before.json      # on the old code
    .venv/bin/python scripts/run_fingerprint.py outputs/smoke --compare before.json   # on the new code

It hashes every tensor of both adapters in ``final/`` and in each complete checkpoint, the optimizer and
scheduler state of each checkpoint (each tensor of ``optimizer.pt``, by name), and keeps every logged value
whose key is a reward, a reward metric or the loss (``trainer_state.json``'s ``log_history``), leaving out
wall-clock timings. ``--compare`` prints what differs and exits 1 if anything does.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

# Logged keys that depend on the wall clock, not on what was trained.
CLOCK_KEYS = ("timing/", "/timing/", "step_time", "sandbox/seconds", "sandbox/jobs_per_s", "sandbox/tests_per_s",
              "train_runtime", "train_samples_per_second", "train_steps_per_second", "generation_s", "total_flos")
# Log keys renamed by issue 24 (README, "Renamed in this version"): compared under their new name.
RENAMED = {"eval_bench/direct/mode_collapse_rate": "eval_bench/direct/collapse_rate",
           "eval_bench/staged/mode_collapse_rate": "eval_bench/staged/collapse_rate"}


def _digest(tensor: Any) -> str:
    import torch

    data = tensor.detach().cpu().contiguous()
    if data.dtype == torch.bfloat16:
        data = data.view(torch.int16)
    return hashlib.sha256(data.numpy().tobytes()).hexdigest()[:16] + f":{tuple(data.shape)}:{tensor.dtype}"


def _flatten(value: Any, prefix: str, out: dict[str, str]) -> None:
    import torch

    if isinstance(value, torch.Tensor):
        out[prefix] = _digest(value)
    elif isinstance(value, dict):
        for key in sorted(value, key=str):
            _flatten(value[key], f"{prefix}/{key}", out)
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            _flatten(item, f"{prefix}/{i}", out)
    else:
        out[prefix] = repr(value)


def fingerprint(run: Path) -> dict[str, Any]:
    import torch
    from safetensors.torch import load_file

    out: dict[str, Any] = {"tensors": {}, "logs": []}
    folders = [run / "final", *sorted(run.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))]
    for folder in folders:
        for file in sorted(folder.glob("*/adapter_model.safetensors")):
            for name, tensor in sorted(load_file(str(file)).items()):
                out["tensors"][f"{file.relative_to(run)}:{name}"] = _digest(tensor)
        for name in ("optimizer.pt", "scheduler.pt"):
            if (folder / name).is_file():
                _flatten(torch.load(folder / name, map_location="cpu", weights_only=False), f"{folder.name}/{name}",
                         out["tensors"])
    state = sorted(run.glob("checkpoint-*/trainer_state.json"), key=lambda p: int(p.parent.name.split("-")[1]))
    if state:
        for entry in json.loads(state[-1].read_text())["log_history"]:
            out["logs"].append({RENAMED.get(k, k): v for k, v in sorted(entry.items())
                                if not any(c in k for c in CLOCK_KEYS)})
    return out


def compare(new: dict[str, Any], old: dict[str, Any]) -> list[str]:
    diffs = []
    for key in sorted(set(new["tensors"]) | set(old["tensors"])):
        if new["tensors"].get(key) != old["tensors"].get(key):
            diffs.append(f"tensor {key}: {old['tensors'].get(key)} -> {new['tensors'].get(key)}")
    if len(new["logs"]) != len(old["logs"]):
        diffs.append(f"{len(old['logs'])} log entries -> {len(new['logs'])}")
    for i, (a, b) in enumerate(zip(old["logs"], new["logs"])):
        for key in sorted(set(a) | set(b)):
            if a.get(key) != b.get(key):
                diffs.append(f"log {i} (step {a.get('step')}) {key}: {a.get(key)!r} -> {b.get(key)!r}")
    return diffs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path, help="a finished train.py output_dir")
    parser.add_argument("--compare", type=Path, default=None, help="a fingerprint JSON of the run before the change")
    args = parser.parse_args(argv)
    found = fingerprint(args.run)
    if args.compare is None:
        json.dump(found, sys.stdout, indent=1)
        print()
        return 0
    old = json.loads(args.compare.read_text())
    diffs = compare(found, old)
    log_values = sum(len(entry) for entry in found["logs"])
    print(f"{len(found['tensors'])} tensors, {len(found['logs'])} log entries ({log_values} values) compared: "
          f"{len(diffs)} differences")
    for line in diffs[:50]:
        print("  " + line)
    return 1 if diffs else 0


if __name__ == "__main__":
    raise SystemExit(main())
