"""Pushing adapters: exactly the adapter files, the recipe and a model card reach HfApi.upload_folder.

huggingface_hub's HfApi methods are intercepted: nothing touches the network (HF_HUB_OFFLINE=1).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from huggingface_hub import HfApi

from pipeline.tools import push
from pipeline.training.hub import PushError, push_folder

REPO = "someone/duelcoder-test"


def make_run_folder(root: Path, roles=("generator", "discriminator")) -> Path:
    folder = root / "checkpoint-6"
    for role in roles:
        (folder / role).mkdir(parents=True)
        (folder / role / "adapter_config.json").write_text(json.dumps({"r": 4, "peft_type": "LORA"}))
        (folder / role / "adapter_model.safetensors").write_bytes(b"\0" * 16)
        (folder / role / "README.md").write_text("peft's own stub card, not pushed")
    for name in ("optimizer.pt", "scheduler.pt", "rng_state.pth", "replay.json", "COMPLETE"):
        (folder / name).write_bytes(b"not pushed")
    (folder / "recipe.yaml").write_text("model_name_or_path: Qwen/Qwen2.5-Coder-1.5B-Instruct\nlora_r: 4\n")
    (folder / "run_info.json").write_text(json.dumps({
        "base_model": "Qwen/Qwen2.5-Coder-1.5B-Instruct", "schedule": "adversarial", "curriculum": "staged",
        "schedule_config": {"schedule": "adversarial", "role_steps": 2},
        "stages": [1, 2, 3, 4, 5], "train_splits": ["mbpp_train", "mbpp_validation"], "train_problems": 461,
        "eval_splits": ["humaneval_test"], "reward_funcs": ["generator_pass_rate", "format"],
    }))  # fmt: skip
    (folder / "trainer_state.json").write_text(json.dumps({"log_history": [
        {"step": 5, "generator/pass_rate": 0.25, "loss": 0.1},
        {"step": 6, "discriminator/validity": 0.8, "generator/pass_rate": float("nan")},
    ]}))  # fmt: skip
    return folder


@pytest.fixture
def hub_calls(monkeypatch):
    """Intercepts HfApi.create_repo and HfApi.upload_folder; records what would be sent."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    calls: list[dict] = []

    def create_repo(self, repo_id, **kwargs):
        calls.append({"create_repo": repo_id, **kwargs})
        return f"https://huggingface.co/{repo_id}"

    def upload_folder(self, *, repo_id, folder_path, **kwargs):
        root = Path(folder_path)
        files = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
        calls.append({"upload": repo_id, "files": files, "card": (root / "README.md").read_text(),
                      "recipe": (root / "recipe.yaml").read_text(), **kwargs})
        return "commit-url"

    monkeypatch.setattr(HfApi, "create_repo", create_repo)
    monkeypatch.setattr(HfApi, "upload_folder", upload_folder)
    return calls


def test_push_sends_both_adapters_the_recipe_and_a_card_and_nothing_else(tmp_path, hub_calls):
    folder = make_run_folder(tmp_path)
    assert push_folder(folder, REPO) == "commit-url"
    create, upload = hub_calls
    assert create["create_repo"] == REPO and create["exist_ok"] is True and create["repo_type"] == "model"
    assert upload["files"] == [
        "README.md", "discriminator/adapter_config.json", "discriminator/adapter_model.safetensors",
        "generator/adapter_config.json", "generator/adapter_model.safetensors", "recipe.yaml",
    ]  # fmt: skip
    assert upload["recipe"] == (folder / "recipe.yaml").read_text()
    card = upload["card"]
    assert card.startswith("---\nbase_model: Qwen/Qwen2.5-Coder-1.5B-Instruct\n")
    assert "| `generator/` |" in card and "| `discriminator/` |" in card
    assert "GRPOTrainer" in card and "461 problems from mbpp_train, mbpp_validation" in card
    assert "| `generator/pass_rate` | 0.2500 |" in card and "| `discriminator/validity` | 0.8000 |" in card
    assert f'PeftModel.from_pretrained(base, "{REPO}", subfolder="generator"' in card
    assert f'model.load_adapter("{REPO}", subfolder="discriminator"' in card


def test_cli_pushes_a_checkpoint_and_reports_bad_folders(tmp_path, hub_calls, capsys):
    folder = make_run_folder(tmp_path)
    assert push.main([str(folder), REPO, "--private"]) == 0
    assert hub_calls[0]["private"] is True and len(hub_calls[1]["files"]) == 6
    assert REPO in capsys.readouterr().out
    assert push.main([str(tmp_path / "missing"), REPO]) == 2
    assert "not a folder" in capsys.readouterr().err


def test_folders_without_adapters_or_recipe_are_refused(tmp_path, hub_calls):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(PushError, match="holds no adapter"):
        push_folder(empty, REPO)
    folder = make_run_folder(tmp_path)
    (folder / "recipe.yaml").unlink()
    with pytest.raises(PushError, match="recipe.yaml"):
        push_folder(folder, REPO)
    assert hub_calls == []  # refused before contacting the Hub


def test_unified_run_pushes_its_single_adapter(tmp_path, hub_calls):
    folder = make_run_folder(tmp_path, roles=("generator",))
    info = json.loads((folder / "run_info.json").read_text())
    (folder / "run_info.json").write_text(json.dumps({**info, "schedule": "unified", "base_model": "embedded"}))
    push_folder(folder, REPO)
    upload = hub_calls[1]
    assert "discriminator/adapter_config.json" not in upload["files"]
    assert "plays both roles" in upload["card"] and "base_model: HuggingFaceTB/SmolLM2-135M-Instruct" in upload["card"]


def test_the_card_names_the_schedule_and_the_best_reward_record_also_in_folders_from_before_the_redesign(tmp_path):
    """run_info.json and best_reward.json as train.py writes them now, and as it wrote them before the 2026-12-02
    renames ("mode" for the schedule's name, "schedule" for its settings, best/best.json): one card either way."""
    from pipeline.training.card import render_model_card

    record = {"score": 0.625, "formula": "0.7 * generator/pass_rate + 0.3 * discriminator/validity", "global_step": 6}
    now = make_run_folder(tmp_path / "now")
    (now / "best_reward.json").write_text(json.dumps(record))
    before = make_run_folder(tmp_path / "before")
    info = json.loads((before / "run_info.json").read_text())
    info["mode"], info["schedule"] = "adversarial", info.pop("schedule_config")
    (before / "run_info.json").write_text(json.dumps(info))
    (before / "best.json").write_text(json.dumps(record))
    cards = [render_model_card(folder, REPO) for folder in (now, before)]
    for card in cards:
        assert "Schedule: `adversarial`" in card and '- schedule settings: {"schedule": "adversarial", "role_steps": 2}' in card
        assert "These are the `best_reward` adapters: score 0.6250 = 0.7 * generator/pass_rate" in card
    assert cards[0] == cards[1]

