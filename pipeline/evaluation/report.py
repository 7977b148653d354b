"""Writing an evaluation's artefacts: results.json, samples.jsonl, report.md and its PNG plots.

The report is Markdown with every number in tables and the plots as PNG files next to it (rendered with
matplotlib's Agg canvas: no display needed), so the output folder is complete on its own.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from pipeline.evaluation.paired import PAIRED_HEADER, format_row

RESULTS_FILE = "results.json"
SAMPLES_FILE = "samples.jsonl"
REPORT_FILE = "report.md"


def pass_keys(summary: Mapping[str, Any]) -> list[str]:
    """The ``pass@k`` keys of a run summary, by k."""
    return sorted((k for k in summary if k.startswith("pass@")), key=lambda k: int(k.split("@")[1]))


def write_results(out_dir: Path, results: Mapping[str, Any]) -> Path:
    path = out_dir / RESULTS_FILE
    path.write_text(json.dumps(results, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    return path


def write_samples(out_dir: Path, records: Mapping[str, Sequence[Mapping[str, Any]]]) -> Path:
    path = out_dir / SAMPLES_FILE
    with path.open("w", encoding="utf-8") as handle:
        for run_records in records.values():
            for record in run_records:
                handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    return path


def _pct(value: float) -> str:
    return f"{100 * value:.1f}%"


def _bars(path: Path, groups: Sequence[str], series: Mapping[str, Sequence[float]], title: str, ylabel: str) -> None:
    """Grouped bar chart: one group per label in `groups`, one bar per series (run)."""
    figure = Figure(figsize=(max(5.0, 1.2 * len(groups) * max(1, len(series))), 3.6), dpi=110)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    width = 0.8 / max(1, len(series))
    for offset, (name, values) in enumerate(series.items()):
        positions = [g + offset * width - 0.4 + width / 2 for g in range(len(groups))]
        bars = axes.bar(positions, [100 * v for v in values], width, label=name)
        axes.bar_label(bars, fmt="%.1f", fontsize=8)
    axes.set_xticks(range(len(groups)), groups)
    axes.set_ylim(0, 118)  # room above 100% for the bar labels and the legend
    axes.set_ylabel(ylabel)
    axes.set_title(title)
    axes.legend(fontsize=8, loc="upper right", ncol=max(1, len(series)))
    figure.tight_layout()
    figure.savefig(path, format="png")


def write_plots(out_dir: Path, results: Mapping[str, Any]) -> dict[str, str]:
    """The report's PNGs; returns {plot name: file name} for those drawn."""
    runs: Mapping[str, Mapping[str, Any]] = results["runs"]
    plots: dict[str, str] = {}
    keys = sorted({k for s in runs.values() for k in pass_keys(s)}, key=lambda k: int(k.split("@")[1]))
    if keys:
        _bars(out_dir / "pass_at_k.png", keys, {name: [s.get(k, 0.0) for k in keys] for name, s in runs.items()},
              "pass@k", "% of tasks")
        plots["pass_at_k"] = "pass_at_k.png"
    categories = sorted({c for s in runs.values() for c in s.get("per_category", {})})
    if categories:
        _bars(out_dir / "per_category.png", categories,
              {name: [s.get("per_category", {}).get(c, {}).get("pass@1", 0.0) for c in categories]
               for name, s in runs.items()}, "pass@1 per category", "% of tasks")
        plots["per_category"] = "per_category.png"
    quality = ["syntax valid", "mode collapse"]
    _bars(out_dir / "quality.png", quality,
          {name: [s["syntax_valid_rate"], s["collapse_rate"]] for name, s in runs.items()},
          "syntax validity and mode collapse", "% of samples")
    plots["quality"] = "quality.png"
    return plots


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def pass_at_k_table(runs: Mapping[str, Mapping[str, Any]]) -> list[str]:
    keys = sorted({k for s in runs.values() for k in pass_keys(s)}, key=lambda k: int(k.split("@")[1]))
    return _table(["run", *keys], [[name, *(_pct(s[k]) if k in s else "-" for k in keys)] for name, s in runs.items()])


