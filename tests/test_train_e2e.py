"""End to end: `accelerate launch` with 2 CPU processes (gloo DDP) trains the adversarial schedule on a tiny
model, is SIGKILLed mid-run after its first complete checkpoint, and resumes exactly where it stopped.

Checked on the checkpoints written by the two runs together:
* each step moved exactly the adapter of its phase, the other one is bit-identical (also across the
  kill: the resumed run restored both adapters and the optimizer exactly);
* the schedule position of every step survived the resume (logged phase per step, schedule.json);
* the resume is exact: an uninterrupted run of the same recipe and seed sampled the same completions for the
  same problems at every step (``samples.jsonl``: texts, task ids, replayed or not, rewards), held the same replay
  buffer in every checkpoint, and ends with the same adapters (bit for bit), the same optimizer, scheduler and RNG
  states and the same logged losses, rewards and gradient norms;
* the collapse guard's metric (``generator/collapse_rate`` by default) is logged at every generator step, so the
  guard watches something in a live run;
* the final folder pushes exactly the adapters, the recipe and a card (HfApi intercepted).

The runs carry real gradients: the tiny model's execution rewards are the same for every completion of a group,
so the recipe adds ``text_spread`` (``tests/spread_train.py``), a reward drawn from each sample's texts, which
differs within every group; ``grad_norm > 0`` is checked at every step of both runs. A resume that sampled other
completions (another RNG state, other problems, another replay buffer) therefore gets other rewards, gradients
and weights, and one that lost the optimizer's moments takes other steps. AdamW's weight decay also moves every
LoRA A matrix of the adapter it updates, which makes "which adapter did the optimizer touch" visible at every step.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from huggingface_hub import HfApi
from safetensors.torch import load_file

import datasets_build
from pipeline.training.checkpoints import COMPLETE, checkpoint_step, latest_complete
from pipeline.training.config import RLArguments
from pipeline.training.hub import push_folder
from pipeline.training.records import SAMPLES_FILE
from rewards import RewardConfig, default_reward_names

from spread_train import SPREAD
from test_train_step import shared_tiny_model
from conftest import kill_when_complete

REPO_ROOT = Path(__file__).resolve().parents[1]
ACCELERATE = Path(sys.executable).with_name("accelerate")
SPREAD_TRAIN = REPO_ROOT / "tests" / "spread_train.py"
EXPECTED_PHASES = [("discriminator", 1), ("generator", 1), ("discriminator", 2), ("generator", 2)]


def free_port() -> int:
    """A TCP port nobody listens on now: two launches at once (pytest-xdist) must not share accelerate's 29500."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def launch(recipe: Path, log: Path, *extra: str, num_processes: int = 2,
           script: Path = REPO_ROOT / "train.py") -> subprocess.Popen:
    command = [str(ACCELERATE), "launch", "--config_file", str(REPO_ROOT / "accelerate_configs" / "cpu.yaml"),
               "--num_processes", str(num_processes), "--main_process_port", str(free_port()),
               str(script), "--config", str(recipe), *extra]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRL_EXPERIMENTAL_SILENCE": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=open(log, "w"), stderr=subprocess.STDOUT,
                            start_new_session=True)  # its own process group, killed as a whole


def adapter(checkpoint: Path, role: str) -> dict[str, torch.Tensor]:
    return load_file(str(checkpoint / role / "adapter_model.safetensors"))


def changed(before: dict[str, torch.Tensor], after: dict[str, torch.Tensor]) -> bool:
    return any(not torch.equal(before[k], after[k]) for k in before)


