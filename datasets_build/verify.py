"""Run every reference solution against its own tests in the sandbox; keep only rows that pass.

A row whose reference fails its tests would reward wrong code or punish right code, so it is
dropped, and every drop is returned with the reason the sandbox gave.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from tqdm.auto import tqdm

from sandbox import Job, Result, Sandbox, SandboxConfig

logger = logging.getLogger(__name__)

_DETAIL_CHARS = 300


@dataclass(frozen=True)
class DroppedRow:
    """A row left out of the build and why (shown in the summary, one line each)."""

    source: str
    split: str
    task_id: str
    reason: str


def reference_job(row: dict[str, Any], timeout_s: float | None = None) -> Job:
    """The sandbox job that runs a row's reference solution against its tests."""
    return Job(
        program=row["reference_solution"],
        tests=tuple(row["tests"]),
        setup=row["test_setup"],
        entry_point=row["entry_point"],
        timeout=timeout_s,
    )


def failure_reason(row: dict[str, Any], result: Result) -> str:
    """``status``, then the first test that did not pass and the sandbox's detail for it."""
    for index, verdict in enumerate(result.tests):
        if verdict.status != "passed":
            test = " ".join(row["tests"][index].split())
            if len(test) > 120:
                test = test[:117] + "..."
            detail = " ".join(verdict.detail.split())[:_DETAIL_CHARS]
            return f"{result.status}: test {index} `{test}`: {verdict.status}: {detail}"
    return f"{result.status}: {result.passed}/{result.total} tests passed"


def verify_rows(
    rows: list[dict[str, Any]], sandbox_config: SandboxConfig, *, progress: bool = True
) -> tuple[list[dict[str, Any]], list[DroppedRow]]:
    """Split rows into (passing, dropped) by running each reference in the sandbox, in parallel."""
    if not rows:
        return [], []
    with Sandbox(sandbox_config) as sandbox, tqdm(total=len(rows), desc="verifying references", unit="task", disable=not progress) as bar:
        results = sandbox.run_many([reference_job(row) for row in rows], on_result=lambda _i, _r: bar.update(1))
    kept: list[dict[str, Any]] = []
    dropped: list[DroppedRow] = []
    for row, result in zip(rows, results, strict=True):
        if result.status == "passed":
            kept.append(row)
            continue
        reason = failure_reason(row, result)
        dropped.append(DroppedRow(row["source"], row["split"], row["task_id"], reason))
        logger.info("dropping %s: reference does not pass its tests (%s)", row["task_id"], reason)
    if any(r.status == "infra_error" for r in results):
        logger.error("the sandbox itself failed on some references (infra_error); those rows were dropped, not judged")
    return kept, dropped
