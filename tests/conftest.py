"""Shared fixtures: the tests never reach the Hugging Face Hub, and find MBPP beside the repository."""

from __future__ import annotations

from pathlib import Path

import pytest

MBPP_FILE = Path(__file__).resolve().parents[2] / "shared" / "data" / "mbpp" / "mbpp.jsonl"


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="module")
def mbpp_file() -> Path:
    if not MBPP_FILE.is_file():
        pytest.skip(f"the MBPP release is not at {MBPP_FILE}")
    return MBPP_FILE


def load_module(name: str, path: Path):
    """A script (not a package module) as a module named ``name``."""
    from importlib.util import module_from_spec, spec_from_file_location

    spec = spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None, path
    module = module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_evaluate_cli(name: str):
    """evaluate.py as a module, under another name: "evaluate" is the Hugging Face library's module name."""
    return load_module(name, Path(__file__).resolve().parents[1] / "evaluate.py")
