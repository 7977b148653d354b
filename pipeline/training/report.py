"""A training run's report, readable at a glance: PNG plots and ``report.md`` from its ``trainer_state.json``.

    python -m pipeline.training.report outputs/smoke            # -> outputs/smoke/report/
    python -m pipeline.training.report outputs/smoke/checkpoint-2/trainer_state.json --out /tmp/r

It reads the newest ``trainer_state.json`` of a run folder (``final/`` if present, else the highest
``checkpoint-N``; a checkpoint newer than ``final/`` wins), or the file given, and writes into the output
folder:

* ``generator.png`` / ``discriminator.png``: per role, the reward and its parts (``rewards/<fn>/mean``)
  and the role's rates (pass rates on own and on valid discriminator tests, syntax validity, collapse;
  validity, bug-catch and mutant-kill rates) over the steps of that role's phases;
* ``stability.png``: ``frac_reward_zero_std`` (groups with no learning signal) and the collapse rate;
* ``timing.png``: the step time and its stacked shares (generation, rewards, sandbox, optimisation);
* ``invalid_reasons.png`` (if logged): why discriminator tests were invalid, over steps and per chain stage;
* ``eval_bench.png`` (if logged): the benchmark evaluations during training;
* ``report.md``: tables of every number (first-quarter, last-quarter and overall means per role metric,
  prompt groups by passing samples, step time and shares, invalid reasons, evaluations) with the plots; ``summary.json``: the same numbers.

A metric the run never logged (e.g. ``discriminator/mutant_kill_rate`` without the mutation reward) is
left out of tables and plots, never drawn as zeros; a metric missing at some steps is drawn at the steps
it has. Generator metrics are taken over generator-phase steps (``phase/role`` 1), discriminator
metrics over discriminator-phase steps (0); unified steps (2), and steps of logs without ``phase/role``,
count for both. Plots use matplotlib's Agg canvas: no display needed. Standard library and matplotlib
only, so it runs without torch.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

STATE_FILE = "trainer_state.json"
RUN_INFO_FILE = "run_info.json"
REPORT_FILE = "report.md"
SUMMARY_FILE = "summary.json"
DEFAULT_OUT = "report"
# phase/role as DuelGRPOTrainer logs it (pipeline.training.trainer.ROLE_CODES, inverted; a test keeps them equal).
ROLE_NAMES = {0: "discriminator", 1: "generator", 2: "unified"}
ROLES = ("generator", "discriminator")
PLOT_FILES = ("generator.png", "discriminator.png", "stability.png", "timing.png", "invalid_reasons.png",
              "eval_bench.png")

_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")
_REWARD_PART = re.compile(r"^rewards/([^/]+)/mean$")
_REASON = re.compile(r"^invalid_reasons/([^/]+)$")
_STAGE_REASON = re.compile(r"^invalid_reasons/stage(\d+)/([^/]+)$")
_EVAL = re.compile(r"^eval_bench/([^/]+)/([^/]+)$")
_SOLVED = re.compile(r"^generator/groups/solved_(\d+)$")
_EVAL_SKIPPED = frozenset({"mean_tokens", "generation_s"})  # not rates; in summary.json only
_EVAL_ORDER = ("pass@1", "syntax_valid", "mode_collapse_rate", "test_pass_rate")  # BenchmarkCallback's order

# The rates of each role, in the order shown, with what they mean (rewards/README.md).
ROLE_RATES: dict[str, dict[str, str]] = {
    "generator": {
        "generator/pass_rate": "pass rate on the problem's own tests + valid discriminator tests",
        "generator/pass_rate_own": "pass rate on the problem's own tests",
        "generator/pass_rate_generated": "pass rate on valid discriminator tests",
        "generator/syntax_valid": "share of final code that parses",
        "generator/collapse_rate": "share of samples with a collapsed stage",
        "generator/groups/mixed": "share of prompt groups whose own-test pass rates differ",
        "generator/format": "format reward",
    },
    "discriminator": {
        "discriminator/validity": "share of its tests that are valid",
        "discriminator/bug_catch_rate": "share of valid tests the generator's code fails",
        "discriminator/mutant_kill_rate": "share of killable mutants of the reference killed",
        "discriminator/invalid_pct": "share of its tests that are invalid",
        "discriminator/tests_per_sample": "tests written per sample",
    },
}
REWARD_DOC = "total reward (weighted sum of the reward functions)"
ZERO_STD = "frac_reward_zero_std"
ZERO_STD_DOC = "share of prompt groups whose rewards are all equal (no learning signal)"
COLLAPSE = "generator/collapse_rate"
TIMING_PARTS = ("generation", "rewards", "sandbox", "optimisation")


class ReportError(ValueError):
    """The input cannot be reported on (missing, not a trainer state, no training steps): a one-line message."""


# ---------------------------------------------------------------------------------------------- reading


def find_state(path: str | Path) -> Path:
    """The trainer_state.json that ``path`` names: the file itself, or the newest one of a run folder."""
    path = Path(path)
    if not path.exists():
        raise ReportError(f"{path}: no such file or folder")
    if path.is_file():
        return path
    if (path / STATE_FILE).is_file():  # a checkpoint, final/ or best/ folder
        return path / STATE_FILE
    steps = {int(m.group(1)): p for p in path.iterdir()
             if p.is_dir() and (m := _CHECKPOINT.match(p.name)) and (p / STATE_FILE).is_file()}
    final = path / "final" / STATE_FILE
    newest = path / f"checkpoint-{max(steps)}" / STATE_FILE if steps else None
    if final.is_file():
        if newest is not None and max(steps) > _global_step(final):
            return newest  # a run resumed after its final/ was written and not finished since
        return final
    if newest is not None:
        return newest
    raise ReportError(f"{path}: no {STATE_FILE} in it, in final/ or in any checkpoint-N/")


def _global_step(state_file: Path) -> int:
    try:
        return int(json.loads(state_file.read_text(encoding="utf-8")).get("global_step") or 0)
    except (OSError, ValueError, AttributeError, TypeError):
        return -1


def _number(value: Any) -> float | None:
    """A finite logged number, or None (absent, None, NaN, text)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


