"""Generation paths of evaluate.py and pipeline.tools.solve on a tiny random model (its output is noise, so
these tests check the machinery: runs, base vs adapter, best-of-N, stages, artefacts, model card).

The embedded model is converted once into a pytest temporary folder (~20 s) for its tokenizer, as in
test_models.py, so no test depends on a user's cache.
"""

from __future__ import annotations

import json
import re
from importlib.util import module_from_spec, spec_from_file_location
from pathlib import Path

import pytest
import torch

from datasets_build.mini import mini_file
from prompts.roles import ROLES
from pipeline.models.adapters import attach_role_adapters, save_adapters
from pipeline.models.embedded import embedded_model_dir
from pipeline.engines.base import Sampling
from pipeline.evaluation.generation import CodeBlockDone, HfBackend
from pipeline.evaluation.loading import load_eval_policies
from pipeline.models import ModelConfig, load_base_model, load_tokenizer
from pipeline.tools.solve import main as solve_main
from pipeline.models.tiny import build_tiny_model

ROOT = Path(__file__).resolve().parents[1]
CONVERSATIONS = [[{"role": "user", "content": "Write add(a, b)."}],
                 [{"role": "user", "content": "Reverse a string, please, in Python."}]]


def _load_cli():
    spec = spec_from_file_location("duelcoder_evaluate_gen", ROOT / "evaluate.py")
    module = module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    embedded = embedded_model_dir(tmp_path_factory.mktemp("cache"))
    return build_tiny_model(tmp_path_factory.mktemp("tiny"), tokenizer_source=str(embedded))


@pytest.fixture
def checkpoint(tiny_dir: Path, tmp_path: Path) -> Path:
    """A train.py-style checkpoint: generator/ and discriminator/ adapters with random (non-zero) LoRA B."""
    cfg = ModelConfig(model_name_or_path=str(tiny_dir))
    model = attach_role_adapters(load_base_model(cfg, str(tiny_dir)), cfg, ROLES)
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.copy_(torch.randn(param.shape, generator=generator) * 0.5)
    return save_adapters(model, tmp_path / "ckpt")


def test_base_run_is_the_base_model(tiny_dir: Path, checkpoint: Path) -> None:
    policies, _ = load_eval_policies(str(tiny_dir), str(checkpoint))
    backend = HfBackend(policies.model, policies.tokenizer)
    # one sequence per batch, as below: padded batches break this random model's near-ties differently
    greedy = Sampling(max_new_tokens=12, temperature=0.0, top_p=0.95, batch_size=1)
    base_texts = [g.text for g in backend.with_adapters(False).generate(CONVERSATIONS, "generator", greedy)]
    adapter_texts = [g.text for g in backend.generate(CONVERSATIONS, "generator", greedy)]

    plain = load_base_model(ModelConfig(model_name_or_path=str(tiny_dir)), str(tiny_dir))
    tokenizer = load_tokenizer(str(tiny_dir))
    expected = []
    for conversation in CONVERSATIONS:  # one at a time, no padding, no peft
        text = tokenizer.apply_chat_template(conversation, tokenize=False, add_generation_prompt=True)
        ids = tokenizer(text, return_tensors="pt", add_special_tokens=False)
        out = plain.generate(**ids, max_new_tokens=12, do_sample=False, pad_token_id=tokenizer.pad_token_id)
        expected.append(tokenizer.decode(out[0, ids["input_ids"].shape[1]:], skip_special_tokens=True))
    assert base_texts == expected
    assert adapter_texts != base_texts


def test_a_reply_start_is_prefilled_context_and_begins_the_answer(tiny_dir: Path) -> None:
    """The answer after a reply start is the plain greedy continuation of prompt + start, and its text begins with
    the start (the direct-mode discriminator benchmark reads it like a chain's reply)."""
    policies, _ = load_eval_policies(str(tiny_dir), None)
    backend = HfBackend(policies.model, policies.tokenizer, use_adapters=False)
    greedy = Sampling(max_new_tokens=8, temperature=0.0, top_p=1.0, batch_size=1)
    start = "```python\nassert"
    answers = backend.generate(CONVERSATIONS, "discriminator", greedy, reply_start=start)
    plain = load_base_model(ModelConfig(model_name_or_path=str(tiny_dir)), str(tiny_dir))
    tokenizer = load_tokenizer(str(tiny_dir))
    for conversation, answer in zip(CONVERSATIONS, answers):
        text = tokenizer.apply_chat_template(conversation, tokenize=False, add_generation_prompt=True) + start
        ids = tokenizer(text, return_tensors="pt", add_special_tokens=False)
        out = plain.generate(**ids, max_new_tokens=8, do_sample=False, pad_token_id=tokenizer.pad_token_id)
        assert answer.text == start + tokenizer.decode(out[0, ids["input_ids"].shape[1]:], skip_special_tokens=True)
        assert answer.num_tokens <= 8


def test_logprobs_are_mean_token_log_probabilities(tiny_dir: Path, checkpoint: Path) -> None:
    policies, _ = load_eval_policies(str(tiny_dir), str(checkpoint))
    backend = HfBackend(policies.model, policies.tokenizer)
    sampling = Sampling(max_new_tokens=6, temperature=1.0, top_p=0.95, batch_size=2)
    generations = backend.generate(CONVERSATIONS, "generator", sampling, with_logprobs=True)
    assert all(g.logprob is not None and g.logprob < 0 and 1 <= g.num_tokens <= 6 for g in generations)