def evalplus_table(runs: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """EvalPlus's pair of scores per run: pass@k on the base inputs, on base + plus inputs, and the gap."""
    plus_runs = {name: s["evalplus"] for name, s in runs.items() if s.get("evalplus")}
    if not plus_runs:
        return []
    keys = sorted({k for e in plus_runs.values() for k in e["base"]}, key=lambda k: int(k.split("@")[1]))
    header = ["run", *(f"base {k}" for k in keys), *(f"plus {k}" for k in keys), *(f"gap {k}" for k in keys)]
    rows = [[name, *(_pct(e["base"][k]) if k in e["base"] else "-" for k in keys),
             *(_pct(e["plus"][k]) if k in e["plus"] else "-" for k in keys),
             *(f"{100 * e['gap'][k]:.1f} pts" if k in e["gap"] else "-" for k in keys)] for name, e in plus_runs.items()]
    return _table(header, rows)


def discriminator_table(runs: Mapping[str, Mapping[str, Any]]) -> list[str]:
    rows = []
    for name, s in runs.items():
        b = s.get("discriminator_benchmark")
        if b:
            rows.append([name, str(b["written"]), f"{_pct(b['validity'])} ({b['valid']})",
                         f"{b['tasks_with_valid_test']}/{b['tasks']}", str(b["valid_but_vacuous"]),
                         str(b.get("valid_but_restated", "-")),
                         f"{_pct(b['catch_rate'])} ({b['subtle_caught']}/{b['subtle_programs']})",
                         ", ".join(f"{k} {v}" for k, v in b["invalid"].items()) or "-"])
    return _table(["run", "tests written", "valid", "tasks with a valid test", "valid but vacuous",
                   "valid but restating the task's own asserts", "subtly wrong programs caught", "invalid by reason"], rows) if rows else []


def best_of_table(runs: Mapping[str, Mapping[str, Any]]) -> list[str]:
    rows = []
    for name, s in runs.items():
        b = s.get("best_of")
        if b:
            n = b["n"]
            tests = b.get("tests") or {}
            rows.append([name, _pct(b.get("pass@1", 0.0)), _pct(b["pass_rate"]), _pct(b.get(f"pass@{n}", 0.0)),
                         f"{b['tasks_with_tests']}/{s['num_tasks']}", f"{b['mean_selection_tests']:.1f}",
                         f"{_pct(tests['validity'])} of {tests['written']}" if tests.get("written") else "-",
                         f"{tests['tasks_with_valid_test']}/{tests['tasks']}" if tests else "-"])
    if not rows:
        return []
    n = next(s["best_of"]["n"] for s in runs.values() if s.get("best_of"))
    return _table(["run", "pass@1", f"best-of-{n}", f"pass@{n}", "tasks with tests", "tests per task",
                   "valid tests", "tasks with a valid test"], rows)


def quality_table(runs: Mapping[str, Mapping[str, Any]]) -> list[str]:
    return _table(
        ["run", "syntax valid", "mode collapse", "mean repetition score", "official tests passed", "verdicts"],
        [[name, _pct(s["syntax_valid_rate"]), _pct(s["collapse_rate"]), f"{s['mean_collapse_score']:.3f}",
          _pct(s["test_pass_rate"]), ", ".join(f"{k} {v}" for k, v in s["status_counts"].items())]
         for name, s in runs.items()])


def stage_table(runs: Mapping[str, Mapping[str, Any]], stage_names: Sequence[str]) -> list[str]:
    names = list(runs)
    width = max((len(s["mean_tokens_per_stage"]) for s in runs.values()), default=0)
    if not width:
        return []
    rows = []
    for stage in range(width):
        label = stage_names[stage] if stage < len(stage_names) else f"stage {stage + 1}"
        cells = [label]
        for name in names:
            tokens, seconds = runs[name]["mean_tokens_per_stage"], runs[name]["mean_seconds_per_stage"]
            cells += [f"{tokens[stage]:.1f}" if stage < len(tokens) else "-",
                      f"{seconds[stage]:.2f}" if stage < len(seconds) else "-"]
        rows.append(cells)
    return _table(["stage", *(f"{n} {what}" for n in names for what in ("tokens", "seconds"))], rows)


def category_table(runs: Mapping[str, Mapping[str, Any]]) -> list[str]:
    categories = sorted({c for s in runs.values() for c in s.get("per_category", {})})
    if not categories:
        return []
    rows = []
    for category in categories:
        cells = [category]
        for s in runs.values():
            entry = s.get("per_category", {}).get(category)
            cells.append(f"{_pct(entry['pass@1'])} of {entry['tasks']}" if entry and "pass@1" in entry else "-")
        rows.append(cells)
    return _table(["category", *(f"{name} pass@1" for name in runs)], rows)


def render_report(results: Mapping[str, Any], plots: Mapping[str, str]) -> str:
    runs = results["runs"]
    cfg = results["config"]
    lines = [f"# Evaluation: {results['benchmark']} ({results['mode']})", ""]
    if cfg.get("completions"):
        settings = [["completions file", str(cfg["completions"])], ["completion format", str(cfg["completion_format"])]]
    else:
        settings = [["model", str(results.get("model"))], ["adapter", str(results.get("adapter"))],
                    ["samples per task", str(cfg.get("num_samples"))], ["temperature", str(cfg.get("temperature"))],
                    ["seed", str(cfg.get("seed"))]]
    if results.get("compared"):
        settings = [["samples per task", str(cfg.get("num_samples"))], ["temperature", str(cfg.get("temperature"))]]
    lines += _table(["setting", "value"], [*settings, ["tasks", str(results["num_tasks"])],
                                           ["sandbox isolation", str(results.get("sandbox", {}).get("isolation"))]])
    if compared := results.get("compared"):
        lines += ["", "## Evaluations compared", ""]
        lines += _table(["label", "results", "model", "adapter", "seconds"],
                        [[c["label"], str(c["source"]), str(c["model"]), str(c["adapter"]),
                          "-" if c.get("total_s") is None else f"{c['total_s']:.0f}"] for c in compared])
    if paired := results.get("paired"):
        lines += ["", "## Paired differences", "",
                  "Task by task (pipeline/evaluation/paired.py): the difference of pass@1 (after minus before, "
                  "points), Newcombe's hybrid score interval for paired proportions, and McNemar's exact test "
                  "(two-sided binomial on the discordant tasks). 'plus' counts a task passed on base and plus "
                  "inputs.", ""]
        lines += _table(PAIRED_HEADER, [format_row(p) for p in paired])
    if results.get("paired_skipped"):
        lines += ["", f"No paired statistics: {results['paired_skipped']}."]
    lines += ["", "## pass@k", "",
              "Unbiased estimator of Chen et al. (2021) over the official tests; greedy decoding when one sample "
              "is drawn at temperature 0.", ""]
    lines += pass_at_k_table(runs)
    if plus := evalplus_table(runs):
        lines += ["", "## EvalPlus: base and plus inputs", "",
                  "Judged as EvalPlus 0.3.1 judges (outputs compared with the canonical solution's on every "
                  "input; docs/evalplus.md): pass@k on the original inputs (base), on the original and the "
                  "added inputs (plus), and the points lost to the added inputs (gap).", ""] + plus
    if "pass_at_k" in plots:
        lines += ["", f"![pass@k]({plots['pass_at_k']})"]
    if bench := discriminator_table(runs):
        lines += ["", "## Discriminator benchmark", "",
                  "The discriminator's tests per task (pooled over samples): valid = calls the function, reads no "
                  "source of chance and passes on the canonical solution; caught = a subtly wrong program (right "
                  "on every base input, wrong on a plus input; datasets_build/data/evalplus-subtle-*) fails one of "
                  "its task's valid tests.", ""] + bench
    if best := best_of_table(runs):
        lines += ["", "## Best-of-N", "",
                  "One program per task chosen among N samples by the discriminator's pooled tests (ties: higher "
                  "mean token log-probability); its official verdict next to pass@1 and pass@N of the same samples.",
                  ""] + best
    if categories := category_table(runs):
        lines += ["", "## Per category", ""] + categories
        if "per_category" in plots:
            lines += ["", f"![per category]({plots['per_category']})"]
    lines += ["", "## Output quality", "",
              "Syntax valid: code was found and the program compiles. Mode collapse: degenerate repetition "
              "(prompts/collapse.py) in the sample's text, the whole chain in staged mode (a stage pasted into "
              "the next ones counts), share of samples.", ""] + quality_table(runs)
    if "quality" in plots:
        lines += ["", f"![quality]({plots['quality']})"]
    if stages := stage_table(runs, results.get("stage_names", [])):
        lines += ["", "## Cost per stage", "",
                  "Mean generated tokens and seconds per sample (a batch's time shared among its sequences).", ""]
        lines += stages
    timing = results.get("timing", {})
    if timing:
        lines += ["", "## Timing", ""] + _table(["phase", "seconds"], [[k, f"{v:.1f}"] for k, v in timing.items()])
    return "\n".join(lines) + "\n"


def evaluation_section(results: Mapping[str, Any]) -> str:
    """The "## Evaluation" section of a model card: the headline numbers."""
    runs = results["runs"]
    lines = ["## Evaluation", "",
             f"{results['benchmark']}, {results['mode']} mode, {results['num_tasks']} tasks, "
             f"{results['config'].get('num_samples')} sample(s) per task at temperature "
             f"{results['config'].get('temperature')} (duelcoder `evaluate.py`).", ""]
    lines += pass_at_k_table(runs)
    if plus := evalplus_table(runs):
        lines += [""] + plus
    if best := best_of_table(runs):
        lines += [""] + best
    lines += [""] + quality_table(runs)
    return "\n".join(lines) + "\n"


def write_report(out_dir: Path, results: Mapping[str, Any]) -> Path:
    plots = write_plots(out_dir, results)
    path = out_dir / REPORT_FILE
    path.write_text(render_report(results, plots), encoding="utf-8")
    return path


def summary_lines(results: Mapping[str, Any], out_dir: str) -> list[str]:
    """What evaluate.py prints at the end: one line per run (pass@k, EvalPlus, discriminator, best-of-N,
    quality), then timings and where the artefacts are."""
    lines = []
    for name, summary in results["runs"].items():
        scores = "  ".join(f"{key} {100 * summary[key]:.1f}%" for key in pass_keys(summary))
        plus = summary.get("evalplus")
        if plus:
            scores += "  " + "  ".join(f"plus {k} {100 * v:.1f}% (gap {100 * plus['gap'][k]:.1f})"
                                       for k, v in plus["plus"].items())
        bench = summary.get("discriminator_benchmark")
        if bench:
            scores += (f"  tests: {bench['valid']}/{bench['written']} valid, {bench['tasks_with_valid_test']}/"
                       f"{bench['tasks']} tasks with one, caught {bench['subtle_caught']}/{bench['subtle_programs']} "
                       "subtly wrong programs")
        best = summary.get("best_of")
        if best:
            scores += f"  best-of-{best['n']} {100 * best['pass_rate']:.1f}%"
        lines.append(f"{name}: {scores}  syntax-valid {100 * summary['syntax_valid_rate']:.1f}%  "
                     f"collapse {100 * summary['collapse_rate']:.1f}%  ({summary['num_tasks']} tasks, "
                     f"{summary['num_samples']} samples)")
    for p in results.get("paired", []):
        lines.append(f"{p['first']} -> {p['second']} ({p['metric']} inputs, {p['num_tasks']} tasks): pass@1 "
                     f"{100 * p['difference']:+.1f} points [{100 * p['ci_low']:+.1f}, {100 * p['ci_high']:+.1f}], "
                     f"discordant {p['first_only']}/{p['second_only']}, McNemar exact p {p['mcnemar_p']:.3g}")
    timing = results["timing"]
    if "total_s" in timing:
        lines.append(f"sandbox scoring {timing['sandbox_s']:.2f} s, total {timing['total_s']:.1f} s; wrote {out_dir}/")
    else:
        lines.append(f"wrote {out_dir}/")
    return lines
