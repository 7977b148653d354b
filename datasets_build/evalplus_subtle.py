"""The subtly wrong programs of the discriminator benchmark, packaged with ``datasets_build``.

Each program passes a HumanEval+ / MBPP+ task's base inputs but fails on a plus input: a test
writer is measured by whether its tests catch it. They are built once per version by
``scripts/build_subtle_set.py`` (which judges mutants of the canonical solutions) and shipped as
data, not regenerated, so every model is measured on the same programs.
"""

from __future__ import annotations

import gzip
import importlib.resources
import json
from pathlib import Path

from .evalplus_release import LABELS, PlusName, check_name
from .schema import DatasetFormatError

SUBTLE_VERSION = 1


def subtle_file(name: PlusName, version: int = SUBTLE_VERSION) -> Path:
    """The packaged set of subtly wrong programs (right on the base inputs, wrong on a plus input) of
    HumanEval+ or MBPP+, built by ``scripts/build_subtle_set.py``: fixed per version, so every model is
    measured on the same programs."""
    check_name(name)
    stem = name.replace("+", "plus")
    return Path(str(importlib.resources.files("datasets_build") / "data" / f"evalplus-subtle-{stem}-v{version}.jsonl.gz"))


def load_subtle(name: PlusName, version: int = SUBTLE_VERSION) -> list[dict[str, str]]:
    """The records (``task_id``, ``program``, ``mutation``) of ``subtle_file``."""
    path = subtle_file(name, version)
    if not path.is_file():
        raise DatasetFormatError(str(path), f"no subtly wrong programs of {LABELS[name]} version {version}; build them "
                                            f"with scripts/build_subtle_set.py --dataset {name} --version {version}")
    records = [json.loads(line) for line in gzip.decompress(path.read_bytes()).splitlines() if line.strip()]
    for number, record in enumerate(records, 1):
        if not all(isinstance(record.get(key), str) for key in ("task_id", "program", "mutation")):
            raise DatasetFormatError(f"{path}:{number}", "needs string fields task_id, program and mutation")
    return records
