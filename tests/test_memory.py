"""pipeline.tools.memory (issue 14): the peak-memory estimate of a recipe.

Known answers first (parameter counts by hand, against transformers and peft, and against the real embedded
model), then the formulas against what PyTorch really holds on CPU: the tensors autograd saves per decoder
layer (fp32, and the GPU recipes' path: a 4-bit base under bf16 autocast), and the peak of live tensors over a
whole training micro-step with TRL's fused LM head. Then the recipes: each GPU recipe against its card, and the
command's output. No GPU needed; the CPU validation of a whole run is in docs/training.md ("Memory").
"""

from __future__ import annotations

import json
import tempfile

import pytest
import torch

from pipeline.tools import memory as M

ALL = list(M.ATTENTION_MLP)
TINY = {"model_type": "llama", "hidden_size": 8, "intermediate_size": 16, "num_hidden_layers": 2,
        "num_attention_heads": 2, "num_key_value_heads": 1, "vocab_size": 10, "tie_word_embeddings": True}


# ----------------------------------------------------------------------------- parameter counts


def test_parameter_counts_of_a_tiny_config_by_hand():
    shape = M.ModelShape.from_config(TINY)
    assert (shape.head_dim, shape.q_width, shape.kv_width) == (4, 8, 4)
    # one layer: q 8x8 + k 8x4 + v 8x4 + o 8x8 + gate, up, down 8x16 each = 576 weights, 2 norms x 8
    assert shape.layer_linear_weights() == 64 + 32 + 32 + 64 + 3 * 128 == 576
    assert shape.parameters == 2 * (576 + 16) + 10 * 8 + 8 == 1272  # + embedding + final norm
    assert M.ModelShape.from_config({**TINY, "tie_word_embeddings": False}).parameters == 1272 + 80  # LM head
    assert M.ModelShape.from_config({**TINY, "model_type": "qwen2"}).parameters == 1272 + 2 * (8 + 4 + 4)  # q/k/v bias
    # LoRA rank 2 on q and v: 2 layers x (2 x (8 + 8) + 2 x (8 + 4))
    assert shape.lora_parameters(2, ["q_proj", "v_proj"]) == 2 * (32 + 24) == 112
    assert shape.lora_parameters(1, ALL) == 2 * ((8 + 8) + 2 * (8 + 4) + (8 + 8) + 3 * (8 + 16))


def _transformers_count(config: dict) -> int:
    from transformers import AutoConfig, AutoModelForCausalLM

    fields = {k: v for k, v in config.items() if not k.startswith("_") and k not in ("model_type", "architectures")}
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(AutoConfig.for_model(config["model_type"], **fields))
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("variant", [{}, {"tie_word_embeddings": False}, {"model_type": "qwen2"},
                                     {"num_key_value_heads": 2, "head_dim": 6}])
def test_counts_equal_transformers_models(variant):
    config = {**TINY, **variant}
    assert M.ModelShape.from_config(config).parameters == _transformers_count(config)


@pytest.mark.parametrize("name", ["qwen2.5-coder-1.5b-instruct", "qwen2.5-coder-7b-instruct"])
def test_stored_qwen_configs_give_the_model_cards_counts(name):
    path = M.MODEL_CONFIG_DIR / f"{name}.json"
    config = json.loads(path.read_text())
    shape = M.ModelShape.from_file(path)
    assert shape.parameters == _transformers_count(config)
    card = config["_model_card"]
    assert shape.parameters == pytest.approx(card["parameters"], rel=0.005)
    assert shape.non_embedding_parameters == pytest.approx(card["non_embedding_parameters"], rel=0.005)
    assert M.find_model_config(config["_name_or_path"]) == path


def test_embedded_model_count_equals_the_loaded_model():
    from transformers import AutoModelForCausalLM

    folder = M.find_model_config(None).parent
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    real = sum(p.numel() for p in model.parameters())
    assert M.ModelShape.from_file(folder).parameters == pytest.approx(real, rel=0.01)
    assert M.ModelShape.from_file(folder).parameters == real  # in fact exactly


def test_lora_count_equals_peft():
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaConfig, LlamaForCausalLM

    fields = {k: v for k, v in TINY.items() if k != "model_type"}
    model = get_peft_model(LlamaForCausalLM(LlamaConfig(**fields)), LoraConfig(r=3, target_modules=ALL))
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert M.ModelShape.from_config(TINY).lora_parameters(3, ALL) == trainable


