"""Reading a run's log and the numbers the report shows (no plotting, no torch)."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prompts.roles import ROLE_NAMES, ROLES

STATE_FILE = "trainer_state.json"
RUN_INFO_FILE = "run_info.json"
REPORT_FILE = "report.md"
SUMMARY_FILE = "summary.json"
DEFAULT_OUT = "report"
PLOT_FILES = ("generator.png", "discriminator.png", "stability.png", "timing.png", "invalid_reasons.png",
              "eval_bench.png")

_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")
_REWARD_PART = re.compile(r"^rewards/([^/]+)/mean$")
_REASON = re.compile(r"^invalid_reasons/([^/]+)$")
_STAGE_REASON = re.compile(r"^invalid_reasons/stage(\d+)/([^/]+)$")
_EVAL = re.compile(r"^eval_bench/([^/]+)/([^/]+)$")
_SOLVED = re.compile(r"^generator/groups/solved_(\d+)$")
_EVAL_SKIPPED = frozenset({"mean_tokens", "generation_s"})  # not rates; in summary.json only
_EVAL_ORDER = ("pass@1", "syntax_valid", "collapse_rate", "test_pass_rate")  # BenchmarkCallback's order

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
    if (path / STATE_FILE).is_file():  # a checkpoint, final/ or best_reward/ folder
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
