"""The vllm generation engine against the transformers one, on a real vLLM server (issue 23).

One server (``.venv-vllm``, made by scripts/setup_vllm.sh; CI runs it) on a tiny random model serves both role
adapters for the whole module. The tiny model's output is noise, which makes the comparison strict: any wrong
token id at a turn boundary, a wrong adapter or a stale prefix changes what follows. The model has a head size
of 32 (hidden 128, 4 heads): vLLM's CPU attention supports no smaller head.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from pipeline.chain import ChainConfig, generate_chains
from pipeline.engines import VllmClient, VllmServer, VllmServerConfig, VllmServerError, model_stop_ids, open_vllm
from pipeline.models import ModelConfig
from pipeline.models.adapters import acting_as
from pipeline.models.policies import load_policies
from pipeline.models.tiny import build_tiny_model

ROOT = Path(__file__).resolve().parents[1]
PROBLEMS = [
    {"task_id": "a", "problem": "Add two numbers.", "entry_point": "add", "signature": "def add(a, b):"},
    {"task_id": "b", "problem": "Return the reverse of a list as a new list, without changing the input list.",
     "entry_point": "rev", "signature": "def rev(xs):"},
    {"task_id": "c", "problem": "x", "entry_point": "f"},
]
BUDGET = ChainConfig(generator_tokens=(12, 20, 7, 15, 9), discriminator_tokens=(10, 6, 8, 5, 11), temperature=0)
# vLLM's CPU kernels and PyTorch's sum in other orders: on this random model's nearly flat logits a greedy
# choice may flip between tokens whose logits differ by float noise (the same reason as tests/test_chain.py).
TIE = 1e-3
SERVER = VllmServerConfig(dtype="float32", max_lora_rank=16, kv_cache_gib=1, max_model_len=2048, max_loras=3)

pytestmark = pytest.mark.skipif(not (ROOT / ".venv-vllm" / "bin" / "python").exists(),
                                reason="no .venv-vllm: run ./scripts/setup_vllm.sh (CI does)")


def _randomise(policies, seed: int) -> None:
    """Distinct, non-zero adapters, so that the two roles (and two versions of one) really differ."""
    with torch.no_grad():
        generator = torch.Generator().manual_seed(seed)
        for name, param in policies.model.named_parameters():
            if "lora_B" in name:
                param.copy_(torch.randn(param.shape, generator=generator) * 0.5)


@pytest.fixture(scope="module")
def policies(tmp_path_factory):
    folder = build_tiny_model(tmp_path_factory.mktemp("tiny"), hidden_size=128)
    policies = load_policies(ModelConfig(model_name_or_path=str(folder), lora_r=4, dtype="float32"))
    policies.source = str(folder)
    _randomise(policies, seed=0)
    return policies


@pytest.fixture(scope="module")
def engine(policies, tmp_path_factory):
    work = tmp_path_factory.mktemp("vllm")
    saved = policies.save(work / "adapters")
    stop = model_stop_ids(policies.source, policies.tokenizer)
    with open_vllm(SERVER, policies.source, stop=stop, work_dir=work,
                   adapters={role: saved / role for role in ("generator", "discriminator")}) as engine:
        yield engine


def _check_against_transformers(policies, chains) -> tuple[int, int, list[float]]:
    """Every token each role generated through vLLM is the argmax (within TIE) of a plain transformers forward
    pass over its exact context with that role's adapter; returns (exact argmax, tokens, |logprob gaps|)."""
    model = policies.model
    exact = total = 0
    gaps: list[float] = []
    for chain in chains:
        for role, turns in (("generator", chain.generator), ("discriminator", chain.discriminator)):
            sequence, positions = list(turns.prompt), []
            for stage, generated in enumerate(turns.generated):
                if stage:
                    sequence += turns.inserted[stage - 1]
                positions += [(len(sequence) + i, stage, i) for i in range(len(generated))]
                sequence += generated
            with acting_as(model, role), torch.no_grad():
                logits = model(input_ids=torch.tensor([sequence])).logits[0].float()
            for position, stage, index in positions:
                scores, chosen = logits[position - 1], sequence[position]
                gap = (scores.max() - scores[chosen]).item()
                assert gap <= TIE, (chain.task_id, role, stage + 1, position, gap)
                exact += gap == 0.0
                total += 1
                trainer_logprob = torch.log_softmax(scores, -1)[chosen].item()
                gaps.append(abs(trainer_logprob - turns.logprobs[stage][index]))
    return exact, total, gaps


def test_greedy_chains_match_the_transformers_engine_for_both_roles(policies, engine):
    reference = generate_chains(policies, PROBLEMS, BUDGET)
    served = generate_chains(policies, PROBLEMS, BUDGET, engine=engine)
    exact, total, gaps = _check_against_transformers(policies, served)
    assert total > 100 and exact >= 0.98 * total, (exact, total)
    assert max(gaps) < 1e-3, max(gaps)  # the sampler's logprobs are the trainer's, up to float noise
    same = sum(a.stage_texts == b.stage_texts and a.test_texts == b.test_texts for a, b in zip(reference, served))
    print(f"vllm vs transformers: {same}/{len(PROBLEMS)} chains with equal texts, {exact}/{total} tokens exact argmax")
    assert all(b.generator.logprobs is not None and b.discriminator.logprobs is not None for b in served)