@dataclass
class TrainingLog:
    """One run's log: its training steps (log lines with a ``loss``) and every log line with a benchmark."""

    source: Path
    state: dict[str, Any]
    steps: list[dict[str, Any]]
    evals: list[dict[str, Any]]
    run_info: dict[str, Any] = field(default_factory=dict)

    def role_of(self, entry: Mapping[str, Any]) -> str | None:
        code = _number(entry.get("phase/role"))
        return None if code is None else ROLE_NAMES.get(int(code), f"role {int(code)}")

    def role_steps(self, role: str) -> list[dict[str, Any]]:
        """Steps whose metrics count for ``role``: its phases, unified ones and those without a role."""
        return [e for e in self.steps if self.role_of(e) in (role, "unified", None)]

    @property
    def has_roles(self) -> bool:
        return any(self.role_of(e) is not None for e in self.steps)


def load_log(path: str | Path) -> TrainingLog:
    """Read a run folder or a trainer_state.json; ReportError if it is not one or holds no training step."""
    source = find_state(path)
    try:
        state = json.loads(source.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise ReportError(f"{source}: not a {STATE_FILE} (not text)") from None
    except json.JSONDecodeError as err:
        raise ReportError(f"{source}: not a {STATE_FILE} (not JSON: {err.msg} at line {err.lineno})") from None
    except OSError as err:
        raise ReportError(f"{source}: cannot be read ({err.strerror or err})") from None
    history = state.get("log_history") if isinstance(state, dict) else None
    if not isinstance(history, list):
        raise ReportError(f"{source}: not a {STATE_FILE} (no log_history list)")
    entries = [e for e in history if isinstance(e, dict)]
    by_step: dict[float, dict[str, Any]] = {}
    for entry in entries:  # a training log line has the step's loss; the end-of-training summary has train_loss
        if "loss" in entry and _number(entry.get("step")) is not None:
            by_step[float(entry["step"])] = entry  # the last line of a step wins
    steps = [by_step[s] for s in sorted(by_step)]
    if not steps:
        raise ReportError(f"{source}: the log has no training steps (no log_history entry with a loss)")
    evals = [e for e in entries if any(_EVAL.match(k) for k in e) and _number(e.get("step")) is not None]
    run_info: dict[str, Any] = {}
    for folder in (source.parent, source.parent.parent):
        candidate = folder / RUN_INFO_FILE
        if candidate.is_file():
            try:
                loaded = json.loads(candidate.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            if isinstance(loaded, dict):
                run_info = loaded
                break
    return TrainingLog(source=source, state=state, steps=steps, evals=evals, run_info=run_info)


# ---------------------------------------------------------------------------------------------- numbers

Series = list[tuple[float, float]]  # (step, value) where the metric was logged


def series(entries: Sequence[Mapping[str, Any]], key: str) -> Series:
    return [(float(e["step"]), v) for e in entries if (v := _number(e.get(key))) is not None]


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values)


def quarter_stats(values: Sequence[float]) -> dict[str, float]:
    """Means of the first and last quarter (``max(1, n // 4)`` values each, with their min and max) and of all."""
    n = len(values)
    q = max(1, n // 4)
    first, last = list(values[:q]), list(values[-q:])
    return {"n": n, "quarter": q,
            "first_mean": _mean(first), "first_min": min(first), "first_max": max(first),
            "last_mean": _mean(last), "last_min": min(last), "last_max": max(last),
            "mean": _mean(values)}


def role_metric_keys(log: TrainingLog, role: str) -> list[str]:
    """What the role's table and plot show, in order; only metrics with a value at one of its steps."""
    entries = log.role_steps(role)
    parts = sorted({k for e in entries for k in e if _REWARD_PART.match(k) and _number(e[k]) is not None})
    keys = ["reward", *parts, *ROLE_RATES[role], ZERO_STD]
    return [k for k in keys if series(entries, k)]


def describe(key: str) -> str:
    if key == "reward":
        return REWARD_DOC
    if key == ZERO_STD:
        return ZERO_STD_DOC
    if match := _REWARD_PART.match(key):
        return f"reward function `{match.group(1)}` (mean)"
    for docs in ROLE_RATES.values():
        if key in docs:
            return docs[key]
    return ""


def timing_summary(steps: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, float]]:
    """Mean seconds per logged step of each part and its share of the mean step time."""
    out: dict[str, dict[str, float]] = {}
    step_s = [v for _, v in series(steps, "timing/step_s")]
    if step_s:
        out["step"] = {"mean_s": _mean(step_s), "share": 1.0}
    for part in TIMING_PARTS:
        seconds = [v for _, v in series(steps, f"timing/{part}_s")]
        shares = [v for _, v in series(steps, f"timing/{part}_share")]
        if seconds and step_s:
            out[part] = {"mean_s": _mean(seconds), "share": _mean(seconds) / out["step"]["mean_s"]}
        elif shares:
            out[part] = {"share": _mean(shares)}
    return out


def invalid_reasons(steps: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Counts of invalid discriminator tests per reason: totals, per step, and per chain stage if logged."""
    totals: dict[str, float] = {}
    by_stage: dict[int, dict[str, float]] = {}
    for entry in steps:
        for key, raw in entry.items():
            value = _number(raw)
            if value is None:
                continue
            if match := _REASON.match(key):
                totals[match.group(1)] = totals.get(match.group(1), 0.0) + value
            elif match := _STAGE_REASON.match(key):
                stage = by_stage.setdefault(int(match.group(1)), {})
                stage[match.group(2)] = stage.get(match.group(2), 0.0) + value
    return {"totals": dict(sorted(totals.items(), key=lambda kv: (-kv[1], kv[0]))),
            "by_stage": {k: dict(sorted(v.items())) for k, v in sorted(by_stage.items())}}


def eval_keys(evals: Sequence[Mapping[str, Any]], rates_only: bool = True) -> list[str]:
    """The ``eval_bench/<mode>/<name>`` keys logged, by mode, pass@1 first."""
    found = {k for e in evals for k in e if (m := _EVAL.match(k)) and _number(e[k]) is not None
             and not (rates_only and m.group(2) in _EVAL_SKIPPED)}

    def order(key: str) -> tuple[str, int, str]:
        mode, name = _EVAL.match(key).groups()  # type: ignore[union-attr]
        return mode, _EVAL_ORDER.index(name) if name in _EVAL_ORDER else len(_EVAL_ORDER), name

    return sorted(found, key=order)


def group_pass_counts(steps: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    """Prompt groups over the run by how many of their samples passed every own test (``generator/groups/
    solved_<k>`` summed over steps), keyed by k."""
    totals: dict[int, float] = {}
    for entry in steps:
        for key, value in entry.items():
            if (m := _SOLVED.match(key)) and (number := _number(value)) is not None:
                totals[int(m.group(1))] = totals.get(int(m.group(1)), 0.0) + number
    return {str(k): totals[k] for k in sorted(totals)}


def summarise(log: TrainingLog) -> dict[str, Any]:
    """Every number of the report (summary.json)."""
    roles: dict[str, Any] = {}
    for role in ROLES:
        entries = log.role_steps(role)
        keys = role_metric_keys(log, role)
        # A role is reported if it had phases, or (a log without phase/role) logged metrics of its own.
        if keys and (any(log.role_of(e) in (role, "unified") for e in entries) or set(keys) & set(ROLE_RATES[role])):
            roles[role] = {"steps": len(entries),
                           "metrics": {k: quarter_stats([v for _, v in series(entries, k)]) for k in keys}}
    zero_std = [v for _, v in series(log.steps, ZERO_STD)]
    collapse = [v for _, v in series(log.steps, COLLAPSE)]
    return {
        "source": str(log.source),
        "global_step": log.state.get("global_step"),
        "max_steps": log.state.get("max_steps"),
        "training_steps": len(log.steps),
        "steps_per_role": _role_counts(log),
        "frac_reward_zero_std_mean": _mean(zero_std) if zero_std else None,
        "collapse_rate_mean": _mean(collapse) if collapse else None,
        "roles": roles,
        "timing": timing_summary(log.steps),
        "invalid_reasons": invalid_reasons(log.steps),
        "group_pass_counts": group_pass_counts(log.role_steps("generator")),
        "eval_bench": [{"step": e["step"], **{k: e[k] for k in eval_keys([e], rates_only=False)}} for e in log.evals],
    }


def _role_counts(log: TrainingLog) -> dict[str, int]:
    counts: dict[str, int] = {}
    for entry in log.steps:
        name = log.role_of(entry) or "without phase/role"
        counts[name] = counts.get(name, 0) + 1
    return counts


# ---------------------------------------------------------------------------------------------- plots


def _figure(ncols: int, title: str | None) -> tuple[Figure, list[Any]]:
    figure = Figure(figsize=(6.0 * ncols, 4.0), dpi=100)
    FigureCanvasAgg(figure)
    axes = [figure.add_subplot(1, ncols, i + 1) for i in range(ncols)]
    for ax in axes:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if title:
        figure.suptitle(title)
    return figure, axes


def _stage_marks(axes: Any, log: TrainingLog) -> None:
    """Dotted vertical lines where the curriculum stage changes."""
    previous = None
    for entry in log.steps:
        stage = _number(entry.get("phase/train_stage"))
        if stage is not None and previous is not None and stage != previous:
            axes.axvline(float(entry["step"]) - 0.5, color="grey", linestyle=":", linewidth=1)
            axes.text(float(entry["step"]) - 0.5, 1.0, f" stage {int(stage)}", transform=axes.get_xaxis_transform(),
                      fontsize=7, color="grey", va="top")
        if stage is not None:
            previous = stage


def _lines(axes: Any, entries: Sequence[Mapping[str, Any]], keys: Sequence[str], title: str, ylabel: str,
           missing: float | None = None) -> list[str]:
    """One line per key over the entries that logged it (``missing``: the value of the others instead)."""
    drawn = []
    for key in keys:
        if missing is None:
            points = series(entries, key)
        else:
            points = [(float(e["step"]), v if (v := _number(e.get(key))) is not None else missing) for e in entries]
        if points:
            xs, ys = zip(*points)
            style = ({"color": "black", "linewidth": 2.4, "alpha": 0.6, "zorder": 1} if key == "reward"
                     else {"linewidth": 1.2, "zorder": 2})
            axes.plot(xs, ys, marker="o", markersize=3, label=key, **style)
            drawn.append(key)
    axes.set_title(title, fontsize=10)
    axes.set_xlabel("step")
    axes.set_ylabel(ylabel)
    axes.grid(alpha=0.3)
    if drawn:
        axes.legend(fontsize=7, loc="best")
    return drawn


def _save(figure: Figure, path: Path) -> None:
    figure.tight_layout()
    figure.savefig(path, format="png")


def plot_role(path: Path, log: TrainingLog, role: str) -> list[str]:
    entries, keys = log.role_steps(role), role_metric_keys(log, role)
    rewards = [k for k in keys if k == "reward" or _REWARD_PART.match(k)]
    rates = [k for k in keys if k in ROLE_RATES[role] and k != "discriminator/tests_per_sample"]
    figure, (left, right) = _figure(2, f"{role}: {len(entries)} steps")
    drawn = _lines(left, entries, rewards, "reward and its parts", "reward")
    drawn += _lines(right, entries, rates, "rates", "share")
    if all(0.0 <= v <= 1.0 for k in rates for _, v in series(entries, k)):
        right.set_ylim(-0.05, 1.05)
    for axes in (left, right):
        _stage_marks(axes, log)
    _save(figure, path)
    return drawn


def plot_stability(path: Path, log: TrainingLog) -> list[str]:
    figure, (axes,) = _figure(1, None)
    drawn = []
    for role, marker in (("discriminator", "s"), ("generator", "o"), ("unified", "D"), (None, "o")):
        points = series([e for e in log.steps if log.role_of(e) == role], ZERO_STD)
        if points:
            xs, ys = zip(*points)
            label = f"{ZERO_STD} ({role or 'unlabelled'} steps)" if log.has_roles else ZERO_STD
            axes.plot(xs, ys, marker=marker, linestyle="none", markersize=5, label=label)
            drawn.append(label)
    drawn += [k for k in _lines(axes, log.steps, [COLLAPSE], "learning signal and collapse", "share")]
    axes.set_ylim(-0.05, 1.05)
    axes.legend(fontsize=7, loc="best")
    _stage_marks(axes, log)
    _save(figure, path)
    return drawn


def plot_timing(path: Path, log: TrainingLog) -> list[str]:
    steps = [e for e in log.steps if _number(e.get("timing/step_s")) is not None]
    figure, (left, right) = _figure(2, "step time")
    drawn = _lines(left, steps, ["timing/step_s"], "seconds per step", "seconds")
    xs = [float(e["step"]) for e in steps]

    def share(entry: Mapping[str, Any], part: str) -> float:
        return _number(entry.get(f"timing/{part}_share")) or 0.0

    layers: dict[str, list[float]] = {}
    has = {p: any(_number(e.get(f"timing/{p}_share")) is not None for e in steps) for p in TIMING_PARTS}
    if has["generation"]:
        layers["generation"] = [share(e, "generation") for e in steps]
    if has["rewards"]:  # rewards includes the sandbox: drawn without it when the sandbox has its own layer
        layers["rewards (without sandbox)" if has["sandbox"] else "rewards"] = [
            max(0.0, share(e, "rewards") - (share(e, "sandbox") if has["sandbox"] else 0.0)) for e in steps]
    if has["sandbox"]:
        layers["sandbox"] = [share(e, "sandbox") for e in steps]
    if has["optimisation"]:
        layers["optimisation"] = [share(e, "optimisation") for e in steps]
    if layers and xs:
        if len(xs) == 1:  # a stack plot needs two points: a bar
            bottom = 0.0
            for name, values in layers.items():
                right.bar(xs, values, bottom=bottom, label=name)
                bottom += values[0]
        else:
            right.stackplot(xs, *layers.values(), labels=list(layers))
        right.legend(fontsize=7, loc="lower right")
        drawn += [f"share: {name}" for name in layers]
    right.set_title("share of the step", fontsize=10)
    right.set_xlabel("step")
    right.set_ylim(0, 1)
    _save(figure, path)
    return drawn


def plot_invalid_reasons(path: Path, log: TrainingLog, reasons: Mapping[str, Any]) -> list[str]:
    by_stage = reasons["by_stage"]
    figure, axes = _figure(2 if by_stage else 1, "why discriminator tests were invalid")
    keys = [f"invalid_reasons/{r}" for r in reasons["totals"]]
    # Only reasons with a count are logged: at a discriminator step, a reason not logged counted 0.
    drawn = _lines(axes[0], log.role_steps("discriminator"), keys, "invalid tests per logged discriminator step",
                   "tests", missing=0.0)
    axes[0].set_ylim(bottom=0)
    _stage_marks(axes[0], log)
    if by_stage:
        stages = list(by_stage)
        names = sorted({r for counts in by_stage.values() for r in counts})
        width = 0.8 / len(names)
        for i, name in enumerate(names):
            positions = [s + i * width - 0.4 + width / 2 for s in range(len(stages))]
            axes[1].bar(positions, [by_stage[k].get(name, 0.0) for k in stages], width, label=name)
            drawn.append(f"stage bars: {name}")
        axes[1].set_xticks(range(len(stages)), [f"stage {k}" for k in stages])
        axes[1].set_title("total per chain stage the test was written after", fontsize=10)
        axes[1].set_ylabel("tests")
        axes[1].legend(fontsize=7, loc="best")
    _save(figure, path)
    return drawn


def plot_eval_bench(path: Path, log: TrainingLog) -> list[str]:
    keys = eval_keys(log.evals)
    modes = sorted({_EVAL.match(k).group(1) for k in keys})  # type: ignore[union-attr]
    figure, axes = _figure(len(modes), "benchmark during training" if len(modes) > 1 else None)
    drawn = []
    for mode, ax in zip(modes, axes):
        drawn += _lines(ax, log.evals, [k for k in keys if k.startswith(f"eval_bench/{mode}/")],
                        f"benchmark during training: {mode}", "share")
        ax.set_ylim(-0.05, 1.05)
    _save(figure, path)
    return drawn


def write_plots(out_dir: Path, log: TrainingLog, summary: Mapping[str, Any]) -> dict[str, list[str]]:
    """The PNGs that have something to show; returns {file name: series drawn}. Stale ones are removed."""
    plots: dict[str, list[str]] = {}
    for role in ROLES:
        if role in summary["roles"]:
            plots[f"{role}.png"] = plot_role(out_dir / f"{role}.png", log, role)
    if series(log.steps, ZERO_STD) or series(log.steps, COLLAPSE):
        plots["stability.png"] = plot_stability(out_dir / "stability.png", log)
    if summary["timing"]:
        plots["timing.png"] = plot_timing(out_dir / "timing.png", log)
    if summary["invalid_reasons"]["totals"] or summary["invalid_reasons"]["by_stage"]:
        plots["invalid_reasons.png"] = plot_invalid_reasons(out_dir / "invalid_reasons.png", log,
                                                            summary["invalid_reasons"])
    if eval_keys(log.evals):
        plots["eval_bench.png"] = plot_eval_bench(out_dir / "eval_bench.png", log)
    for name in PLOT_FILES:
        if name not in plots:
            (out_dir / name).unlink(missing_ok=True)
    return plots


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
    for key in ("base_model", "mode", "curriculum", "stages"):
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