def test_nf4_storage_per_parameter():
    """4 bits + a one-byte absmax per 64 weights + an fp32 per 256 absmax = 4.127 bits (QLoRA's ~0.127 bit)."""
    shape = M.ModelShape.from_config(json.loads((M.MODEL_CONFIG_DIR / "qwen2.5-coder-7b-instruct.json").read_text()))
    recipe = M.Recipe(load_in_4bit=True, nested_quant=True)
    total, _ = M.weight_bytes(shape, recipe)
    linear = shape.num_layers * shape.layer_linear_weights()
    kept = shape.parameters - linear
    assert (total - kept * 4) / linear * 8 == pytest.approx(4.127, abs=0.002)


# ----------------------------------------------------------------------------- formulas against PyTorch on CPU


def _saved_bytes(model, ids, mask, autocast: bool) -> int:
    """Bytes of the distinct storages autograd saves for backward in one forward, parameters excluded."""
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    seen: dict[int, int] = {}

    def pack(t):
        storage = t.untyped_storage()
        if storage.data_ptr() not in params:
            seen.setdefault(storage.data_ptr(), storage.nbytes())
        return t

    context = torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t), context:
        model(input_ids=ids, attention_mask=mask)
    return sum(seen.values())


def _peft_backbone(config: dict, layers: int, targets, dropout: float, four_bit: bool):
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training
    from transformers import AutoConfig, AutoModelForCausalLM, BitsAndBytesConfig

    torch.manual_seed(0)
    fields = {k: v for k, v in config.items() if k != "model_type"}
    model_config = AutoConfig.for_model(config["model_type"], **{**fields, "num_hidden_layers": layers})
    model = AutoModelForCausalLM.from_config(model_config)
    if four_bit:
        folder = tempfile.mkdtemp()
        model.to(torch.bfloat16).save_pretrained(folder)
        quantization = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                                          bnb_4bit_compute_dtype=torch.bfloat16)
        model = AutoModelForCausalLM.from_pretrained(folder, quantization_config=quantization, dtype=torch.bfloat16,
                                                     device_map={"": "cpu"})
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
    for param in model.parameters():
        param.requires_grad_(False)
    peft_model = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, lora_dropout=dropout, target_modules=targets))
    peft_model.train()
    return peft_model.base_model.model.model  # the decoder stack: layers and final norm, no LM head


SMALL = {"model_type": "llama", "hidden_size": 256, "intermediate_size": 768, "num_attention_heads": 4,
         "num_key_value_heads": 2, "vocab_size": 1024, "tie_word_embeddings": True}


@pytest.mark.parametrize("targets,dropout", [(["q_proj", "v_proj"], 0.0), (ALL, 0.0), (ALL, 0.05)])
def test_layer_formula_equals_saved_tensors_fp32(targets, dropout):
    """The CPU recipes' path: fp32 weights and activations, no autocast. One layer's saved bytes are the
    difference between a 2-layer and a 1-layer model on the same padded batch."""
    batch, seq = 2, 64
    ids = torch.randint(0, 1000, (batch, seq))
    mask = torch.ones_like(ids)
    mask[0, :5] = 0  # left padding: SDPA gets a mask, as in GRPO batches
    per_layer = [_saved_bytes(_peft_backbone(SMALL, n, targets, dropout, False), ids, mask, False) for n in (1, 2)]
    shape = M.ModelShape.from_config({**SMALL, "num_hidden_layers": 1})
    recipe = M.Recipe(device="cpu", weight_dtype="float32", autocast=None, lora_r=8, lora_targets=tuple(targets),
                      lora_dropout=dropout)
    expected = sum(M.layer_activation_bytes(shape, M.Precision.of(recipe), recipe, seq).values()) * batch * seq
    assert per_layer[1] - per_layer[0] == expected


@pytest.mark.parametrize("dropout", [0.0, 0.05])
def test_layer_formula_equals_saved_tensors_4bit_autocast(dropout):
    """The GPU recipes' path, run on CPU: NF4 base through prepare_model_for_kbit_training (fp32 residual stream,
    fp32 outputs of the 4-bit layers), LoRA on every projection, bf16 autocast. Two CPU differences are part of
    the formula's Precision: dropout keeps fp32 noise here (CUDA's fused dropout keeps a bool mask), hence
    device="cpu"."""
    pytest.importorskip("bitsandbytes")
    qwen = {**SMALL, "model_type": "qwen2", "tie_word_embeddings": False}
    batch, seq = 2, 64
    ids = torch.randint(0, 1000, (batch, seq))
    mask = torch.ones_like(ids)
    mask[0, :5] = 0
    per_layer = [_saved_bytes(_peft_backbone(qwen, n, ALL, dropout, True), ids, mask, True) for n in (1, 2)]
    shape = M.ModelShape.from_config({**qwen, "num_hidden_layers": 1})
    recipe = M.Recipe(device="cpu", load_in_4bit=True, weight_dtype="bfloat16", autocast="bfloat16", lora_r=8,
                      lora_targets=tuple(ALL), lora_dropout=dropout)
    expected = sum(M.layer_activation_bytes(shape, M.Precision.of(recipe), recipe, seq).values()) * batch * seq
    autocast_weight_copies = shape.lora_parameters(8, ALL) * 2  # bf16 casts of the layer's LoRA weights
    assert per_layer[1] - per_layer[0] == expected + autocast_weight_copies