def test_adapters_off_is_the_base_model(policies, engine):
    base = engine.with_adapters(False)
    served = generate_chains(policies, PROBLEMS[:1], BUDGET, engine=base)
    with policies.model.disable_adapter():
        reference = generate_chains(policies, PROBLEMS[:1], BUDGET)
    assert served[0].generator.generated[0] == reference[0].generator.generated[0]
    assert served[0].generator.generated != generate_chains(policies, PROBLEMS[:1], BUDGET,
                                                            engine=engine)[0].generator.generated


def test_a_new_adapter_version_is_served_under_a_new_name(policies, engine, tmp_path):
    """After an optimizer step, the role's new weights are published as <role>-v2 and the old name is gone."""
    model = policies.model
    model.set_adapter("generator")
    params = [p for n, p in model.named_parameters() if ".generator." in n and "lora_" in n]
    for p in params:
        p.requires_grad_(True)
    optimizer = torch.optim.SGD(params, lr=5.0)
    ids = torch.tensor([policies.tokenizer("def add(a, b): return a + b")["input_ids"]])
    model.train()
    loss = model(input_ids=ids, labels=ids).loss
    loss.backward()
    optimizer.step()
    model.eval()
    before = engine.adapters.name("generator")
    new = engine.adapters.publish("generator", policies.save(tmp_path / "step1") / "generator")
    served_names = engine.client.models()
    assert new != before and new in served_names and before not in served_names
    served = generate_chains(policies, PROBLEMS[:2], BUDGET, engine=engine, with_tests=False)
    exact = total = 0
    for chain in served:
        sequence = list(chain.generator.prompt)
        for stage, generated in enumerate(chain.generator.generated):
            if stage:
                sequence += chain.generator.inserted[stage - 1]
            start = len(sequence)
            sequence += generated
            with acting_as(model, "generator"), torch.no_grad():
                logits = model(input_ids=torch.tensor([sequence])).logits[0].float()
            for position in range(start, len(sequence)):
                gap = (logits[position - 1].max() - logits[position - 1][sequence[position]]).item()
                assert gap <= TIE, (chain.task_id, stage + 1, position, gap)
                exact += gap == 0.0
                total += 1
    assert exact >= 0.98 * total, (exact, total)


def test_a_new_run_on_a_given_server_numbers_past_and_unloads_the_old_runs_versions(policies, engine, tmp_path):
    """A server given by URL outlives runs (a resume): the new run's first version of a role must not clash with
    the names the server still holds, and those are unloaded (they would fill --max-loras)."""
    from pipeline.engines import ServedAdapters

    held = [n for n in engine.client.models() if n.startswith("discriminator-v")]
    fresh = ServedAdapters(engine.client, tmp_path / "served")
    name = fresh.publish("discriminator", policies.save(tmp_path / "adapters") / "discriminator")
    now = engine.client.models()
    assert name not in held and name in now and not set(held) & set(now)
    engine.adapters.names["discriminator"] = name  # the module's engine serves the new version from here on
    engine.adapters.versions["discriminator"] = fresh.versions["discriminator"]


def test_a_refused_adapter_load_names_the_cause(engine, tmp_path):
    (tmp_path / "adapter_config.json").write_text("{\"r\": 4}")
    with pytest.raises(VllmServerError, match="refused to load adapter 'generator-v"):
        engine.client.load_adapter("generator-v99", tmp_path)


def test_an_unreachable_server_is_a_clear_error():
    from pipeline.engines.vllm_server import free_port

    client = VllmClient(f"http://127.0.0.1:{free_port()}", timeout_s=5)
    assert not client.healthy()
    with pytest.raises(VllmServerError, match="not reachable.*start it, or fix the URL"):
        client.check()


def test_a_missing_vllm_venv_says_how_to_make_it(tmp_path):
    server = VllmServer(tmp_path, VllmServerConfig(python=str(tmp_path / "nope" / "python")), log_dir=tmp_path)
    with pytest.raises(VllmServerError, match="setup_vllm.sh"):
        server.start()


def test_a_server_killed_mid_run_is_a_clear_error(policies, engine):
    """Last in this module: it kills the module's server. What train.py then prints (exit 2), and why the last
    checkpoint stays intact: the error is raised while generating, never while a checkpoint is written."""
    import os
    import signal
    import time

    pids = []
    for entry in Path("/proc").iterdir():
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode() if entry.name.isdigit() else ""
        except OSError:
            continue
        if "vllm.entrypoints.openai.api_server" in command and f"--model {policies.source} " in command:
            pids.append(int(entry.name))
    assert len(pids) == 1, pids
    os.kill(pids[0], signal.SIGKILL)
    time.sleep(1.0)
    with pytest.raises(VllmServerError, match=r"not reachable .*server log: .*vllm_server.log"):
        generate_chains(policies, PROBLEMS[:1], BUDGET, engine=engine, with_tests=False)
