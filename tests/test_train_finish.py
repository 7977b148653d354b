"""The end of an RL run as train.py wires it (pipeline.training.finish), on the tiny model:

* ``--push_to_hub``: the Trainer's own per-checkpoint pushes stay off and ``final/`` is pushed once, with exactly
  the adapters, the recipe and a card (``huggingface_hub`` intercepted: the only stand-in, the Hub being out of
  reach); a refused push is exit code 1;
* the collapse guard: a run that collapses after a checkpoint ends with that checkpoint's adapters in ``final/``
  and the collapsed ones in ``collapsed/``; one that collapses before any checkpoint has no ``final/`` and exits 1.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from huggingface_hub import HfApi
from safetensors.torch import load_file

import datasets_build
import train
from test_train_step import shared_tiny_model

REPO = "someone/duelcoder-test"


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("data") / "mini"
    datasets_build.build(datasets_build.BuildConfig(sources=("humaneval-mini",), out=str(folder), progress=False))
    return folder


def recipe(tmp_path: Path, tiny: Path, data: Path, **overrides) -> Path:
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump({
        "model_name_or_path": str(tiny), "lora_r": 4, "lora_alpha": 8, "dataset_dir": str(data),
        "train_splits": ["humaneval_mini_test"], "eval_splits": [], "allow_contamination": True,
        "max_train_problems": 2, "generator_tokens": [3], "discriminator_tokens": [4],
        "stages": [1], "role_steps": 1, "alternating_steps": 0, "max_steps": 2,
        "per_device_train_batch_size": 2, "num_generations": 2, "use_cpu": True, "dtype": "float32", "bf16": False,
        "activation_checkpointing": False, "output_dir": str(tmp_path / "out"), "save_strategy": "steps",
        "save_steps": 1, "logging_steps": 1, "report_to": "none", "replay_capacity": 0, **overrides,
    }))  # fmt: skip
    return path


class HubCalls(list):
    """Every call a run makes to the Hub's write API, recorded instead of sent (or refused, with ``fail``)."""

    fail = False


@pytest.fixture
def hub(monkeypatch) -> HubCalls:
    calls = HubCalls()

    def record(name):
        def call(self, *args, **kwargs):
            if name == "upload_folder":
                root = Path(kwargs["folder_path"])
                kwargs["files"] = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
            if calls.fail:
                raise OSError("connection refused")
            calls.append((name, {**kwargs, "args": args}))
            return "https://huggingface.co/commit/1"
        return call

    for name in ("create_repo", "upload_folder", "upload_file", "create_commit"):
        monkeypatch.setattr(HfApi, name, record(name))
    return calls


@pytest.mark.slow
def test_push_to_hub_sends_final_once_and_a_refused_push_exits_1(tmp_path, data, hub, capsys, tmp_path_factory):
    tiny = shared_tiny_model(tmp_path_factory)
    assert train.main(["--config", str(recipe(tmp_path, tiny, data)), "--push_to_hub", "true",
                       "--hub_model_id", REPO]) == 0
    names = [name for name, _ in hub]
    assert names == ["create_repo", "upload_folder"]  # one push, after training; no per-checkpoint pushes
    upload = hub[1][1]
    assert upload["repo_id"] == REPO and upload["files"] == [
        "README.md", "discriminator/adapter_config.json", "discriminator/adapter_model.safetensors",
        "generator/adapter_config.json", "generator/adapter_model.safetensors", "recipe.yaml"]
    final = tmp_path / "out" / "final"
    assert (final / "trainer_state.json").is_file() and f"pushed to https://huggingface.co/{REPO}" in capsys.readouterr().out

    hub.fail = True
    again = tmp_path / "again"
    again.mkdir()
    assert train.main(["--config", str(recipe(again, tiny, data)), "--push_to_hub", "true",
                       "--hub_model_id", REPO]) == 1
    assert "push error: pushing to someone/duelcoder-test failed: connection refused" in capsys.readouterr().err
    assert (again / "out" / "final" / "generator").is_dir()  # the adapters are kept when the push fails


@pytest.mark.slow
def test_a_collapse_after_a_checkpoint_leaves_that_checkpoint_in_final(tmp_path, data, tmp_path_factory, capsys):
    """phase/role is 0 in discriminator steps and 1 in generator steps: watched with threshold 1 and patience 1,
    the run 'collapses' at its first generator step (step 2), after checkpoint-1 was saved."""
    tiny = shared_tiny_model(tmp_path_factory)
    argv = ["--config", str(recipe(tmp_path, tiny, data, max_steps=4)), "--collapse_guard_metric", "phase/role",
            "--collapse_guard_threshold", "1.0", "--collapse_guard_patience", "1"]
    assert train.main(argv) == 0
    out = tmp_path / "out"
    assert "training collapsed at step 2" in capsys.readouterr().out
    state = json.loads((out / "final" / "trainer_state.json").read_text())
    assert state["global_step"] == 2  # stopped there, not at max_steps 4
    for role in ("generator", "discriminator"):
        final = load_file(str(out / "final" / role / "adapter_model.safetensors"))
        kept = load_file(str(out / "checkpoint-1" / role / "adapter_model.safetensors"))
        collapsed = load_file(str(out / "collapsed" / role / "adapter_model.safetensors"))
        assert all((final[k] == kept[k]).all() for k in final)
        assert set(collapsed) == set(final)  # the collapsed adapters are kept beside, for inspection
    assert json.loads((out / "final" / "run_info.json").read_text())["adapters_from"].endswith("checkpoint-1")


@pytest.mark.slow
def test_a_collapse_before_any_checkpoint_exits_1_without_final(tmp_path, data, tmp_path_factory, capsys):
    tiny = shared_tiny_model(tmp_path_factory)
    argv = ["--config", str(recipe(tmp_path, tiny, data)), "--collapse_guard_metric", "timing/step_s",
            "--collapse_guard_threshold", "0.001", "--collapse_guard_patience", "1"]  # every step takes > 1 ms
    assert train.main(argv) == 1
    assert "before any checkpoint was saved" in capsys.readouterr().err
    out = tmp_path / "out"
    assert not (out / "final").exists() and (out / "collapsed" / "generator").is_dir()


@pytest.mark.slow
def test_a_run_killed_while_saving_final_leaves_no_final(tmp_path, data, tmp_path_factory, monkeypatch):
    """``final/`` is what a rerun (and scripts/learning_experiment.py) takes for a finished run: it appears whole or
    not at all. A crash while the last file is written leaves only ``.final.partial``; the rerun replaces it."""
    from transformers import TrainerState

    tiny = shared_tiny_model(tmp_path_factory)
    save = TrainerState.save_to_json

    def crash_in_final(self, path):
        if "final" in Path(path).parent.name:
            raise KeyboardInterrupt("killed while saving final/")
        return save(self, path)

    monkeypatch.setattr(TrainerState, "save_to_json", crash_in_final)
    with pytest.raises(KeyboardInterrupt):
        train.main(["--config", str(recipe(tmp_path, tiny, data))])
    out = tmp_path / "out"
    assert not (out / "final").exists() and (out / ".final.partial" / "generator").is_dir()
    monkeypatch.setattr(TrainerState, "save_to_json", save)
    assert train.main(["--config", str(recipe(tmp_path, tiny, data)), "--resume_from_checkpoint", "latest"]) == 0
    assert (out / "final" / "trainer_state.json").is_file() and not (out / ".final.partial").exists()