@pytest.mark.parametrize("checkpointing,targets,dropout,vocab,mlp", [
    (False, ["q_proj", "v_proj"], 0.0, 40000, 384),  # the LM head's CPU working set is the peak
    (False, ALL, 0.05, 1000, 8192),  # all activations saved
    (True, ["q_proj", "v_proj"], 0.0, 1000, 8192),  # one layer recomputed and its backward
    (True, ALL, 0.05, 1000, 8192),
])
def test_training_peak_equals_live_tensors(checkpointing, targets, dropout, vocab, mlp):
    """A whole micro-step as GRPOTrainer runs it (TRL's fused LM head, log-probs of the completion tokens,
    backward): the peak of live tensors, measured, against the training phase of the estimate."""
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaConfig, LlamaForCausalLM
    from trl.trainer.utils import add_fused_lm_head

    config = {"model_type": "llama", "hidden_size": 128, "intermediate_size": mlp, "num_hidden_layers": 3,
              "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": vocab, "tie_word_embeddings": True}
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(**{k: v for k, v in config.items() if k != "model_type"}))
    for param in model.parameters():
        param.requires_grad_(False)
    add_fused_lm_head(model, temperature=0.9, outputs=("log_probs", "entropy"))
    model = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, lora_dropout=dropout, target_modules=targets))
    if checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.enable_input_require_grads()
    model.train()
    batch, prompt, completion = 2, 40, 200
    ids = torch.randint(0, min(vocab, 900), (batch, prompt + completion))
    mask = torch.ones_like(ids)
    mask[0, :7] = 0
    mask[1, -13:] = 0
    labels = ids.masked_fill(mask == 0, -100)
    labels[:, :-completion] = -100
    with M.LiveTensorBytes(ignore=[*model.parameters(), *model.buffers()]) as live:
        out = model(input_ids=ids, attention_mask=mask, labels=labels, fused_lm_head=True)
        (out.log_probs.sum() / 100).backward()
    recipe = M.Recipe(device="cpu", weight_dtype="float32", autocast=None, lora_r=8, lora_targets=tuple(targets),
                      lora_dropout=dropout, micro_batch=batch, gradient_checkpointing=checkpointing)
    seq = prompt + completion
    est = M.estimate(M.ModelShape.from_config(config), recipe, M.Layout(prompt, seq, prompt, seq, (), ()))
    predicted = est.phase_bytes("training") - est.part("gradients").bytes  # the LoRA grads are parameters' .grad
    assert predicted == pytest.approx(live.peak, rel=0.03)


def test_chain_layout_matches_a_real_chain(tmp_path):
    """The token widths the estimate renders are those of pipeline.chain's real conversations. The estimate takes
    every stage to fill its budget (the worst case), so the random model's end-of-turn tokens are suppressed:
    each stage then runs to its budget on every machine and dtype, where an early stop would depend on the CPU."""
    from pipeline.chain import ChainConfig, generate_chains
    from pipeline.models import ModelConfig
    from pipeline.models.policies import load_policies
    from pipeline.models.tiny import build_tiny_model

    problem = {"task_id": "t", "problem": "Return the sum of a list of integers.", "entry_point": "total",
               "signature": "def total(xs):"}
    recipe = M.Recipe(generator_tokens=(12, 20, 7, 15, 9), discriminator_tokens=(10, 6, 8, 5, 11))
    policies = load_policies(ModelConfig(model_name_or_path=str(build_tiny_model(tmp_path / "tiny")), lora_r=4))
    eos = policies.model.generation_config.eos_token_id
    policies.model.generation_config.suppress_tokens = eos if isinstance(eos, list) else [eos]
    chain = generate_chains(policies, [problem], ChainConfig(generator_tokens=recipe.generator_tokens,
                                                             discriminator_tokens=recipe.discriminator_tokens,
                                                             temperature=0))[0]
    assert [len(g) for g in chain.generator.generated] == list(recipe.generator_tokens)
    assert [len(d) for d in chain.discriminator.generated] == list(recipe.discriminator_tokens)
    layout = M.chain_layout(policies.tokenizer, recipe, problem)
    gen = chain.generator
    assert layout.generator_prompt == len(gen.prompt)
    assert layout.generator_turns == tuple(map(len, gen.inserted))
    assert layout.generator_width == len(gen.prompt) + sum(map(len, gen.generated)) + sum(map(len, gen.inserted))
    disc = chain.discriminator
    real = len(disc.prompt) + sum(map(len, disc.generated)) + sum(map(len, disc.inserted))
    # the discriminator's turns quote the generator's text, re-tokenised: noise tokens do not round-trip exactly
    assert layout.discriminator_width == pytest.approx(real, rel=0.15)


