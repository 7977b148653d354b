"""Loading the pass@k metric module through the Hugging Face `evaluate` library, by path.

This repository's top-level ``evaluate.py`` has the library's name: wherever the repository root is first
on ``sys.path`` (``python evaluate.py``, ``python -m pytest`` from the root) a plain ``import evaluate``
would import that script. `hf_evaluate` finds the installed library instead, skipping path entries where
``evaluate`` is a plain module rather than a package.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

PASS_AT_K_PATH = Path(__file__).resolve().parent / "pass_at_k.py"


def _is_library(module: ModuleType) -> bool:
    return hasattr(module, "load") and hasattr(module, "Metric")


def hf_evaluate() -> ModuleType:
    """The Hugging Face `evaluate` package (imported, and registered as ``sys.modules["evaluate"]``)."""
    current = sys.modules.get("evaluate")
    if current is not None and _is_library(current):
        return current
    for entry in sys.path:
        spec = importlib.machinery.PathFinder.find_spec("evaluate", [entry or "."])
        if spec is not None and spec.submodule_search_locations is not None and spec.loader is not None:
            break
    else:
        raise ImportError("the Hugging Face `evaluate` library is not installed: pip install evaluate")
    module = importlib.util.module_from_spec(spec)
    sys.modules["evaluate"] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        if current is not None:
            sys.modules["evaluate"] = current
        else:
            del sys.modules["evaluate"]
        raise
    return module


def load_pass_at_k() -> Any:
    """``evaluate.load`` of this package's ``pass_at_k.py`` (a local file: no Hub access)."""
    return hf_evaluate().load(str(PASS_AT_K_PATH))
