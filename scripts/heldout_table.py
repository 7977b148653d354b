"""One table and one plot of the held-out measurements of a run's points (docs/learning.md).

    .venv/bin/python scripts/heldout_table.py outputs/heldout base bootstrap rl --out docs/learning

Reads ``<root>/<point>/<benchmark>-<mode>-<greedy|best4>/results.json`` as `scripts/heldout_eval.sh` writes them
and prints a Markdown table (also written to ``<out>/heldout.md``) and draws ``<out>/heldout.png``: greedy
pass@1, pass@1 and pass@4 of 4 samples, Best-of-4 by the discriminator's tests, syntax validity, collapse rate
and the validity of the discriminator's tests, per benchmark and mode, one column per point. A measurement
that was not made is shown as "-", never as 0.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

BENCHMARKS = (("humaneval-mini", "HumanEval-mini (20)"), ("mbpp", "MBPP test, first 100"))
MODES = ("direct", "staged")


def _run(root: Path, point: str, name: str) -> dict[str, Any] | None:
    path = root / point / name / "results.json"
    if not path.is_file():
        return None
    runs = json.loads(path.read_text())["runs"]
    return next(iter(runs.values()))


def measurements(root: Path, point: str) -> dict[tuple[str, str], dict[str, float]]:
    """{(benchmark, mode): {metric: value}} of one point; metrics absent where not measured."""
    out: dict[tuple[str, str], dict[str, float]] = {}
    for bench, _ in BENCHMARKS:
        for mode in MODES:
            found: dict[str, float] = {}
            greedy = _run(root, point, f"{bench}-{mode}-greedy")
            if greedy is not None:
                found |= {"greedy pass@1": greedy["pass@1"], "syntax valid (greedy)": greedy["syntax_valid_rate"],
                          "collapse (greedy)": greedy["collapse_rate"]}
            sampled = _run(root, point, f"{bench}-{mode}-best4")
            if sampled is not None:
                found |= {"pass@1 (4 samples, T 0.8)": sampled["pass@1"], "pass@4": sampled["pass@4"]}
                best = sampled.get("best_of") or {}
                if "pass_rate" in best:
                    found["Best-of-4"] = best["pass_rate"]
                tests = best.get("tests") or {}
                if tests.get("written"):
                    found["discriminator test validity"] = tests["validity"]
                    found["tests written"] = float(tests["written"])
            out[(bench, mode)] = found
    return out


METRICS = ("greedy pass@1", "pass@1 (4 samples, T 0.8)", "pass@4", "Best-of-4", "syntax valid (greedy)",
           "collapse (greedy)", "discriminator test validity", "tests written")


def _fmt(metric: str, value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.0f}" if metric == "tests written" else f"{100 * value:.1f} %"


def table(points: list[str], data: dict[str, dict[tuple[str, str], dict[str, float]]]) -> str:
    lines = ["| benchmark | mode | metric | " + " | ".join(points) + " |",
             "|---|---|---|" + "---|" * len(points)]
    for bench, label in BENCHMARKS:
        for mode in MODES:
            for metric in METRICS:
                values = [data[p].get((bench, mode), {}).get(metric) for p in points]
                if all(v is None for v in values):
                    continue
                lines.append(f"| {label} | {mode} | {metric} | " + " | ".join(_fmt(metric, v) for v in values) + " |")
    return "\n".join(lines) + "\n"


def plot(points: list[str], data: dict[str, dict[tuple[str, str], dict[str, float]]], path: Path) -> None:
    figure = Figure(figsize=(12, 4.2))
    FigureCanvasAgg(figure)
    shown = ("greedy pass@1", "pass@4", "Best-of-4")
    for at, (bench, label) in enumerate(BENCHMARKS):
        axes = figure.add_subplot(1, len(BENCHMARKS), at + 1)
        top = 0.0
        for mode, style in zip(MODES, ("--", "-")):
            for metric, marker in zip(shown, ("o", "s", "^")):
                values = [data[p].get((bench, mode), {}).get(metric) for p in points]
                xs = [i for i, v in enumerate(values) if v is not None]
                if xs:
                    top = max(top, *(100 * values[i] for i in xs))
                    axes.plot(xs, [100 * values[i] for i in xs], style, marker=marker, label=f"{mode} {metric}")
        axes.set_xticks(range(len(points)), points)
        axes.set_title(label)
        axes.set_ylabel("% of tasks")
        axes.set_ylim(0, min(100, 10 * (int(top) // 10) + 20))  # small scores stay readable
        axes.grid(alpha=0.3)
        axes.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("root", type=Path, help="folder holding one subfolder per point")
    parser.add_argument("points", nargs="+", help="point subfolders in order, e.g. base bootstrap rl")
    parser.add_argument("--out", type=Path, required=True, help="where heldout.md and heldout.png go")
    args = parser.parse_args(argv)
    data = {p: measurements(args.root, p) for p in args.points}
    args.out.mkdir(parents=True, exist_ok=True)
    text = table(args.points, data)
    (args.out / "heldout.md").write_text(text)
    plot(args.points, data, args.out / "heldout.png")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
