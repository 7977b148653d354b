"""Isolated execution of untrusted Python programs against tests, with unforgeable verdicts.

Standard library only. See README "Sandbox" for the guarantees of each test form and tier.

The names below are loaded lazily (PEP 562): worker processes import ``sandbox.worker`` and must
not pull in the pool's threading and subprocess machinery, because every module a worker holds
makes each of its per-job forks dearer (threading alone tripled the cost of a fork here).
"""

from importlib import import_module
from typing import Any

_EXPORTS = {
    "Sandbox": "pool", "SandboxUnavailable": "pool",
    "SandboxConfig": "config", "TIERS": "config",
    "Job": "types", "JobError": "types", "Result": "types", "TestVerdict": "types",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module 'sandbox' has no attribute {name!r}")
