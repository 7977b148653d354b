"""Reading a dataset from the Hugging Face Hub, failing fast to a local fallback when offline.

``load_dataset`` on an unreachable Hub can retry for a long time; a build must instead notice
quickly (``HF_HUB_OFFLINE=1``, or one metadata request with a short timeout) and let the caller
use its local file. A repo id that is an existing local folder is loaded through the same
``load_dataset`` path without any network, which is how the Hub path is tested.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import huggingface_hub.constants
from datasets import load_dataset
from huggingface_hub import HfApi

from .jsonl import Record
from .schema import DatasetFormatError

logger = logging.getLogger(__name__)

_TRUE = {"1", "true", "yes", "on"}


def hub_offline() -> bool:
    """``HF_HUB_OFFLINE`` as set now (huggingface_hub reads it once at import, which may have
    happened before a test or a user set it)."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in _TRUE or bool(huggingface_hub.constants.HF_HUB_OFFLINE)


def load_hub_rows(repo: str, config_name: str | None, *, timeout_s: float) -> dict[str, list[Record]] | None:
    """Records per split of ``repo`` (config ``config_name``), or None if the Hub cannot be used.

    Each record is located as ``repo[config/split] row N`` for error messages. None (with the
    reason logged) means: offline mode, no connection, or the download failed.
    """
    local = Path(repo).is_dir()
    if not local:
        if hub_offline():
            logger.info("HF_HUB_OFFLINE is set: not contacting the Hub for %s", repo)
            return None
        try:
            HfApi().dataset_info(repo, timeout=timeout_s)
        except Exception as exc:  # any failure (DNS, timeout, HTTP) means "use the local copy"
            logger.warning("Hub unreachable for %s (%s: %s); falling back to the local copy", repo, type(exc).__name__, exc)
            return None
    try:
        dataset_dict = load_dataset(repo, config_name)
    except Exception as exc:
        if local:
            raise DatasetFormatError(repo, f"cannot be loaded as a dataset ({type(exc).__name__}: {exc})") from exc
        logger.warning("loading %s from the Hub failed (%s: %s); falling back to the local copy", repo, type(exc).__name__, exc)
        return None
    return {
        split: [(f"{repo}[{config_name}/{split}] row {i}", dict(record)) for i, record in enumerate(dataset)]
        for split, dataset in dataset_dict.items()
    }
