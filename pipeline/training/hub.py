"""Push adapters to the Hugging Face Hub: ``generator/``, ``discriminator/``, the recipe and a model card.

Only the files a user needs are sent (never optimizer states, RNG states or the replay buffer):
they are copied into a staging folder, and that folder is uploaded in one commit.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from prompts.roles import ROLES
from pipeline.models.adapters import ADAPTER_CONFIG
from pipeline.training.card import render_model_card
from pipeline.training.checkpoints import RECIPE_FILE

ADAPTER_FILES = (ADAPTER_CONFIG, "adapter_model.safetensors")
CARD_FILE = "README.md"


class PushError(RuntimeError):
    """The folder cannot be pushed as it is, or the Hub refused it; the message says why."""


def stage_for_hub(source: str | os.PathLike[str], staging: str | os.PathLike[str], repo_id: str) -> list[str]:
    """Copy what gets pushed from ``source`` into ``staging``; return the staged paths (sorted)."""
    source, staging = Path(source), Path(staging)
    if not source.is_dir():
        raise PushError(f"{source} is not a folder")
    roles = [role for role in ROLES if (source / role / ADAPTER_CONFIG).is_file()]
    if not roles:
        raise PushError(f"{source} holds no adapter (expected generator/{ADAPTER_CONFIG} and/or "
                        f"discriminator/{ADAPTER_CONFIG}): not a checkpoint or adapter folder of train.py")
    for role in roles:
        (staging / role).mkdir(parents=True, exist_ok=True)
        for name in ADAPTER_FILES:
            if not (source / role / name).is_file():
                raise PushError(f"{source / role} lacks {name}")
            shutil.copy2(source / role / name, staging / role / name)
    if not (source / RECIPE_FILE).is_file():
        raise PushError(f"{source} has no {RECIPE_FILE}: push a folder written by train.py (checkpoint, best_reward/ or final/)")
    shutil.copy2(source / RECIPE_FILE, staging / RECIPE_FILE)
    (staging / CARD_FILE).write_text(render_model_card(source, repo_id))
    return sorted(str(p.relative_to(staging)) for p in staging.rglob("*") if p.is_file())


def push_folder(source: str | os.PathLike[str], repo_id: str, *, private: bool = False,
                commit_message: str | None = None, api: Any = None) -> Any:
    """Create ``repo_id`` if needed and upload the staged folder in one commit; return the commit info.

    The token comes from huggingface_hub's usual places (``HF_TOKEN``, ``hf auth login``).
    """
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError, OfflineModeIsEnabled

    api = api if api is not None else HfApi()
    with tempfile.TemporaryDirectory(prefix="duelcoder-push-") as staging:
        files = stage_for_hub(source, staging, repo_id)
        try:
            api.create_repo(repo_id, repo_type="model", private=private, exist_ok=True)
            return api.upload_folder(
                repo_id=repo_id, repo_type="model", folder_path=staging,
                commit_message=commit_message or f"Upload duelcoder adapters from {Path(source).name} ({len(files)} files)",
            )
        except OfflineModeIsEnabled as err:
            raise PushError(f"cannot push to {repo_id}: HF_HUB_OFFLINE is set ({err})") from err
        except (HfHubHTTPError, OSError, ValueError) as err:
            raise PushError(f"pushing to {repo_id} failed: {err}") from err
