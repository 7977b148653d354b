"""Sampling that survives being killed (`pipeline.chain.partial`): a staged evaluation and a bootstrap round killed
with SIGKILL in the middle of their chains continue from the last batch written when rerun, and end with exactly
the samples an uninterrupted run draws (sampling at temperature 0.8, so a resume that redrew or restored the random
generators wrongly would sample other texts); settings that differ start over instead of mixing in.

The kill is real: the commands run as users run them (`python evaluate.py`, `accelerate launch train.py`), in their
own process group, killed as soon as the first batch is on disk. The tiny random model keeps each batch short;
every run here uses one thread and fp32, so the three runs of a comparison compute the same numbers.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from conftest import kill_when_complete
from pipeline.chain import Chain, Turns
from pipeline.chain.partial import PartialBatches
from pipeline.models.embedded import embedded_model_dir
from pipeline.models.tiny import build_tiny_model
from test_train_e2e import launch

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}


def _draws() -> tuple[float, float, float]:
    return random.random(), float(np.random.rand()), float(torch.rand(1))


def _partial(path: Path, key: dict) -> PartialBatches[Chain]:
    return PartialBatches(path, key, Chain.to_dict, Chain.from_dict)


def test_a_resume_returns_the_items_and_the_generators_as_they_were_after_the_last_batch(tmp_path):
    chain = Chain("HumanEval/0", "f", stage_texts=["think", "```python\ndef f(): pass\n```"],
                  tests_by_stage=[["assert f() is None"], []], rejections=Counter(duplicate=2),
                  generator=Turns(prompt=[1, 2], generated=[[3], [4, 5]], inserted=[[6]], logprobs=[[-0.5], [-1.0, -2.0]]))
    torch.manual_seed(1)
    first = _partial(tmp_path / "p.json", {"seed": 1, "budgets": (16, 128)})
    assert first.resume() == []
    first.save([chain])
    expected = _draws()  # what the loop's next batch would have drawn
    _draws(), _draws()  # a new process draws other numbers before it resumes
    again = _partial(tmp_path / "p.json", {"seed": 1, "budgets": [16, 128]})
    assert again.resume() == [chain] and _draws() == expected and again.resumed == 1
    (tmp_path / "p.json").unlink()
    assert again.resume() == [] and again.resumed == 0


@pytest.mark.parametrize("damage", ["other_key", "cut_short", "bad_item"])
def test_a_file_for_other_settings_or_unreadable_is_set_aside_and_sampling_starts_over(tmp_path, damage, caplog):
    path = tmp_path / "p.json"
    _partial(path, {"seed": 1}).save([Chain("a", "f")])
    if damage == "cut_short":
        path.write_text(path.read_text()[:40])
    elif damage == "bad_item":  # the right key, an item that is not a chain
        saved = json.loads(path.read_text())
        saved["items"][0] = {"task_id": "a"}
        path.write_text(json.dumps(saved))
    before = torch.get_rng_state()
    partial = _partial(path, {"seed": 1 if damage == "bad_item" else 2})
    assert partial.resume() == [] and partial.resumed == 0
    assert torch.equal(torch.get_rng_state(), before)  # the generators stay as seeded for a fresh start
    assert not path.exists() and (tmp_path / "p.json.other").is_file()
    assert ("other settings" if damage == "other_key" else "unreadable") in caplog.text


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory) -> Path:
    embedded = embedded_model_dir(tmp_path_factory.mktemp("cache"))
    return build_tiny_model(tmp_path_factory.mktemp("tiny"), tokenizer_source=str(embedded))


def _evaluate(tiny_dir: Path, out: Path) -> list[str]:
    return [sys.executable, str(ROOT / "evaluate.py"), "--benchmark", "humaneval-mini", "--model", str(tiny_dir),
            "--dtype", "float32", "--mode", "staged", "--limit", "5", "--num-samples", "2", "--batch-size", "1", "--temperature", "0.8",
            "--generator-tokens", "8", "8", "8", "8", "24", "--discriminator-tokens", "12", "--best-of", "2",
            "--output-dir", str(out)]


def _samples(out: Path) -> list[dict]:
    """samples.jsonl without the wall times, which differ from run to run."""
    records = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if "seconds" not in k} for r in records]


@pytest.mark.slow
def test_a_killed_staged_evaluation_continues_and_samples_what_an_uninterrupted_one_does(tiny_dir, tmp_path):
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    subprocess.run(_evaluate(tiny_dir, whole), cwd=ROOT, env=ENV, check=True, capture_output=True, timeout=600)
    assert not (whole / ".base-chains.json").exists()  # removed once samples.jsonl is written

    log = tmp_path / "killed.log"
    first = subprocess.Popen(_evaluate(tiny_dir, killed), cwd=ROOT, env=ENV, stdout=open(log, "w"),
                             stderr=subprocess.STDOUT, start_new_session=True)
    kill_when_complete(first, killed / ".base-chains.json", log, timeout_s=600)
    saved = json.loads((killed / ".base-chains.json").read_text())["items"]
    assert 1 <= len(saved) < 10 and not (killed / "samples.jsonl").exists()

    resumed = subprocess.run(_evaluate(tiny_dir, killed), cwd=ROOT, env=ENV, capture_output=True, text=True,
                             timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"resuming after {len(saved)} items" in resumed.stderr
    assert _samples(killed) == _samples(whole)
    timing = json.loads((killed / "results.json").read_text())["timing"]
    assert timing["generation_base_resumed_samples"] == len(saved)
    assert len({tuple(s["texts"]) for s in _samples(whole)}) > 1  # sampled texts, not one repeated answer
    assert not (killed / ".base-chains.json").exists()


def _bootstrap_recipe(folder: Path, tiny_dir: Path, data: Path) -> Path:
    recipe = folder / "bootstrap.yaml"
    recipe.write_text(yaml.safe_dump({
        "job": "bootstrap", "model_name_or_path": str(tiny_dir), "dataset_dir": str(data),
        "train_splits": ["humaneval_mini_test"], "eval_splits": [], "allow_contamination": True,
        "max_train_problems": 3, "rounds": 1, "samples_per_problem": 2, "generation_batch_size": 1,
        "temperature": 0.8, "generator_tokens": [8, 8, 8, 8, 24], "discriminator_tokens": [12, 1, 1, 1, 1],
        "lora_r": 4, "lora_alpha": 8, "lora_dropout": 0.0, "lora_target_modules": ["q_proj", "v_proj"],
        "max_steps": 1, "per_device_train_batch_size": 2, "learning_rate": 1e-3, "warmup_steps": 0,
        "max_length": 2048, "torch_threads": 1, "use_cpu": True, "dtype": "float32", "bf16": False,
        "activation_checkpointing": False, "logging_steps": 1, "report_to": "none", "seed": 0,
    }))  # fmt: skip
    return recipe


@pytest.mark.slow
def test_a_bootstrap_round_killed_while_sampling_samples_only_the_missing_chains(tiny_dir, tmp_path):
    import datasets_build

    data = tmp_path / "data"
    datasets_build.build(datasets_build.BuildConfig(sources=("humaneval-mini",), out=str(data), progress=False))
    recipe = _bootstrap_recipe(tmp_path, tiny_dir, data)
    whole, killed = tmp_path / "whole", tmp_path / "killed"

    def run(out: Path, log: Path, *extra: str) -> str:
        code = launch(recipe, log, "--output_dir", str(out), *extra, num_processes=1).wait(timeout=600)
        assert code == 0, log.read_text()[-4000:]
        return log.read_text()

    run(whole, tmp_path / "whole.log")
    assert not (whole / ".round-1.chains.json").exists()  # removed with the round finished

    log = tmp_path / "killed.log"
    kill_when_complete(launch(recipe, log, "--output_dir", str(killed), num_processes=1),
                       killed / ".round-1.chains.json", log, timeout_s=600)
    saved = json.loads((killed / ".round-1.chains.json").read_text())["items"]
    assert 1 <= len(saved) < 6 and not (killed / "round-1").exists()

    text = run(killed, tmp_path / "resumed.log", "--resume_from_checkpoint", "latest")
    assert f"resuming after {len(saved)} items" in text
    for name in ("generator.jsonl", "discriminator.jsonl"):
        assert (killed / "round-1" / name).read_text() == (whole / "round-1" / name).read_text(), name
    chains = [json.loads(line) for line in (whole / "round-1" / "generator.jsonl").read_text().splitlines()]
    assert len(chains) >= 6 and not (killed / ".round-1.chains.json").exists()
