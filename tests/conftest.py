"""Shared fixtures: the tests never reach the Hugging Face Hub, and read MBPP's release packaged with datasets_build."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

# Under pytest-xdist (`-n 2`, the README's command) every worker gets its share of the cores, set before torch
# loads: two workers each spinning PyTorch's default one thread per core slowed generation-heavy tests up to 20x.
_WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
if _WORKERS > 1:
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // _WORKERS)))


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session")
def mbpp_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """MBPP's original release as a plain ``mbpp.jsonl``, unpacked from the copy datasets_build ships."""
    import gzip

    from datasets_build.mbpp import packaged_release

    path = tmp_path_factory.mktemp("mbpp") / "mbpp.jsonl"
    path.write_bytes(gzip.decompress(packaged_release().read_bytes()))
    return path


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


def kill_when_complete(run: subprocess.Popen, marker: Path, log: Path, timeout_s: float) -> None:
    """SIGKILL a launched run's whole process group as soon as ``marker`` (a checkpoint's completeness file)
    exists: the crash a resume must survive. Fails if the run ends first or the marker never comes."""
    deadline = time.monotonic() + timeout_s
    while not marker.is_file():
        assert run.poll() is None, log.read_text()[-3000:]
        assert time.monotonic() < deadline, f"no {marker} in {timeout_s:.0f} s"
        time.sleep(0.1)
    os.killpg(run.pid, signal.SIGKILL)
    run.wait(timeout=60)
