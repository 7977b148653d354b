"""HumanEval-mini: the project's own 20-task sanity benchmark, shipped as package data.

Small models (the embedded 135M one) score near zero on HumanEval, which makes early training
curves flat; these tasks are easy enough to move. Same format as HumanEval plus a ``category``
per task (``MINI_CATEGORIES``), so it goes through the HumanEval converter unchanged.
"""

from __future__ import annotations

import importlib.resources
from pathlib import Path
from typing import Any

from .humaneval import humaneval_rows
from .jsonl import read_records
from .schema import DatasetFormatError, DifficultyBands

MINI_SOURCE = "humaneval-mini"
MINI_CATEGORIES = ("arithmetic", "list operations", "conditionals", "classic algorithms")


def mini_file() -> Path:
    return Path(str(importlib.resources.files("datasets_build") / "data" / "humaneval_mini.jsonl"))


def load_mini(bands: DifficultyBands) -> tuple[list[dict[str, Any]], str]:
    """HumanEval-mini rows and their origin; every row must name one of ``MINI_CATEGORIES``."""
    path = mini_file()
    records = read_records(path)
    for where, record in records:
        if record.get("category") not in MINI_CATEGORIES:
            raise DatasetFormatError(where, f"must be one of {MINI_CATEGORIES}, got {record.get('category')!r}", "category")
    return humaneval_rows(records, source=MINI_SOURCE, bands=bands), f"file:{path}"
