"""Several evaluations side by side: one report from the results.json of each.

The held-out story of a training run is a handful of evaluations of the same benchmark in the same
mode (the base model, after the warm start or bootstrap, after RL, each with its own adapters). Each
is its own ``evaluate.py`` run, in its own process, so that no adapter's state leaks into another;
this merges their ``results.json`` into one ``results.json`` whose runs are labelled by input, and
the usual report renders it: every table gets a row per input, every plot a bar per input.

With one greedy sample per task, every pair of runs is also compared task by task
(``pipeline/evaluation/paired.py``: paired difference in pass@1, Newcombe's 95 % interval, exact
McNemar p), on the base inputs and, for HumanEval+ / MBPP+, on the plus inputs. Runs that do not
hold the same tasks are refused; runs sampled several times per task get no paired statistics, and
the merged results say why (``paired_skipped``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pipeline.evaluation.paired import PairingError, has_plus_verdicts, paired_statistics
from pipeline.evaluation.report import RESULTS_FILE

# What must agree between the inputs for their numbers to be comparable.
MUST_AGREE = ("benchmark", "mode", "num_tasks", "greedy")
MUST_AGREE_CONFIG = ("num_samples", "temperature", "best_of", "limit")


class CompareError(ValueError):
    """Inputs that cannot be put side by side (missing, unreadable, or evaluated differently)."""


def read_results(path: str | Path) -> dict[str, Any]:
    """An evaluation's results.json, from its folder or the file itself."""
    path = Path(path)
    file = path / RESULTS_FILE if path.is_dir() else path
    if not file.is_file():
        raise CompareError(f"--compare: no {RESULTS_FILE} at {path}")
    try:
        results = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise CompareError(f"--compare: {file} is not readable JSON ({err})") from None
    if not isinstance(results, dict) or not isinstance(results.get("runs"), dict) or not results["runs"]:
        raise CompareError(f"--compare: {file} is not an evaluate.py results.json (no runs)")
    return results


def merge_results(inputs: Sequence[dict[str, Any]], labels: Sequence[str], sources: Sequence[str]) -> dict[str, Any]:
    """One results dict whose runs are every input's runs, named ``label`` (an input with one run)
    or ``label/run`` (several, e.g. adapter and base). Raises CompareError when the inputs were
    evaluated on different benchmarks, modes, task counts or sampling settings."""
    if len(inputs) < 2:
        raise CompareError("--compare needs at least two evaluations")
    if len(labels) != len(inputs):
        raise CompareError(f"--labels: {len(labels)} label(s) for {len(inputs)} evaluation(s)")
    if len(set(labels)) != len(labels):
        raise CompareError(f"--labels must differ from each other, got {list(labels)}")
    first = inputs[0]
    for label, results in zip(labels[1:], inputs[1:]):
        for key in MUST_AGREE:
            if results.get(key) != first.get(key):
                raise CompareError(f"--compare: {label!r} has {key} {results.get(key)!r}, "
                                   f"{labels[0]!r} has {first.get(key)!r}")
        for key in MUST_AGREE_CONFIG:
            mine, theirs = results.get("config", {}).get(key), first.get("config", {}).get(key)
            if mine != theirs:
                raise CompareError(f"--compare: {label!r} was evaluated with {key} {mine!r}, "
                                   f"{labels[0]!r} with {theirs!r}")
    runs: dict[str, Any] = {}
    for label, results in zip(labels, inputs):
        for name, summary in results["runs"].items():
            runs[label if len(results["runs"]) == 1 else f"{label}/{name}"] = summary
    paired: dict[str, Any] = {}
    one_sample = all(s.get("samples_per_task") == 1 and s.get("num_samples") == s.get("num_tasks")
                     for s in runs.values())
    if not one_sample:
        paired["paired_skipped"] = "paired statistics need one sample per task (greedy pass@1)"
    else:
        try:
            paired["paired"] = paired_statistics(runs, list(runs))
        except PairingError as err:
            raise CompareError(f"--compare: {err}") from None
        old = [name for name, s in runs.items() if "evalplus" in s and not has_plus_verdicts(s)]
        if old:
            paired["paired_skipped"] = (f"plus inputs not paired: {', '.join(old)} predate per-task plus verdicts "
                                        "(num_correct_plus); evaluate again to pair them")
    return {
        **{key: first.get(key) for key in ("benchmark", "mode", "num_tasks", "greedy", "stage_names")},
        "model": first.get("model"),
        "adapter": None,
        "config": first.get("config", {}),
        "compared": [
            {"label": label, "source": source, "model": r.get("model"), "adapter": r.get("adapter"),
             "total_s": r.get("timing", {}).get("total_s")}
            for label, source, r in zip(labels, sources, inputs)
        ],
        "sandbox": first.get("sandbox", {}),
        "timing": {},
        **paired,
        "runs": runs,
    }


def default_labels(sources: Sequence[str]) -> list[str]:
    """Each input's folder name, made unique with its position when two share a name."""
    names = [Path(s).name if Path(s).is_dir() else Path(s).parent.name for s in sources]
    return [n if names.count(n) == 1 else f"{i + 1}:{n}" for i, n in enumerate(names)]
