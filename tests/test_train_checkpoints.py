"""Checkpoints count only when complete; `latest` and explicit resumes; the `best_reward` adapters."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.training.checkpoints import (
    COMPLETE,
    BestTracker,
    CheckpointError,
    checkpoints,
    discard_after,
    latest_complete,
    resolve_resume,
)


def make_checkpoint(root: Path, step: int, complete: bool, score_files: bool = True) -> Path:
    folder = root / f"checkpoint-{step}"
    for role in ("generator", "discriminator"):
        (folder / role).mkdir(parents=True)
        (folder / role / "adapter_config.json").write_text("{}")
        (folder / role / "adapter_model.safetensors").write_bytes(b"weights")
    if score_files:
        (folder / "recipe.yaml").write_text("lora_r: 4\n")
        (folder / "optimizer.pt").write_bytes(b"state")
    if complete:
        (folder / COMPLETE).write_text(json.dumps({"global_step": step}))
    return folder


def test_latest_is_the_newest_complete_checkpoint(tmp_path):
    make_checkpoint(tmp_path, 2, complete=True)
    make_checkpoint(tmp_path, 10, complete=True)
    make_checkpoint(tmp_path, 12, complete=False)  # killed while saving
    (tmp_path / "checkpoint-x").mkdir()  # not a checkpoint name
    assert [p.name for p in checkpoints(tmp_path)] == ["checkpoint-2", "checkpoint-10", "checkpoint-12"]
    assert latest_complete(tmp_path).name == "checkpoint-10"
    assert resolve_resume(tmp_path, "latest").name == "checkpoint-10"
    assert resolve_resume(tmp_path, None) is None


def test_latest_without_checkpoints_starts_fresh_and_explicit_paths_must_be_complete(tmp_path):
    assert resolve_resume(tmp_path / "new-run", "latest") is None
    incomplete = make_checkpoint(tmp_path, 4, complete=False)
    with pytest.raises(CheckpointError, match="no COMPLETE marker"):
        resolve_resume(tmp_path, str(incomplete))
    with pytest.raises(CheckpointError, match="not a folder"):
        resolve_resume(tmp_path, str(tmp_path / "checkpoint-99"))
    (incomplete / COMPLETE).write_text("{}")
    assert resolve_resume(tmp_path, str(incomplete)) == incomplete


def test_resuming_removes_incomplete_and_newer_checkpoints(tmp_path):
    for step, complete in ((1, True), (2, True), (3, False), (4, True)):
        make_checkpoint(tmp_path, step, complete)
    removed = discard_after(tmp_path, 2)
    assert sorted(p.name for p in removed) == ["checkpoint-3", "checkpoint-4"]
    assert [p.name for p in checkpoints(tmp_path)] == ["checkpoint-1", "checkpoint-2"]


def test_best_keeps_the_adapters_of_the_highest_weighted_score(tmp_path):
    best = BestTracker(tmp_path)
    assert not best.consider(make_checkpoint(tmp_path, 1, True), 1)  # nothing logged yet
    best.observe({"generator/pass_rate": 0.5, "discriminator/validity": float("nan")})
    best.observe({"discriminator/validity": 1.0})
    assert best.score() == pytest.approx(0.7 * 0.5 + 0.3 * 1.0)
    assert best.consider(make_checkpoint(tmp_path, 2, True), 2)
    kept = tmp_path / "best_reward"
    assert sorted(p.relative_to(kept).as_posix() for p in kept.rglob("*") if p.is_file()) == [
        "best_reward.json", "discriminator/adapter_config.json", "discriminator/adapter_model.safetensors",
        "generator/adapter_config.json", "generator/adapter_model.safetensors", "recipe.yaml",
    ]  # fmt: skip
    assert json.loads((kept / "best_reward.json").read_text())["global_step"] == 2
    best.observe({"generator/pass_rate": 0.1})
    assert not best.consider(make_checkpoint(tmp_path, 3, True), 3)
    assert BestTracker(tmp_path).best == pytest.approx(0.65)  # a resumed run keeps the bar
