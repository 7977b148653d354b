"""Supervised warm start (pipeline/warmstart): the examples, the loss masks TRL really applies, and
training on the tiny random model (its output is noise; only the mechanics are checked)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import yaml
import torch
from trl import SFTConfig, SFTTrainer

import datasets_build
from pipeline.chain import Chain
from pipeline.training.benchmark import BenchmarkEvalConfig
from pipeline.training.finish import FINAL_DIR
from pipeline.training.records import WARMSTART_RECORD_FILE
from pipeline.models import ModelConfig, load_tokenizer
from pipeline.models.policies import load_policies
from pipeline.models.tiny import build_tiny_model
from pipeline.warmstart import (
    WarmStartConfig,
    WarmStartError,
    assistant_only_dataset,
    assistant_only_tokens,
    build_sft_dataset,
    run_warm_start,
    sft_examples,
    sft_training_args,
    teacher_chains,
)
from prompts import direct_messages, format_code, generator_messages, load_templates
from prompts.chat import render_ids

TEMPLATES = load_templates("default")
CLOSING = "<|im_end|>\n"  # ChatML's end of an assistant turn (the tiny model uses SmolLM2's tokenizer)


@pytest.fixture(scope="module")
def rows() -> list[dict]:
    return list(datasets_build.load_problems("humaneval-mini"))[:4]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return build_tiny_model(tmp_path_factory.mktemp("tiny"))


def test_config_rejects_what_cannot_work():
    for bad in ({"stage_format": True}, {"final_code": "mine"}, {"teacher_max_new_tokens": [8, 8]},
                {"max_examples": 0}, {"collapse_guard_threshold": 0.0}, {"teacher": " "}):
        with pytest.raises(WarmStartError):
            WarmStartConfig(**bad)


def test_the_recipe_yaml_only_names_known_fields():
    """Every key of configs/sft_warmstart.yaml belongs to ModelConfig, SFTConfig, WarmStartConfig,
    BenchmarkEvalConfig, or to the data selection and benchmark choice train.py owns, and each dataclass
    accepts its share."""
    recipe = yaml.safe_load((Path(__file__).parents[1] / "configs" / "sft_warmstart.yaml").read_text())
    assert recipe.pop("job") == "sft"
    data_keys = {"train_splits", "max_reference_lines", "max_train_problems", "torch_threads", "bench_benchmark"}
    shares = {cls: {k: v for k, v in recipe.items() if k in {f.name for f in dataclasses.fields(cls)}}
              for cls in (ModelConfig, SFTConfig, WarmStartConfig, BenchmarkEvalConfig)}
    assert set(recipe) - data_keys == set().union(*shares.values())
    ModelConfig(**shares[ModelConfig])
    warm = WarmStartConfig(**shares[WarmStartConfig])
    sft = SFTConfig(**shares[SFTConfig])
    assert BenchmarkEvalConfig(**shares[BenchmarkEvalConfig]).bench_eval_steps <= sft.max_steps  # it fires
    assert (sft.learning_rate, sft.warmup_steps, warm.keep_only_passing) == (1e-4, 0.1, True)
    assert (shares[ModelConfig]["lora_r"], shares[ModelConfig]["lora_alpha"]) == (8, 16)


def _fields(row: dict) -> dict:
    return {"problem": row["problem"], "entry_point": row["entry_point"], "signature": row["signature"]}


def _labelled_spans(input_ids: list[int], labels: list[int]) -> list[list[int]]:
    spans, current = [], []
    for token, label in zip(input_ids, labels):
        if label != -100:
            assert label == token
            current.append(token)
        elif current:
            spans.append(current)
            current = []
    return spans + ([current] if current else [])


def test_direct_examples_are_the_direct_prompt_and_the_formatted_reference(rows):
    dataset = build_sft_dataset(rows, TEMPLATES, keep_only_passing=False)
    assert dataset.column_names == ["task_id", "prompt", "completion"]
    assert len(dataset) == len(rows)
    for row, example in zip(rows, dataset):
        assert example["task_id"] == row["task_id"]
        assert example["prompt"] == direct_messages(TEMPLATES, **_fields(row))
        assert example["completion"] == [{"role": "assistant", "content": format_code(row["reference_solution"])}]


def test_targets_that_fail_their_tests_are_dropped_and_counted(rows):
    wrong = dict(rows[0], task_id="wrong", reference_solution="def add(a, b):\n    return a - b\n")
    nameless = dict(rows[1], task_id="nameless", entry_point="not an identifier")
    untested = dict(rows[2], task_id="untested", tests=[])
    examples, report = sft_examples([rows[0], wrong, nameless, untested, rows[3]], TEMPLATES)
    assert [e["task_id"] for e in examples] == [rows[0]["task_id"], rows[3]["task_id"]]
    assert report.to_dict() == {"rows": 5, "kept": 2,
                                "dropped": {"code_failed": 1, "invalid_row": 1, "no_tests": 1}}
    expected = "no SFT example left.*0 of 2 rows kept; dropped: code_failed 1, no_tests 1"
    with pytest.raises(WarmStartError, match=expected):
        build_sft_dataset([wrong, untested], TEMPLATES)


def test_examples_longer_than_max_length_are_dropped(rows, tiny):
    tokenizer = load_tokenizer(str(tiny))
    lengths = [len(render_ids(tokenizer, e["prompt"] + e["completion"], add_generation_prompt=False))
               for e in build_sft_dataset(rows, TEMPLATES, keep_only_passing=False)]
    limit = sorted(lengths)[1]
    examples, report = sft_examples(rows, TEMPLATES, tokenizer, keep_only_passing=False, max_length=limit)
    fitting = [row["task_id"] for row, n in zip(rows, lengths) if n <= limit]
    assert 0 < len(fitting) < len(rows)
    assert [e["task_id"] for e in examples] == fitting
    assert report.dropped == {"too_long": len(rows) - len(fitting)}


@pytest.fixture(scope="module")
def trained(rows, tiny, tmp_path_factory):
    """Two real SFT steps on the direct examples; LoRA weights of both roles before and after."""
    policies = load_policies(ModelConfig(model_name_or_path=str(tiny), lora_r=4, lora_alpha=8))
    model = policies.activate("generator")
    before = {n: p.detach().clone() for n, p in model.named_parameters() if "lora_" in n}
    dataset = build_sft_dataset(rows, TEMPLATES, keep_only_passing=False)
    args = sft_training_args(str(tmp_path_factory.mktemp("sft")), max_steps=2, per_device_train_batch_size=2,
                             warmup_steps=0, save_strategy="no", learning_rate=1e-2)
    trainer = SFTTrainer(model=model, args=args, train_dataset=dataset, processing_class=policies.tokenizer)
    trainer.train()
    after = {n: p.detach().clone() for n, p in model.named_parameters() if "lora_" in n}
    return trainer, policies, before, after


def test_two_sft_steps_change_the_generator_adapter_and_not_the_discriminator(trained):
    _, _, before, after = trained
    generator = [n for n in before if ".generator." in n]
    discriminator = [n for n in before if ".discriminator." in n]
    assert generator and discriminator and len(generator) + len(discriminator) == len(before)
    assert any(not torch.equal(before[n], after[n]) for n in generator if "lora_B" in n)
    assert all(torch.equal(before[n], after[n]) for n in discriminator)


def test_trl_puts_the_loss_on_the_completion_only(trained, rows):
    trainer, policies, _, _ = trained
    tokenizer = policies.tokenizer
    assert trainer.completion_only_loss  # TRL's default for prompt-completion data
    prepared = trainer.train_dataset
    for row, example in zip(rows, prepared):
        spans = _labelled_spans(example["input_ids"], example["labels"])
        assert len(spans) == 1  # one contiguous labelled block ...
        assert tokenizer.decode(spans[0]) == format_code(row["reference_solution"]) + CLOSING
        assert example["labels"][-len(spans[0]):] == spans[0]  # ... at the very end
        prompt_ids = render_ids(tokenizer, direct_messages(TEMPLATES, **_fields(row)))
        assert example["input_ids"][: len(prompt_ids)] == prompt_ids
        assert set(example["labels"][: len(prompt_ids)]) == {-100}
        # our own turn-wise tokenization agrees token for token with TRL's
        ours = assistant_only_tokens(tokenizer, example["prompt"], example["completion"])
        assert ours == {"input_ids": example["input_ids"], "labels": example["labels"]}
    batch = trainer.data_collator([prepared[0], prepared[1]])
    assert ((batch["labels"] != -100) == torch.tensor(
        [[lab != -100 for lab in ex["labels"]] + [False] * (batch["labels"].shape[1] - len(ex["labels"]))
         for ex in (prepared[0], prepared[1])])).all()


def test_stage_format_labels_cover_exactly_the_assistant_turns(rows, tiny):
    tokenizer = load_tokenizer(str(tiny))
    row = rows[0]
    stages = ["It adds two numbers.", "1. take a and b\n2. return their sum", "return a + b",
              "ints of any size", "ignored: the reference replaces it"]
    chain = Chain(task_id=row["task_id"], entry_point=row["entry_point"], stage_texts=stages)
    dataset = build_sft_dataset([row], TEMPLATES, tokenizer, stage_format=True, chains=[chain])
    example = dataset[0]
    answers = [*stages[:4], format_code(row["reference_solution"])]
    conversation = generator_messages(TEMPLATES, **_fields(row), outputs=answers)
    assert example["prompt"] == conversation[:2]  # system + the stage-1 request
    assert example["completion"] == conversation[2:]
    assert [m["role"] for m in example["completion"]] == ["assistant", "user"] * 4 + ["assistant"]

    tokenized = assistant_only_dataset(dataset, tokenizer)[0]
    assert tokenized["input_ids"] == render_ids(tokenizer, conversation, add_generation_prompt=False)
    spans = _labelled_spans(tokenized["input_ids"], tokenized["labels"])
    assert [tokenizer.decode(s) for s in spans] == [answer + CLOSING for answer in answers]


@pytest.mark.slow
def test_stage_format_with_a_teacher_keeps_only_passing_chains(rows, tiny):
    config = WarmStartConfig(stage_format=True, teacher=str(tiny), teacher_max_new_tokens=[6],
                             teacher_temperature=1.0, final_code="teacher")
    torch.manual_seed(0)
    chains = teacher_chains(rows[:2], config)
    assert [c.task_id for c in chains] == [r["task_id"] for r in rows[:2]]
    assert all(len(c.stage_texts) == 5 and all(t.strip() for t in c.stage_texts) for c in chains)
    # The tiny model's own code never passes (6 random tokens): every chain is dropped, and said why.
    with pytest.raises(WarmStartError, match=r"no SFT example left.*0 of 2 rows kept; dropped: (no_code|code_failed)"):
        build_sft_dataset(rows[:2], TEMPLATES, stage_format=True, chains=chains, final_code="teacher")
    # With the verified reference as stage 5 the same chains are kept.
    dataset = build_sft_dataset(rows[:2], TEMPLATES, stage_format=True, chains=chains, final_code="reference")
    for row, chain, example in zip(rows, chains, dataset):
        answers = [m["content"] for m in example["completion"] if m["role"] == "assistant"]
        assert answers == [t.strip() for t in chain.stage_texts[:4]] + [format_code(row["reference_solution"])]


@pytest.mark.slow
def test_run_warm_start_writes_both_adapters_and_rl_starts_from_them(rows, tiny, tmp_path):
    model_config = ModelConfig(model_name_or_path=str(tiny), lora_r=4, lora_alpha=8)
    args = sft_training_args(str(tmp_path / "sft"), max_steps=2, per_device_train_batch_size=2, warmup_steps=0,
                             save_strategy="no", learning_rate=1e-2, max_length=512)
    final = run_warm_start(model_config, args, WarmStartConfig(max_examples=3), rows)
    assert final == tmp_path / "sft" / FINAL_DIR
    record = json.loads((final / WARMSTART_RECORD_FILE).read_text())
    assert record["steps"] == 2 and record["data"] == {"rows": 3, "kept": 3, "dropped": {}}
    assert record["adapters_from"] == "trained" and record["final_loss"] > 0
    assert record["lora"] == {"r": 4, "alpha": 8} and record["base_model"] == str(tiny)

    start = load_policies(ModelConfig(model_name_or_path=str(tiny), generator_init_adapter=str(final),
                                      discriminator_init_adapter=str(final)))
    weights = dict(start.model.named_parameters())
    trained_b = [p for n, p in weights.items() if ".generator." in n and "lora_B" in n]
    fresh_b = [p for n, p in weights.items() if ".discriminator." in n and "lora_B" in n]
    assert trained_b and any(p.abs().sum() > 0 for p in trained_b)  # learned
    assert fresh_b and all(p.abs().sum() == 0 for p in fresh_b)  # still the fresh (B = 0) adapter


@pytest.mark.slow
def test_run_warm_start_falls_back_to_the_last_checkpoint_before_a_collapse(rows, tiny, tmp_path):
    """The guard watches a metric SFT always logs (entropy, ~10.8 on the random model), so it fires at the
    first log, step 2; checkpoint-1 was saved before it and becomes `final`."""
    model_config = ModelConfig(model_name_or_path=str(tiny), lora_r=4, lora_alpha=8)
    args = sft_training_args(str(tmp_path / "sft"), max_steps=4, per_device_train_batch_size=2, warmup_steps=0,
                             save_steps=1, logging_steps=2, learning_rate=1e-2)
    warm = WarmStartConfig(keep_only_passing=False, collapse_guard_metric="entropy", collapse_guard_threshold=0.5)
    final = run_warm_start(model_config, args, warm, rows)
    record = json.loads((final / WARMSTART_RECORD_FILE).read_text())
    assert record["steps"] == 2 and record["collapse_guard"]["stopped"]
    assert record["adapters_from"] == str(tmp_path / "sft" / "checkpoint-1")
    assert not (tmp_path / "sft" / "checkpoint-2").exists()  # the collapsed step was not saved
    for role in ("generator", "discriminator"):
        assert (final / role / "adapter_model.safetensors").read_bytes() == \
            (tmp_path / "sft" / "checkpoint-1" / role / "adapter_model.safetensors").read_bytes()


@pytest.mark.slow
def test_a_collapse_before_any_checkpoint_is_an_error_that_keeps_the_adapters(rows, tiny, tmp_path):
    model_config = ModelConfig(model_name_or_path=str(tiny), lora_r=4, lora_alpha=8)
    args = sft_training_args(str(tmp_path / "sft"), max_steps=4, per_device_train_batch_size=2, save_strategy="no")
    warm = WarmStartConfig(keep_only_passing=False, collapse_guard_metric="entropy", collapse_guard_threshold=0.5)
    with pytest.raises(WarmStartError, match="collapsed .* before any checkpoint was saved"):
        run_warm_start(model_config, args, warm, rows)
    assert (tmp_path / "sft" / "collapsed" / "generator" / "adapter_config.json").is_file()
    assert not (tmp_path / "sft" / FINAL_DIR).exists()
