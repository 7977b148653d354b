"""``report.md`` and ``summary.json``, and the command line."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from prompts.roles import ROLES

from pipeline.training.report.log import (
    _CHECKPOINT, COLLAPSE, DEFAULT_OUT, REPORT_FILE, SUMMARY_FILE, ZERO_STD, ZERO_STD_DOC, ReportError, TrainingLog,
    describe, eval_keys, find_state, load_log, summarise,
)  # fmt: skip
from pipeline.training.report.plots import write_plots



# ---------------------------------------------------------------------------------------------- Markdown


def fmt(value: float | None) -> str:
    if value is None:
        return "-"
    if value == 0:
        return "0"
    if abs(value) >= 1e5 or abs(value) < 1e-3:
        return f"{value:.2e}"
    return f"{value:.3f}"


def fmt_count(value: float | None) -> str:
    return "-" if value is None else (str(int(value)) if float(value).is_integer() else fmt(value))


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def _with_range(mean: float, low: float, high: float, count: int) -> str:
    return fmt(mean) if count == 1 else f"{fmt(mean)} ({fmt(low)}–{fmt(high)})"


def metric_table(metrics: Mapping[str, Mapping[str, float]]) -> list[str]:
    rows = []
    for key, s in metrics.items():
        q = int(s["quarter"])
        rows.append([f"`{key}`", describe(key), str(int(s["n"])),
                     _with_range(s["first_mean"], s["first_min"], s["first_max"], q),
                     _with_range(s["last_mean"], s["last_min"], s["last_max"], q),
                     fmt(s["last_mean"] - s["first_mean"]), fmt(s["mean"])])
    return _table(["metric", "what", "steps", "first ¼ mean (min–max)", "last ¼ mean (min–max)", "change",
                   "overall mean"], rows)


def render_report(log: TrainingLog, summary: Mapping[str, Any], plots: Mapping[str, Sequence[str]]) -> str:
    info = log.run_info
    folder = log.source.resolve().parent
    name = folder.parent.name if folder.name == "final" or _CHECKPOINT.match(folder.name) else folder.name
    where = f"global step {summary['global_step']}" + (
        f" of max_steps {summary['max_steps']}" if summary["max_steps"] is not None else "")
    lines = [f"# Training report: {name}", "", f"Read from `{log.source}` ({where}).", ""]
    counts = summary["steps_per_role"]
    rows = [["logged training steps", f"{summary['training_steps']} ("
             + ", ".join(f"{n} {role}" for role, n in counts.items()) + ")"]]
    for key in ("base_model", "schedule", "curriculum", "stages"):
        if key in info:
            rows.append([key, str(info[key])])
    if info.get("reward_funcs"):
        weights = info.get("reward_weights") or []
        rows.append(["reward functions", ", ".join(
            f"{f} x{weights[i]:g}" if i < len(weights) and isinstance(weights[i], (int, float)) else f
            for i, f in enumerate(info["reward_funcs"]))])
    if summary["frac_reward_zero_std_mean"] is not None:
        rows.append([f"mean `{ZERO_STD}` (all steps)", fmt(summary["frac_reward_zero_std_mean"])])
    if summary["collapse_rate_mean"] is not None:
        rows.append([f"mean `{COLLAPSE}` (generator steps)", fmt(summary["collapse_rate_mean"])])
    timing = summary["timing"]
    if "step" in timing:
        rows.append(["mean step time", f"{timing['step']['mean_s']:.1f} s"])
    if summary["eval_bench"]:
        last = summary["eval_bench"][-1]
        shown = [k for k in eval_keys([last]) if k.endswith("/pass@1")]
        if shown:
            rows.append([f"last benchmark (step {int(last['step'])})",
                         ", ".join(f"`{k}` {fmt(last[k])}" for k in shown)])
    lines += _table(["", ""], rows)
    lines += ["", "Per metric: the mean of its first and last quarter of logged values (max(1, n // 4) values "
              "each; min–max in brackets when a quarter holds more than one), their difference and the mean "
              "over all its values. Generator metrics are taken over generator-phase steps, discriminator "
              "metrics over discriminator-phase steps" + ("" if log.has_roles else
                                                           " (this log has no `phase/role`: every step counts "
                                                           "for both)") + ". Metrics the run did not log are left out."]
    for role in ROLES:
        if role not in summary["roles"]:
            continue
        data = summary["roles"][role]
        kinds = sorted({log.role_of(e) or "unknown" for e in log.role_steps(role)})
        over = {role: f"{role}-phase", "unified": "unified (one adapter, both roles)", "unknown": "logged"}
        lines += ["", f"## {role.capitalize()}", "",
                  f"Over {data['steps']} {' and '.join(over.get(k, k) for k in kinds)} step(s).", ""]
        lines += metric_table(data["metrics"])
        if f"{role}.png" in plots:
            lines += ["", f"![{role}]({role}.png)"]
    if "stability.png" in plots:
        lines += ["", "## Learning signal and collapse", "",
                  f"`{ZERO_STD}`: {ZERO_STD_DOC}; near 1, GRPO's advantages vanish and the step teaches nothing. "
                  f"`{COLLAPSE}`: share of generator samples with a degenerate stage (what the collapse guard "
                  "watches).", "", "![stability](stability.png)"]
    if summary["group_pass_counts"]:
        counts = summary["group_pass_counts"]
        total = sum(counts.values())
        lines += ["", "## Prompt groups by passing samples", "",
                  "Generator prompt groups over the run, by how many of their samples passed every test of the "
                  "problem: a group where none or all pass gives the pass rate no advantage.", ""]
        lines += _table(["samples passing", "groups", "share"],
                        [[k, fmt_count(n), _pct(n / total if total else None)] for k, n in counts.items()])
    if timing:
        lines += ["", "## Step time", "", "Mean over logged steps; `rewards` includes `sandbox`.", ""]
        lines += _table(["part", "mean seconds per step", "share of the step"],
                        [[part, f"{t['mean_s']:.2f}" if "mean_s" in t else "-", _pct(t.get("share"))]
                         for part, t in timing.items()])
        if "timing.png" in plots:
            lines += ["", "![timing](timing.png)"]
    reasons = summary["invalid_reasons"]
    if reasons["totals"] or reasons["by_stage"]:
        lines += ["", "## Invalid discriminator tests", "", "Tests counted over the run, by reason"
                  + (" and by the chain stage they were written after" if reasons["by_stage"] else "") + ".", ""]
        names = list(reasons["totals"]) + sorted({r for c in reasons["by_stage"].values() for r in c}
                                                 - set(reasons["totals"]))
        stages = list(reasons["by_stage"])
        lines += _table(["reason", "total", *(f"stage {k}" for k in stages)],
                        [[f"`{r}`", fmt_count(reasons["totals"].get(r)),
                          *(fmt_count(reasons["by_stage"][k].get(r, 0.0)) for k in stages)] for r in names])
        if "invalid_reasons.png" in plots:
            lines += ["", "![invalid reasons](invalid_reasons.png)"]
    if summary["eval_bench"]:
        keys = eval_keys(log.evals)
        lines += ["", "## Benchmark during training", ""]
        lines += _table(["step", *(f"`{k.removeprefix('eval_bench/')}`" for k in keys)],
                        [[str(int(e["step"])), *(fmt(e.get(k)) for k in keys)] for e in summary["eval_bench"]])
        if "eval_bench.png" in plots:
            lines += ["", "![benchmark](eval_bench.png)"]
    lines += ["", "## Files", "", *(f"- [{p}]({p})" for p in plots), f"- [{SUMMARY_FILE}]({SUMMARY_FILE}): every "
              "number above"]
    return "\n".join(lines) + "\n"


def write_report(path: str | Path, out_dir: str | Path | None = None) -> Path:
    """Write the report of a run folder or trainer_state.json into ``out_dir`` (default: RUN/report);
    returns the path of report.md. ReportError for input that cannot be reported on."""
    log = load_log(path)
    if out_dir is None:
        given = Path(path)
        out_dir = (given if given.is_dir() else given.parent) / DEFAULT_OUT
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    summary = summarise(log)
    plots = write_plots(out, log, summary)
    (out / SUMMARY_FILE).write_text(json.dumps({**summary, "plots": plots}, indent=2) + "\n", encoding="utf-8")
    report = out / REPORT_FILE
    report.write_text(render_report(log, summary, plots), encoding="utf-8")
    return report


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline.training.report",
        description="Turn a training run's log (trainer_state.json) into PNG plots and a Markdown summary.")
    parser.add_argument("run", metavar="RUN_DIR",
                        help="a run folder (output_dir: its final/trainer_state.json, else the highest "
                             "checkpoint-N's), a checkpoint folder, or a trainer_state.json file")
    parser.add_argument("--out", metavar="DIR", default=None,
                        help=f"folder for report.md, summary.json and the PNGs (default: RUN_DIR/{DEFAULT_OUT})")
    args = parser.parse_args(argv)
    try:
        report = write_report(args.run, args.out)
    except ReportError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except OSError as err:  # the output folder cannot be written
        print(f"error: cannot write the report: {err}", file=sys.stderr)
        return 1
    print(f"report: {report} (from {find_state(args.run)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