# ----------------------------------------------------------------------------- the recipes


@pytest.fixture(scope="module")
def gpu_estimates():
    return {name: M.estimate_recipe(f"configs/{name}.yaml")
            for name in ("qwen2.5-coder-1.5b-4090", "qwen2.5-coder-7b-5090")}


def test_gpu_recipes_fit_their_cards(gpu_estimates):
    small, large = gpu_estimates["qwen2.5-coder-1.5b-4090"], gpu_estimates["qwen2.5-coder-7b-5090"]
    assert small.recipe.device == large.recipe.device == "cuda" and small.recipe.load_in_4bit
    assert small.fits(24), M.table(small)
    assert large.fits(32), M.table(large)
    # what drives them: fp32 KV cache (a 4-bit model's residual stream is fp32) and checkpointed activations
    for est in (small, large):
        assert est.recipe.gradient_checkpointing
        assert est.part("kv_cache").gib > 8
        assert est.part("activations_other").gib > 100  # without checkpointing neither would fit anything


def test_gpu_recipe_weights(gpu_estimates):
    """NF4 linear layers; the embedding (and the 7B's untied LM head) upcast to fp32 by
    prepare_model_for_kbit_training."""
    small, large = gpu_estimates["qwen2.5-coder-1.5b-4090"], gpu_estimates["qwen2.5-coder-7b-5090"]
    assert small.part("weights").gib == pytest.approx((1.310e9 * 0.5159 + 0.2336e9 * 4) / M.GIB, rel=0.01)
    assert large.part("weights").gib == pytest.approx((6.526e9 * 0.5159 + 1.0902e9 * 4) / M.GIB, rel=0.01)


def test_command_lists_every_part(capsys):
    assert M.main(["--config", "configs/qwen2.5-coder-7b-5090.yaml"]) == 0
    out = capsys.readouterr().out
    est = M.estimate_recipe("configs/qwen2.5-coder-7b-5090.yaml")
    for part in est.parts:
        assert part.label in out
    for words in ("base model weights", "LoRA weights", "AdamW states", "KV cache", "activations saved",
                  "logits", "CUDA context", "TOTAL peak", "24 GiB:", "32 GiB:"):
        assert words in out
    assert M.main(["--config", "configs/smoke.yaml", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["recipe"]["device"] == "cpu" and "CUDA context" not in json.dumps(data["parts"])
    assert data["total_gib"] == pytest.approx(sum(p["gib"] for p in data["parts"] if p["phase"] == "persistent")
                                              + max(data["generation_gib"], data["training_gib"]))
    assert M.main(["--config", "configs/no_such_recipe.yaml"]) == 2
    assert capsys.readouterr().err.startswith("error: --config configs/no_such_recipe.yaml: ")


def test_overrides_and_model_config(tmp_path):
    base = M.estimate_recipe("configs/qwen2.5-coder-1.5b-4090.yaml")
    halved = M.estimate_recipe("configs/qwen2.5-coder-1.5b-4090.yaml", ["--per_device_train_batch_size", "4"])
    assert halved.recipe.micro_batch == 4 and halved.part("activations").bytes < base.part("activations").bytes
    seven = M.MODEL_CONFIG_DIR / "qwen2.5-coder-7b-instruct.json"
    swapped = M.estimate_recipe("configs/qwen2.5-coder-1.5b-4090.yaml", model_config=str(seven))
    assert swapped.shape.hidden_size == 3584
    with pytest.raises(M.MemoryEstimateError):
        M.find_model_config("someone/unknown-model")