def same_state(a, b) -> bool:
    """Nested optimizer / scheduler / RNG state dicts equal, tensors and arrays bit for bit."""
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        return isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and torch.equal(a, b)
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and np.array_equal(a, b)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same_state(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(same_state(x, y) for x, y in zip(a, b))
    return a == b


def samples(text: str) -> list[dict]:
    """The complete records of a ``samples.jsonl`` text (a run killed while writing may leave half a line)."""
    return [json.loads(line) for line in text.split("\n")[:-1]]


@pytest.mark.slow
def test_two_process_training_survives_sigkill_and_resumes_exactly(tmp_path_factory, tmp_path, monkeypatch):
    tiny = shared_tiny_model(tmp_path_factory)
    data = tmp_path / "data"
    datasets_build.build(datasets_build.BuildConfig(sources=("humaneval-mini",), out=str(data), progress=False))
    out = tmp_path / "run"
    recipe = tmp_path / "tiny.yaml"
    recipe.write_text(yaml.safe_dump({
        "model_name_or_path": str(tiny), "lora_r": 4, "lora_alpha": 8, "lora_dropout": 0.0,
        "dataset_dir": str(data), "train_splits": ["humaneval_mini_test"], "eval_splits": [],
        "allow_contamination": True, "max_train_problems": 4,
        "generator_tokens": [3], "discriminator_tokens": [4], "temperature": 1.0,
        "stages": [1, 2], "role_steps": 1, "alternating_steps": 0, "max_steps": 4,
        "per_device_train_batch_size": 2, "num_generations": 2, "learning_rate": 0.05, "weight_decay": 0.1,
        "reward_funcs": [*default_reward_names(RewardConfig()), SPREAD], "samples_per_step": 8,
        "replay_ratio": 0.5, "use_cpu": True, "bf16": False, "activation_checkpointing": False,
        "output_dir": str(out), "save_steps": 1, "logging_steps": 1, "report_to": "none", "seed": 0,
    }))  # fmt: skip

    # Run 1: killed (whole process group, SIGKILL) as soon as its first checkpoint is complete.
    first = launch(recipe, tmp_path / "first.log", script=SPREAD_TRAIN)
    kill_when_complete(first, out / "checkpoint-1" / COMPLETE, tmp_path / "first.log", timeout_s=400)
    assert not (out / "final").exists(), "the run finished before it could be killed"
    resumed_from = latest_complete(out)
    killed_samples = (out / SAMPLES_FILE).read_bytes()  # what run 2 appends starts after these bytes

    # Run 2: resumes from the newest complete checkpoint and finishes the schedule.
    second = launch(recipe, tmp_path / "second.log", "--resume_from_checkpoint", "latest", script=SPREAD_TRAIN)
    assert second.wait(timeout=400) == 0, (tmp_path / "second.log").read_text()[-3000:]
    assert f"resuming from {resumed_from}" in (tmp_path / "second.log").read_text()

    state = json.loads((out / "final" / "trainer_state.json").read_text())
    assert state["global_step"] == 4
    logged = [(h["step"], h["phase/role"], h["phase/train_stage"]) for h in state["log_history"] if "phase/role" in h]
    roles = {0.0: "discriminator", 1.0: "generator"}
    assert [(roles[r], int(s)) for _, r, s in logged] == EXPECTED_PHASES
    assert [step for step, _, _ in logged] == [1, 2, 3, 4]

    checkpoints = [out / f"checkpoint-{step}" for step in range(1, 5)]
    assert all((c / COMPLETE).is_file() for c in checkpoints)
    for step, checkpoint in enumerate(checkpoints, start=1):
        position = json.loads((checkpoint / "schedule.json").read_text())["position"]
        assert position["global_step"] == step
        assert (checkpoint / "replay.json").is_file() and (checkpoint / "recipe.yaml").is_file()
    # Step 0 (checkpoint-1) trained only the discriminator: the generator's LoRA B is still all zeros.
    assert all(not v.any() for k, v in adapter(checkpoints[0], "generator").items() if "lora_B" in k)
    for (role, _), before, after in zip(EXPECTED_PHASES[1:], checkpoints, checkpoints[1:]):
        other = "discriminator" if role == "generator" else "generator"
        assert changed(adapter(before, role), adapter(after, role)), f"{after.name}: {role} did not train"
        assert not changed(adapter(before, other), adapter(after, other)), f"{after.name}: {other} moved"

    # Run 3: the same recipe and seed, uninterrupted. The killed-and-resumed run must have ended in the same state.
    straight = tmp_path / "straight"
    third = launch(recipe, tmp_path / "third.log", "--output_dir", str(straight), script=SPREAD_TRAIN)
    assert third.wait(timeout=400) == 0, (tmp_path / "third.log").read_text()[-3000:]
    for role in ("generator", "discriminator"):
        resumed, uninterrupted = adapter(out / "final", role), adapter(straight / "final", role)
        assert resumed.keys() == uninterrupted.keys()
        assert all(torch.equal(resumed[k], uninterrupted[k]) for k in resumed), f"{role} differs after the resume"
    rng_states = sorted(p.name for p in (out / "checkpoint-4").glob("rng_state*.pth"))
    assert rng_states and rng_states == sorted(p.name for p in (straight / "checkpoint-4").glob("rng_state*.pth"))
    for name in ("optimizer.pt", "scheduler.pt", *rng_states):
        resumed = torch.load(out / "checkpoint-4" / name, weights_only=False)
        uninterrupted = torch.load(straight / "checkpoint-4" / name, weights_only=False)
        assert same_state(resumed, uninterrupted), f"{name} differs after the resume"
    # The console: one compact line per step (pipeline.training.console), no per-step metrics dict, no
    # deprecation warning (our calls use the current transformers/TRL names; known third-party ones are filtered).
    # The line may follow the progress bar's last redraw on the same line: the bar (stderr) and the line (stdout)
    # share the log file and are flushed separately, so only the line's own text is matched.
    console = (tmp_path / "third.log").read_text()
    steps = [m.group(1) for m in re.finditer(r"step (\d+/\d+) \| (discriminator|generator) stage", console)]
    assert steps == ["1/4", "2/4", "3/4", "4/4"]  # printed by the main process only
    assert "FutureWarning" not in console and "'loss':" not in console
    straight_state = json.loads((straight / "final" / "trainer_state.json").read_text())
    keys = ("loss", "reward", "grad_norm", "phase/role")
    assert [{k: h.get(k) for k in keys} for h in state["log_history"] if "loss" in h] == \
        [{k: h.get(k) for k in keys} for h in straight_state["log_history"] if "loss" in h]
    # Real gradients at every step of both runs: the comparisons above compare learning, not weight decay alone.
    for run in (state, straight_state):
        norms = [h["grad_norm"] for h in run["log_history"] if "loss" in h]
        assert len(norms) == 4 and all(n > 0 for n in norms), norms
    # The same completions of the same problems at every step: the steps before the checkpoint run 2 resumed from
    # were sampled by run 1, those after it by run 2 (a step run 1 sampled again before it was killed is not kept).
    resumed_step = checkpoint_step(resumed_from)
    written = (out / SAMPLES_FILE).read_bytes()
    assert written.startswith(killed_samples)
    before = [r for r in samples(killed_samples.decode()) if r["global_step"] < resumed_step]
    after = samples(written[len(killed_samples):].decode())
    assert [r["global_step"] for r in after][:1] == [resumed_step]
    straight_samples = samples((straight / SAMPLES_FILE).read_text())
    assert sorted({r["global_step"] for r in straight_samples}) == [0, 1, 2, 3]
    assert before + after == straight_samples
    # The same replay buffer in every checkpoint (checkpoint-1 written by run 1, the others by run 2), not empty:
    # the failed problems of every step entered it.
    for step in range(1, 5):
        replay = json.loads((out / f"checkpoint-{step}" / "replay.json").read_text())
        assert replay == json.loads((straight / f"checkpoint-{step}" / "replay.json").read_text()), step
        assert replay["items"] and replay["counters"]["added"] >= step
    # The collapse guard watches a metric the run logs (it skips a log without it, and warns at the end of a run
    # that never logged it): every generator step of both runs logged it.
    metric = RLArguments().collapse_guard_metric
    for run in (state, straight_state):
        generator_logs = [h for h in run["log_history"] if h.get("phase/role") == 1.0]
        assert len(generator_logs) == 2 and all(isinstance(h.get(metric), float) for h in generator_logs)
    for log in ("second.log", "third.log"):
        assert "was never logged" not in (tmp_path / log).read_text()

    sent: list[list[str]] = []
    monkeypatch.setattr(HfApi, "create_repo", lambda self, repo_id, **kw: repo_id)
    monkeypatch.setattr(HfApi, "upload_folder", lambda self, *, folder_path, **kw: sent.append(
        sorted(p.relative_to(folder_path).as_posix() for p in Path(folder_path).rglob("*") if p.is_file())))
    push_folder(out / "final", "someone/tiny-duel")
    assert sent == [["README.md", "discriminator/adapter_config.json", "discriminator/adapter_model.safetensors",
                     "generator/adapter_config.json", "generator/adapter_model.safetensors", "recipe.yaml"]]
