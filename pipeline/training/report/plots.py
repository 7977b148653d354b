"""The report's PNG plots (matplotlib's Agg canvas: no display needed)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from prompts.roles import ROLES

from pipeline.training.report.log import (
    _EVAL, _REWARD_PART, COLLAPSE, PLOT_FILES, ROLE_RATES, TIMING_PARTS, ZERO_STD, TrainingLog, _number, eval_keys,
    role_metric_keys, series,
)  # fmt: skip



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
