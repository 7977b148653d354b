"""Run a CPU recipe's training in this process and compare its peak resident memory with the estimate.

    python scripts/measure_memory.py --config configs/smoke.yaml --tensors --max_steps 2

The estimate is ``python -m pipeline.tools.memory``'s (docs/training.md, "Memory"); this script runs ``train.main`` on
the same recipe (any further ``--field value`` overrides both) and measures it from /proc. It lives beside the
scripts because it wires train.py in: ``pipeline`` never imports it.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path
from typing import Any, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.tools.memory import (  # noqa: E402
    GIB, LiveTensorBytes, table, with_observed_widths,
)  # fmt: skip
from pipeline.tools.memory.cli import estimate_from_command_line, estimate_parser  # noqa: E402
from pipeline.tools.memory.recipe import override_value  # noqa: E402


def _status_kib(field_name: str, pid: str = "self") -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field_name + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"/proc/{pid}/status has no {field_name}")


def measure_training(config: str, overrides: Sequence[str], tensors: bool = False) -> dict[str, Any]:
    """Run ``train.py``'s job in this process and measure its resident memory (Linux /proc).

    The baseline is VmRSS when the model starts loading (every import done, the datasets loaded); the kernel's
    high-water mark (VmHWM) is reset there and read after the run, so the peak minus the baseline is what the
    model, the rollout and the training steps added. A thread samples VmRSS every 0.2 s to tell which phase
    peaked (the rollout's chain or the rest), and the chains' real token widths are recorded (the estimate
    assumes every stage runs to its budget). With ``tensors``, a LiveTensorBytes mode also follows every tensor
    the run creates after the model has loaded (the frozen weights are counted by the estimate's weights part)."""
    import contextlib
    import gc
    import tempfile

    import train
    import pipeline.chain.rollout as rollout_module

    state: dict[str, Any] = {"marks": [], "widths": {"generator": [0, 0], "discriminator": [0, 0]}}
    original_chains, original_load = rollout_module.generate_chains, train.load_policies

    def timed_chains(*args: Any, **kwargs: Any):
        state["marks"].append((time.monotonic(), "start"))
        try:
            chains = original_chains(*args, **kwargs)
        finally:
            state["marks"].append((time.monotonic(), "end"))
        for chain in chains:
            for role, turns in (("generator", chain.generator), ("discriminator", chain.discriminator)):
                completion = sum(map(len, turns.generated)) + sum(map(len, turns.inserted))
                seen = state["widths"][role]
                seen[0], seen[1] = max(seen[0], len(turns.prompt)), max(seen[1], completion)
        return chains

    live = LiveTensorBytes() if tensors else None

    def measured_load(*args: Any, **kwargs: Any):
        gc.collect()
        state["baseline_kib"] = _status_kib("VmRSS")
        try:  # reset the high-water mark to the current RSS, so that VmHWM is the peak from here on
            Path("/proc/self/clear_refs").write_text("5")
            state["hwm_reset"] = True
        except OSError:
            state["hwm_reset"] = False
        policies = original_load(*args, **kwargs)
        if live is not None:  # count what the run adds, not the frozen base it loaded
            model = policies.model
            live.forget([t for t in [*model.parameters(), *model.buffers()] if not t.requires_grad])
            live.peak = live.current
        return policies

    samples: list[tuple[float, int]] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            samples.append((time.monotonic(), _status_kib("VmRSS")))
            stop.wait(0.2)

    argv = ["--config", config, *overrides]
    if override_value(overrides, "output_dir") is None:
        argv += ["--output_dir", tempfile.mkdtemp(prefix="memory-measure-")]
    after_imports_kib = _status_kib("VmRSS")
    rollout_module.generate_chains, train.load_policies = timed_chains, measured_load
    sampler = threading.Thread(target=sample, daemon=True)
    started = time.monotonic()
    sampler.start()
    try:
        with live if live is not None else contextlib.nullcontext():
            code = train.main(argv)
    finally:
        stop.set()
        sampler.join()
        rollout_module.generate_chains, train.load_policies = original_chains, original_load
    if "baseline_kib" not in state:
        raise RuntimeError(f"the run ended (exit code {code}) before loading the model: nothing was measured")
    peak_kib, baseline_kib = _status_kib("VmHWM"), state["baseline_kib"]
    windows = [(a, b) for (a, _), (b, _) in zip(state["marks"][0::2], state["marks"][1::2])]
    after = [(t, kib) for t, kib in samples if t >= started]

    def peak(values: list[int]) -> float | None:
        return (max(values) - baseline_kib) * 1024 / GIB if values else None

    return {
        "exit_code": code, "seconds": time.monotonic() - started,
        "after_imports_gib": after_imports_kib * 1024 / GIB, "baseline_gib": baseline_kib * 1024 / GIB,
        "peak_rss_gib": peak_kib * 1024 / GIB, "hwm_reset": state["hwm_reset"],
        "measured_gib": (peak_kib - baseline_kib) * 1024 / GIB,
        "sampled_generation_peak_gib": peak([k for t, k in after if any(a <= t <= b for a, b in windows)]),
        "sampled_other_peak_gib": peak([k for t, k in after if not any(a <= t <= b for a, b in windows)]),
        "generation_calls": len(windows),
        "live_tensor_peak_gib": live.peak / GIB if live is not None else None,
        "observed_widths": {role: {"prompt": p, "completion": c} for role, (p, c) in state["widths"].items()},
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = estimate_parser("python scripts/measure_memory.py", __doc__.split("\n\n")[0])
    parser.add_argument("--tensors", action="store_true",
                        help="also follow every tensor the run creates (slower) and report the peak "
                             "of live tensor bytes, which excludes the allocator's and Python's overhead")
    parsed = estimate_from_command_line(parser, argv)
    if parsed is None:
        return 2
    args, overrides, est = parsed
    result: dict[str, Any] = est.to_dict()
    if est.recipe.device != "cpu":
        print("error: this runs the recipe here; it measures host memory of CPU recipes only", file=sys.stderr)
        return 2
    measured = measure_training(args.config, overrides, tensors=args.tensors)
    measured["estimate_gib"] = est.total_gib
    measured["error"] = (est.total_gib - measured["measured_gib"]) / measured["measured_gib"]
    observed = with_observed_widths(est, measured["observed_widths"])
    measured["estimate_at_observed_widths_gib"] = observed.total_gib
    measured["error_at_observed_widths"] = (observed.total_gib - measured["measured_gib"]) / measured["measured_gib"]
    measured["observed_parts_gib"] = {p.key: p.gib for p in observed.parts}
    result["measured"] = measured
    if args.json:
        print(json.dumps(result, indent=2, default=str))
    else:
        print(table(est))
        m = result["measured"]
        print(f"\n  measured: peak RSS {m['peak_rss_gib']:.2f} GiB - baseline {m['baseline_gib']:.2f} GiB "
              f"(imports done, data loaded, model not yet) = {m['measured_gib']:.2f} GiB "
              f"(exit code {m['exit_code']}, {m['seconds']:.0f} s)")
        print(f"  estimate {m['estimate_gib']:.2f} GiB: error {m['error']:+.1%}")
        print(f"  estimate at the widths the run produced {m['observed_widths']}: "
              f"{m['estimate_at_observed_widths_gib']:.2f} GiB, error {m['error_at_observed_widths']:+.1%}")
        print(f"  sampled peaks above the baseline: during the chain {m['sampled_generation_peak_gib']:.2f}, "
              f"elsewhere {m['sampled_other_peak_gib']:.2f} GiB")
        if m["live_tensor_peak_gib"] is not None:
            weights = est.part("weights").gib
            print(f"  live tensors: peak {m['live_tensor_peak_gib']:.2f} GiB beyond the frozen weights, "
                  f"+ {weights:.2f} GiB of weights = {m['live_tensor_peak_gib'] + weights:.2f} GiB "
                  f"(estimate at the real widths {m['estimate_at_observed_widths_gib']:.2f} GiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())



if __name__ == "__main__":
    sys.exit(main())
