"""The end of an RL run: ``final/`` (the adapters to evaluate, push or start from), and the one push.

After a collapse the collapse guard names the last checkpoint saved before it: ``final/`` gets that
checkpoint's adapters and the collapsed ones go to ``collapsed/`` for inspection; a collapse before any
checkpoint leaves no ``final/`` and is a failed run. ``final/`` always carries the run's records and its
trainer state, so ``--push_to_hub`` pushes one folder once (the Trainer's per-checkpoint pushes are off).
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Any

from prompts.roles import ROLES
from pipeline.models.policies import Policies
from pipeline.training.hub import PushError, push_folder
from pipeline.training.records import write_run_files
from pipeline.evaluation.guard import CollapseGuard

FINAL_DIR = "final"
COLLAPSED_DIR = "collapsed"


def finish_run(output_dir: Path, policies: Policies, trainer: Any, guard: CollapseGuard, *, recipe: dict[str, Any],
               info: dict[str, Any], push_repo: str | None, is_main_process: bool) -> int:
    """Write ``final/`` (and ``collapsed/``), push it when asked; the process exit code (0, or 1 on a collapse before
    any checkpoint or a failed push)."""
    final = output_dir / FINAL_DIR
    good = guard.last_good_checkpoint() if guard.stopped else None
    if guard.stopped and is_main_process:
        policies.save(output_dir / COLLAPSED_DIR)  # kept for inspection, never used
    if guard.stopped and good is None:
        print(f"training collapsed ({guard.config.metric} >= {guard.config.threshold} from step {guard.streak_start}) "
              f"before any checkpoint was saved; the collapsed adapters are in {output_dir / COLLAPSED_DIR}",
              file=sys.stderr)
        return 1
    if not is_main_process:
        return 0
    shutil.rmtree(final, ignore_errors=True)
    if good is not None:
        for role in ROLES:
            if (Path(good) / role).is_dir():
                shutil.copytree(Path(good) / role, final / role)
        print(f"training collapsed at step {guard.streak_start}; final/ holds the adapters of {good}")
    else:
        policies.save(final)
    write_run_files(final, recipe, {**info, "adapters_from": good or "trained"})
    trainer.state.save_to_json(str(final / "trainer_state.json"))
    print("adapters saved: " + " and ".join(str(final / role) for role in ROLES if (final / role).is_dir()))
    if push_repo:
        try:
            commit = push_folder(final, push_repo)
        except PushError as err:
            print(f"push error: {err}", file=sys.stderr)
            return 1
        print(f"pushed to https://huggingface.co/{push_repo} ({getattr(commit, 'commit_url', commit)})")
    return 0
