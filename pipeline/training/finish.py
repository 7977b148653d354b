"""The end of a training run (RL and the warm start): ``final/`` (the adapters to evaluate, push or start from),
and the one push.

After a collapse the collapse guard names the last checkpoint saved before it: ``final/`` gets that
checkpoint's adapters and the collapsed ones go to ``collapsed/`` for inspection; a collapse before any
checkpoint leaves no ``final/`` and is a failed run. ``final/`` always carries the run's records and its
trainer state, so ``--push_to_hub`` pushes one folder once (the Trainer's per-checkpoint pushes are off).
"""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from prompts.roles import ROLES
from pipeline.models.policies import Policies
from pipeline.training.hub import PushError, push_folder
from pipeline.training.records import write_run_files
from pipeline.training.guard import CollapseGuard

FINAL_DIR = "final"
COLLAPSED_DIR = "collapsed"


TRAINER_STATE_FILE = "trainer_state.json"


def finish_run(output_dir: Path, policies: Policies, trainer: Any, guard: CollapseGuard, *,
               recipe: dict[str, Any] | None, info: dict[str, Any] | None = None,
               records: Mapping[str, dict[str, Any]] | None = None, push_repo: str | None = None,
               is_main_process: bool, announce: bool = True,
               collapse_error: type[Exception] | None = None) -> int:
    """Write ``final/`` (and ``collapsed/``), push it when asked; the process exit code (0, or 1 on a collapse before
    any checkpoint or a failed push).

    ``final/`` gets the adapters, ``recipe.yaml`` and ``run_info.json`` (``recipe`` and ``info``, when given),
    each of ``records`` as a JSON file of that name, and the trainer state; ``info`` and ``records`` get where the
    adapters came from (``adapters_from``). ``announce``: print where the adapters are (the warm start's caller
    prints its own line). ``collapse_error``: raise it, instead of returning 1, on a collapse before any checkpoint.
    """
    final = output_dir / FINAL_DIR
    good = guard.last_good_checkpoint() if guard.stopped else None
    if guard.stopped and is_main_process:
        policies.save(output_dir / COLLAPSED_DIR)  # kept for inspection, never used
    if guard.stopped and good is None:
        message = (f"training collapsed ({guard.config.metric} >= {guard.config.threshold} from step "
                   f"{guard.streak_start}) before any checkpoint was saved; the collapsed adapters are in "
                   f"{output_dir / COLLAPSED_DIR}")
        if collapse_error is not None:
            raise collapse_error(f"{message}. Lower the learning rate or save more often.")
        print(message, file=sys.stderr)
        return 1
    if not is_main_process:
        return 0
    # written beside final/ and renamed into place when whole: a run killed while saving leaves no final/ that a
    # resume or scripts/learning_experiment.py would take for finished
    partial = output_dir / f".{FINAL_DIR}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    adapters_from = good or "trained"
    if good is not None:
        for role in ROLES:
            if (Path(good) / role).is_dir():
                shutil.copytree(Path(good) / role, partial / role)
        if announce:
            print(f"training collapsed at step {guard.streak_start}; final/ holds the adapters of {good}")
    else:
        policies.save(partial)
    if recipe is not None:
        write_run_files(partial, recipe, None if info is None else {**info, "adapters_from": adapters_from})
    for name, record in (records or {}).items():
        (partial / name).write_text(json.dumps({**record, "adapters_from": adapters_from}, indent=2) + "\n")
    trainer.state.save_to_json(str(partial / TRAINER_STATE_FILE))  # the whole log history, evaluations included
    shutil.rmtree(final, ignore_errors=True)
    partial.rename(final)
    if announce:
        print("adapters saved: " + " and ".join(str(final / role) for role in ROLES if (final / role).is_dir()))
    if push_repo:
        try:
            commit = push_folder(final, push_repo)
        except PushError as err:
            print(f"push error: {err}", file=sys.stderr)
            return 1
        print(f"pushed to https://huggingface.co/{push_repo} ({getattr(commit, 'commit_url', commit)})")
    return 0
