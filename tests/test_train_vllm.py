"""End to end with ``generation_engine: vllm``: train.py starts its own vLLM server, generates every chain on it,
syncs the trained role's adapter after each step, corrects with TRL's importance sampling, is SIGKILLed after
its first complete checkpoint (its server goes with it), and resumes on a fresh server to the end (issue 23).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

import datasets_build
from pipeline.models.tiny import build_tiny_model
from pipeline.training.checkpoints import COMPLETE, latest_complete
from conftest import kill_when_complete

REPO_ROOT = Path(__file__).resolve().parents[1]

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not (REPO_ROOT / ".venv-vllm" / "bin" / "python").exists(),
                                 reason="no .venv-vllm: run ./scripts/setup_vllm.sh (CI does)")]


def launch(recipe: Path, log: Path, *extra: str) -> subprocess.Popen:
    command = [sys.executable, str(REPO_ROOT / "train.py"), "--config", str(recipe), *extra]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRL_EXPERIMENTAL_SILENCE": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=open(log, "w"), stderr=subprocess.STDOUT,
                            start_new_session=True)


def servers_of(model: Path) -> list[int]:
    """Pids of vLLM servers serving this test's model folder (named on their command line)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if "vllm.entrypoints.openai.api_server" in command and str(model) in command:
                pids.append(int(entry.name))
    return pids


def test_two_steps_on_vllm_survive_sigkill_and_resume_on_a_new_server(tmp_path):
    tiny = build_tiny_model(tmp_path / "tiny", hidden_size=128)  # vLLM's CPU attention needs head size >= 32
    data = tmp_path / "data"
    datasets_build.build(datasets_build.BuildConfig(sources=("humaneval-mini",), out=str(data), progress=False))
    out = tmp_path / "run"
    recipe = tmp_path / "tiny.yaml"
    recipe.write_text(yaml.safe_dump({
        "model_name_or_path": str(tiny), "dtype": "float32", "lora_r": 4, "lora_alpha": 8, "lora_dropout": 0.0,
        "dataset_dir": str(data), "train_splits": ["humaneval_mini_test"], "eval_splits": [],
        "allow_contamination": True, "max_train_problems": 4,
        "generator_tokens": [3], "discriminator_tokens": [4], "temperature": 1.0,
        "stages": [1], "role_steps": 1, "alternating_steps": 0, "max_steps": 2,
        "per_device_train_batch_size": 2, "num_generations": 2, "learning_rate": 0.05,
        "use_cpu": True, "bf16": False, "activation_checkpointing": False,
        "generation_engine": "vllm", "engine_dtype": "float32", "engine_max_lora_rank": 8, "engine_kv_cache_gib": 1,
        "engine_max_model_len": 2048,
        "output_dir": str(out), "save_steps": 1, "logging_steps": 1, "report_to": "none", "seed": 0,
    }))  # fmt: skip

    first = launch(recipe, tmp_path / "first.log")
    kill_when_complete(first, out / "checkpoint-1" / COMPLETE, tmp_path / "first.log", timeout_s=600)
    assert not (out / "final").exists(), "the run finished before it could be killed"
    deadline = time.monotonic() + 60
    while servers_of(tiny) and time.monotonic() < deadline:  # the server dies with the run that started it
        time.sleep(0.5)
    assert servers_of(tiny) == []
    resumed_from = latest_complete(out)
    server_log = (out / "vllm" / "vllm_server.log").read_text()
    assert "generator-v1" in server_log and "discriminator-v2" in server_log  # step 1 trained the discriminator

    second = launch(recipe, tmp_path / "second.log", "--resume_from_checkpoint", "latest")
    assert second.wait(timeout=600) == 0, (tmp_path / "second.log").read_text()[-3000:]
    console = (tmp_path / "second.log").read_text()
    assert f"resuming from {resumed_from}" in console
    assert servers_of(tiny) == []  # stopped at the end
    state = json.loads((out / "final" / "trainer_state.json").read_text())
    assert state["global_step"] == 2
    steps = [h for h in state["log_history"] if "loss" in h]
    assert [h["step"] for h in steps] == [1, 2]  # step 1 from the killed run's checkpoint, step 2 resumed
    for h, role in zip(steps, ("discriminator", "generator")):
        assert "sampling/importance_sampling_ratio/mean" in h
        assert h[f"{role}/logprob_gap"] < 1e-3  # one model in fp32 on both sides: float noise only
    assert "logp_gap" in console and "is_ratio" in console
