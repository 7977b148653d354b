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

from pipeline.training.report.log import (
    DEFAULT_OUT, PLOT_FILES, REPORT_FILE, STATE_FILE, SUMMARY_FILE, ReportError, TrainingLog, find_state, load_log,
    summarise,
)  # fmt: skip
from pipeline.training.report.markdown import main, render_report, write_report
from pipeline.training.report.plots import write_plots

__all__ = [
    "DEFAULT_OUT", "PLOT_FILES", "REPORT_FILE", "STATE_FILE", "SUMMARY_FILE", "ReportError", "TrainingLog",
    "find_state", "load_log", "main", "render_report", "summarise", "write_plots", "write_report",
]