def test_answers_stop_after_a_closed_block_defining_the_entry_point(tiny_dir: Path) -> None:
    tokenizer = load_tokenizer(str(tiny_dir))
    prompt = tokenizer("Write add.", add_special_tokens=False)["input_ids"]
    stops = CodeBlockDone(tokenizer, len(prompt), ["add", "add"])
    answer = "Sure:\n```python\ndef helper():\n    pass\n```\nand\n```python\ndef add(a, b):\n    return a + b\n```"
    ids = tokenizer(answer, add_special_tokens=False)["input_ids"]
    verdicts = []
    for end in range(1, len(ids) + 1):  # row 0 writes the answer token by token; row 1 stays in prose
        row0 = prompt + ids[:end]
        row1 = prompt + tokenizer("x" * end, add_special_tokens=False)["input_ids"][:end]
        row1 += [tokenizer.pad_token_id] * (len(row0) - len(row1))
        verdicts.append(stops(torch.tensor([row0, row1]), torch.zeros(2, 1)).tolist())
    assert verdicts[-1] == [True, False]
    assert sum(done for done, _ in verdicts) == 1  # only once the second block (defining add) closed
    assert not any(other for _, other in verdicts)


def test_direct_compare_base_best_of_and_model_card(tiny_dir: Path, checkpoint: Path, tmp_path: Path) -> None:
    out = tmp_path / "direct"
    code = _load_cli().main([
        "--model", str(tiny_dir), "--adapter", str(checkpoint), "--benchmark", "humaneval-mini", "--limit", "2",
        "--best-of", "2", "--compare-base", "--max-new-tokens", "8", "--discriminator-tokens", "8",
        "--update-model-card", "--output-dir", str(out)])
    assert code == 0
    results = json.loads((out / "results.json").read_text())
    assert list(results["runs"]) == ["adapter", "base"]
    assert results["config"]["num_samples"] == 2 and results["config"]["temperature"] > 0
    for run in results["runs"].values():
        assert {"pass@1", "pass@2", "syntax_valid_rate", "collapse_rate", "best_of"} <= set(run)
        assert run["best_of"]["n"] == 2 and set(run["best_of"]["picked"]) == set(run["tasks"])
        assert len(run["mean_tokens_per_stage"]) == 1 and 0 < run["mean_tokens_per_stage"][0] <= 8
    samples = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    assert len(samples) == 2 * 2 * 2  # runs x tasks x samples
    assert all(s["logprob"] is not None for s in samples)
    assert "## Best-of-N" in (out / "report.md").read_text()
    card = (checkpoint / "README.md").read_text()
    assert card.count("## Evaluation") == 1 and "| adapter |" in card and "| base |" in card


@pytest.mark.slow
def test_staged_mode_scores_the_final_code(tiny_dir: Path, checkpoint: Path, tmp_path: Path) -> None:
    out = tmp_path / "staged"
    code = _load_cli().main([
        "--model", str(tiny_dir), "--adapter", str(checkpoint), "--mode", "staged", "--limit", "2",
        "--generator-tokens", "4", "--discriminator-tokens", "6", "--best-of", "2", "--output-dir", str(out)])
    assert code == 0
    results = json.loads((out / "results.json").read_text())
    assert results["stage_names"][0] == "Informal reasoning" and len(results["stage_names"]) == 5
    run = results["runs"]["adapter"]
    assert len(run["mean_tokens_per_stage"]) == 5 and len(run["mean_seconds_per_stage"]) == 5
    samples = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    assert all(len(s["texts"]) == 5 and s["completion"] == s["texts"][-1] for s in samples)


def test_solve_prints_the_whole_chain(tiny_dir: Path, checkpoint: Path, capsys: pytest.CaptureFixture) -> None:
    code = solve_main(["--model", str(tiny_dir), "--adapter", str(checkpoint), "--task-file", str(mini_file()),
                       "--task-id", "HumanEvalMini/0", "--generator-tokens", "4", "--discriminator-tokens", "4"])
    printed = capsys.readouterr().out
    assert code == 0
    for k in range(1, 6):
        assert f"=== Stage {k}/5:" in printed
    assert printed.count("--- discriminator tests (") == 5
    # noise fails add(): as a failed test, or, once the code reply's fence start makes it a program, as one that
    # does not load
    assert "=== Final code ===" in printed and re.search(r"official tests: (failed|error), 0/\d+ passed", printed)


@pytest.mark.parametrize(("args", "expected"), [
    (["--problem", "Add two numbers."], "no `def NAME(`"),
    (["--task-id", "HumanEvalMini/0", "--task-file", "missing.jsonl"], "does not exist"),
    (["--problem", "x", "--task-id", "HumanEval/0"], "either --problem"),
    (["--problem", "def f(x):", "--engine", "sglang"], "--engine must be transformers or vllm"),
    (["--problem", "def f(x):", "--engine", "vllm", "--engine_url", "http://127.0.0.1:9"], "is not reachable"),
])
def test_solve_bad_input_exits_2(args: list[str], expected: str, capsys: pytest.CaptureFixture) -> None:
    assert solve_main(args) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and expected in err
