"""The estimate itself, part by part (docs/training.md, "Memory"), and its table."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from typing import Any, Sequence

from pipeline.tools.memory.recipe import Layout, Precision, Recipe, chain_layout, load_tokenizer_for
from pipeline.tools.memory.shape import (
    CUDA_CONTEXT_GIB, DEFAULT_PROBLEM_TOKENS, GIB, LIMITS_GIB, LM_HEAD_TOKEN_TILE, LM_HEAD_VOCAB_TILE, NESTED_BLOCK,
    NF4_BLOCK, ModelShape, find_model_config,
)  # fmt: skip



# ----------------------------------------------------------------------------- the estimate


@dataclass
class Part:
    key: str
    label: str
    phase: str  # "persistent", "generation", "training", "scoring", or "info" (shown, not added)
    bytes: float
    how: str
    alternative: bool = False  # one of a phase's transients that come one after another: the phase takes the max

    @property
    def gib(self) -> float:
        return self.bytes / GIB


@dataclass
class Estimate:
    recipe: Recipe
    shape: ModelShape
    layout: Layout
    parts: list[Part] = field(default_factory=list)

    def phase_bytes(self, phase: str) -> float:
        """The phase's peak: everything it holds, plus the largest of its alternative transients."""
        held = sum(p.bytes for p in self.parts if p.phase == phase and not p.alternative)
        return held + max([p.bytes for p in self.parts if p.phase == phase and p.alternative], default=0.0)

    @property
    def phases(self) -> list[str]:
        """The phases that follow one another (their peaks do not add up)."""
        return [ph for ph in dict.fromkeys(p.phase for p in self.parts) if ph not in ("persistent", "info")]

    @property
    def total_bytes(self) -> float:
        return self.phase_bytes("persistent") + max(self.phase_bytes(ph) for ph in self.phases)

    @property
    def total_gib(self) -> float:
        return self.total_bytes / GIB

    @property
    def peak_phase(self) -> str:
        return max(self.phases, key=self.phase_bytes)

    def part(self, key: str) -> Part:
        return next(p for p in self.parts if p.key == key)

    def fits(self, limit_gib: float) -> bool:
        return self.total_gib <= limit_gib

    def to_dict(self) -> dict[str, Any]:
        return {
            "recipe": asdict(self.recipe), "model": asdict(self.shape), "layout": asdict(self.layout),
            "parts": [{**asdict(p), "gib": p.gib} for p in self.parts],
            "persistent_gib": self.phase_bytes("persistent") / GIB,
            "generation_gib": self.phase_bytes("generation") / GIB,
            "training_gib": self.phase_bytes("training") / GIB,
            "total_gib": self.total_gib, "peak_phase": self.peak_phase,
            "fits": {f"{limit}GiB": self.fits(limit) for limit in LIMITS_GIB},
        }


def weight_bytes(shape: ModelShape, recipe: Recipe) -> tuple[float, str]:
    """The frozen base model."""
    prec = Precision.of(recipe)
    if not recipe.load_in_4bit:
        n = shape.parameters
        return n * prec.weight, f"{n / 1e9:.3f}B params x {prec.weight} B ({recipe.weight_dtype})"
    linear = shape.num_layers * shape.layer_linear_weights()
    # 4 bits per weight + one absmax per 64-weight block: a byte with double quantisation (plus an fp32 per 256
    # blocks and a 256-entry fp32 code per matrix), else an fp32.
    per_param = 0.5 + (1 / NF4_BLOCK + 4 / (NF4_BLOCK * NESTED_BLOCK) if recipe.nested_quant else 4 / NF4_BLOCK)
    tables = shape.num_layers * 7 * (256 * 4 + 16 * 4) if recipe.nested_quant else shape.num_layers * 7 * 16 * 4
    kept = shape.parameters - linear  # embedding, LM head (untied), norms, biases
    how = (f"{linear / 1e9:.3f}B linear-layer params in NF4 ({per_param * 8:.3f} bit/param"
           f"{' with double quantisation' if recipe.nested_quant else ''}) + {kept / 1e9:.3f}B kept unquantised "
           f"(embedding{'' if shape.tied_embeddings else ', LM head'}, norms, biases) in fp32: "
           "prepare_model_for_kbit_training upcasts them")
    return linear * per_param + tables + kept * prec.unquantised, how


def layer_activation_bytes(shape: ModelShape, prec: Precision, recipe: Recipe, seq_len: int) -> dict[str, float]:
    """Bytes saved for backward by one decoder layer, per token of the micro-batch (the attention mask term grows
    with the padded sequence length ``seq_len``).

    Korthikanti et al. 2022 ("Reducing Activation Recomputation in Large Transformer Models", arXiv:2205.05198,
    sec. 4.1, eq. 1) count s*b*h*(34 + 5*a*s/h) bytes per layer for a GPT layer with 16-bit activations, 4h MLP,
    dropout, and attention scores in memory. Adapted, term by term, to what this stack saves: RMSNorm instead of
    LayerNorm, grouped KV heads expanded to all heads before SDPA (transformers' repeat_kv when a padding mask is
    present), SDPA's fused kernels (q, k, v, output and log-sum-exp saved, no a*s^2 scores, but the padding mask
    converted to a float mask per layer), a SwiGLU MLP of width I, no dropout in the base model, and LoRA's
    inputs on the adapted layers.
    """
    h, i, nq, r = shape.hidden_size, shape.intermediate_size, shape.q_width, recipe.lora_r
    out = {
        # two RMSNorms: each saves its input upcast to fp32 (the input itself when it is fp32) and 1/rms
        "norms": 2 * (4 * h + 4),
        # q, k and v (k and v expanded to every head), the output, and the fp32 log-sum-exp per head
        "attention": 4 * nq * prec.attention + 4 * shape.num_heads,
        # the boolean padding mask, converted per layer to a float mask in the query dtype and saved (b x s x s)
        "attention_mask": prec.attention * seq_len,
        # SwiGLU: silu saves gate, the product saves silu(gate) and up (I wide each)
        "mlp": 3 * i * prec.linear_out,
    }
    groups = {  # input of each adapted layer: (layers, width, dtype bytes of that input)
        "qkv": ([t for t in ("q_proj", "k_proj", "v_proj") if t in recipe.lora_targets], h, prec.residual),
        "o": ([t for t in ("o_proj",) if t in recipe.lora_targets], nq, prec.attention),
        "gate_up": ([t for t in ("gate_proj", "up_proj") if t in recipe.lora_targets], h, prec.residual),
        "down": ([t for t in ("down_proj",) if t in recipe.lora_targets], i, prec.linear_out),
    }
    lora = {}
    for name, (layers, width, in_bytes) in groups.items():
        if not layers:
            lora[name] = 0.0
        elif recipe.lora_dropout > 0:
            # each layer: its dropout mask, and lora_A's input (the dropped tensor, as autocast casts it)
            lora[name] = len(layers) * width * (prec.dropout_mask + (prec.autocast or prec.lora))
        elif prec.autocast:
            lora[name] = len(layers) * width * prec.autocast  # each lora_A saves its own autocast copy of the input
        elif in_bytes == prec.lora:
            # lora_A saves the layer's input itself, shared by the group; o_proj's input is a view of the SDPA
            # output that attention already saves
            lora[name] = 0 if name == "o" else width * prec.lora
        else:
            lora[name] = len(layers) * width * prec.lora  # peft casts the input to the adapter's fp32, per layer
    out["lora_inputs"] = lora["qkv"] + lora["o"] + lora["gate_up"]
    out["lora_down_input"] = lora["down"]
    out["lora_rank"] = len(recipe.lora_targets) * r * (prec.autocast or prec.lora)  # lora_A outputs, for lora_B
    return out


def layer_backward_bytes(shape: ModelShape, prec: Precision, saved: dict[str, float]) -> float:
    """What one layer's backward adds at its peak, per token, on top of what the layer saved: the MLP's gradient
    tensors (of the product, of silu(gate) and of up: 3 x I) and a few hidden-size ones, less down_proj's LoRA
    input, which its backward (the first to run) frees before those appear. A model of the order autograd runs
    and frees things in, checked against measured peaks on CPU (tests/test_memory.py)."""
    grads = 3 * shape.intermediate_size * prec.linear_out + 3 * shape.hidden_size * 4
    return max(0.0, grads - saved["lora_down_input"])


def lm_head_bytes(shape: ModelShape, prec: Precision, tokens: int, scored: int) -> dict[str, float]:
    """Working memory of TRL's fused LM head (trl.kernels.ChunkedLogProbFunction) beyond the activations:
    ``scored`` positions are projected in tiles of min(scored, 4096) tokens x 32768 vocabulary entries.

    On CUDA a Triton kernel folds each tile in place: one tile buffer, plus 16-bit copies of the hidden chunk and
    of the weight chunk when they are stored in fp32. On CPU the tile is folded with torch ops, whose temporaries
    are fp32 tiles: 3 more in the forward (the scaled logits, exp(z - max), their product) and 7 more in the
    backward (scaled logits twice, log p, p, the gradient, and two temporaries of its update) plus the boolean
    target mask. The backward also holds the fp32 gradient of the hidden states."""
    compute = prec.autocast or prec.residual
    tile_rows = min(scored, LM_HEAD_TOKEN_TILE)
    buffer = tile_rows * LM_HEAD_VOCAB_TILE * compute  # mm_buf is allocated 32768 wide whatever the vocabulary
    tile = tile_rows * min(LM_HEAD_VOCAB_TILE, shape.vocab_size)
    h = shape.hidden_size
    copies = 0.0
    if prec.unquantised != compute:  # weight[start:end].to(compute_dtype), hidden[chunk].to(compute_dtype)
        copies = min(LM_HEAD_VOCAB_TILE, shape.vocab_size) * h * compute + tile_rows * h * compute
    if prec.device == "cuda":
        forward = buffer + copies
        backward = buffer + copies
    else:
        forward = buffer + tile * 3 * 4 + copies
        backward = buffer + tile * (7 * 4 + 1) + copies
    grad_hidden = scored * h * 4 + tokens * h * prec.residual  # the kernel's fp32 accumulator, d(hidden states)
    return {"forward": forward, "backward": backward + grad_hidden, "buffer": buffer}


def prefill_bytes(shape: ModelShape, prec: Precision, rows: int, new: int, width: int) -> float:
    """Largest transient of one layer while ``rows`` conversations prefill ``new`` tokens on a cache ``width``
    wide (no gradient: nothing is kept between layers): attention (k and v of the whole cache expanded to every
    head by repeat_kv, the float mask, q and the output) or the MLP (3 intermediates), whichever is larger."""
    b = prec.generation
    expand = 2 * width * shape.q_width * b if shape.num_kv_heads < shape.num_heads else 0
    attention = rows * (expand + new * width * b + 2 * new * shape.q_width * b)
    mlp = rows * new * 3 * shape.intermediate_size * b
    return max(attention, mlp) + rows * new * shape.hidden_size * b * 2


def estimate(shape: ModelShape, recipe: Recipe, layout: Layout) -> Estimate:
    prec = Precision.of(recipe)
    est = Estimate(recipe, shape, layout)
    add = est.parts.append
    L, h = shape.num_layers, shape.hidden_size
    gpu = recipe.device == "cuda"

    # ---- persistent
    w, how = weight_bytes(shape, recipe)
    add(Part("weights", "base model weights", "persistent", w, how))
    lora_params = shape.lora_parameters(recipe.lora_r, recipe.lora_targets)
    sizes = recipe.adapter_bytes()
    dtypes = " + ".join(f"{b} B" for b in sizes)
    add(Part("lora", f"LoRA weights, {recipe.adapters} adapter(s)", "persistent", lora_params * sum(sizes),
             f"{recipe.adapters} x {lora_params / 1e6:.2f}M params (r={recipe.lora_r} on "
             f"{', '.join(recipe.lora_targets)}) x {dtypes}"
             + (" (generator cast to bf16 by GRPOTrainer on a 4-bit base, discriminator fp32)"
                if recipe.load_in_4bit else " (fp32)")))
    add(Part("optimizer", "AdamW states, both adapters", "persistent", 2 * lora_params * sum(sizes),
             f"exp_avg + exp_avg_sq in each adapter's dtype ({dtypes} per param, twice): DuelGRPOTrainer puts "
             "both adapters in one AdamW, and each has its states from its first step on"))
    if gpu:
        add(Part("cuda_context", "CUDA context (assumption)", "persistent", CUDA_CONTEXT_GIB * GIB,
                 f"assumption: {CUDA_CONTEXT_GIB} GiB for the CUDA context and library workspaces"))

    # ---- generation: both roles' conversations keep their caches until the chain ends
    rows = recipe.generation_rows
    kv_per_token = L * 2 * shape.kv_width * prec.generation
    widths = {role: layout.width(role) for role in ("generator", "discriminator")}
    add(Part("kv_cache", "KV cache, five-stage chain, both roles", "generation",
             kv_per_token * rows * sum(widths.values()),
             f"{L} layers x 2 x {shape.num_kv_heads} KV heads x {shape.head_dim} x {prec.generation} B = "
             f"{kv_per_token / 1024:.1f} KiB/token x {rows} sequences x (generator {widths['generator']} + "
             f"discriminator {widths['discriminator']} tokens)"))
    prefills = [(layout.generator_prompt, layout.generator_prompt), (layout.discriminator_prompt,
                                                                     layout.discriminator_prompt)]
    done = layout.generator_prompt + recipe_tokens(recipe, "generator")[0]
    for turn, out in zip(layout.generator_turns, recipe_tokens(recipe, "generator")[1:]):
        prefills.append((turn, done + turn))
        done += turn + out
    done = layout.discriminator_prompt + recipe_tokens(recipe, "discriminator")[0]
    for turn, out in zip(layout.discriminator_turns, recipe_tokens(recipe, "discriminator")[1:]):
        prefills.append((turn, done + turn))
        done += turn + out
    prefill = max(prefill_bytes(shape, prec, rows, new, width) for new, width in prefills)
    growth = max(widths.values()) * rows * 2 * shape.kv_width * prec.generation  # one layer's cache re-concatenated
    sampling = 3 * rows * shape.vocab_size * 4
    dequant = _dequant_bytes(shape, recipe)
    add(Part("generation_transient", "generation working set", "generation", prefill + growth + sampling + dequant,
             "the largest prefill's layer (expanded KV heads, float mask, or MLP), one layer's cache copy, "
             "sampling logits" + (", one dequantised 4-bit weight" if dequant else "")))

    # ---- training: one micro-batch, the longer role's sequences
    b = recipe.micro_batch
    role = max(("generator", "discriminator"), key=layout.width)
    seq = layout.width(role)
    tokens = b * seq
    scored = b * layout.completion(role) if gpu else b * (seq - 1)  # CUDA scores completion tokens only
    per_layer = layer_activation_bytes(shape, prec, recipe, seq)
    per_token_layer = sum(per_layer.values())
    outside = tokens * (4 * h + 4) + 2 * tokens * shape.head_dim * 4 + scored * h * prec.residual
    lm = lm_head_bytes(shape, prec, tokens, scored)
    layer_bwd = tokens * layer_backward_bytes(shape, prec, per_layer)
    saved_full = L * tokens * per_token_layer + outside
    no_ckpt = saved_full + max(lm["forward"], lm["backward"], layer_bwd + tokens * h * 4)
    saved_ckpt = L * tokens * h * prec.residual + outside
    ckpt = saved_ckpt + max(lm["forward"], lm["backward"], tokens * per_token_layer + layer_bwd)
    # the trained adapter's gradients (its dtype), plus autocast's cached 16-bit copies of its weights if fp32
    largest = max(sizes)
    grads = lora_params * largest + (lora_params * prec.autocast if prec.autocast and largest > prec.autocast else 0)
    add(Part("gradients", "LoRA gradients (active adapter)", "training", grads,
             f"{lora_params / 1e6:.2f}M grads x {largest} B of the adapter being trained (the other has none)"
             + (f" + autocast's {prec.autocast}-byte copies of its weights" if grads > lora_params * largest
                else "")))
    # The training peak comes when the saved activations meet the largest transient: the LM head's working set
    # (its forward or its backward) or, later, one layer's backward (with checkpointing: that layer recomputed,
    # plus its gradient buffers). These come one after another: the phase takes the larger.
    which = "with" if recipe.gradient_checkpointing else "without"
    formula = (f"{b} sequences x {seq} tokens ({role}: prompt {layout.prompt(role)} + completion "
               f"{layout.completion(role)}); per layer and token {per_token_layer / 1024:.1f} KiB "
               f"({', '.join(f'{k} {v:.0f} B' for k, v in per_layer.items())}) x {L} layers")
    if recipe.gradient_checkpointing:
        saved, layer_extra = saved_ckpt, tokens * per_token_layer + layer_bwd
        formula = (f"{b} sequences x {seq} tokens ({role}: prompt {layout.prompt(role)} + completion "
                   f"{layout.completion(role)}): the {L} checkpointed layer inputs ({h} x {prec.residual} B per "
                   "token), the final norm's input and the LM head's hidden states")
        layer_how = (f"the layer recomputed in the backward, {per_token_layer / 1024:.1f} KiB per token "
                     f"({', '.join(f'{k} {v:.0f} B' for k, v in per_layer.items())}), + its gradient buffers")
    else:
        saved, layer_extra = saved_full, layer_bwd + tokens * h * 4
        layer_how = "gradient buffers of the first layer's backward (3 x MLP width + hidden-size tensors per token)"
    add(Part("activations", f"activations saved for backward, {which} checkpointing", "training", saved, formula))
    add(Part("layer_backward", "one layer's backward working set", "training", layer_extra, layer_how,
             alternative=True))
    add(Part("lm_head", "logits: TRL's fused LM head working set", "training", max(lm["forward"], lm["backward"]),
             f"{scored} scored positions in tiles of {min(scored, LM_HEAD_TOKEN_TILE)} x "
             f"{min(LM_HEAD_VOCAB_TILE, shape.vocab_size)} "
             + ("(Triton, in place)" if gpu else "(torch ops on CPU: fp32 temporaries)")
             + ", + the fp32 gradient of the hidden states; the full logits are never materialised",
             alternative=True))
    add(Part("activations_other", f"(training phase {'without' if recipe.gradient_checkpointing else 'with'} "
             "checkpointing)", "info", grads + (no_ckpt if recipe.gradient_checkpointing else ckpt),
             "the same micro-batch with the other gradient checkpointing setting, for comparison; not added"))
    full_logits = scored * shape.vocab_size * 4
    add(Part("logits_full", "logits if materialised (b x s x V fp32, + log-softmax copy)", "info", 2 * full_logits,
             f"{scored} x {shape.vocab_size} x 4 B, twice: what a non-fused selective_log_softmax path would hold; "
             "TRL 1.16's GRPOTrainer computes log-probs with its fused LM head instead"))
    ref = 0.0
    ref_how = "beta = 0: no reference model (train.py refuses beta > 0)"
    if recipe.beta > 0:  # reference log-probs: a no-grad forward with the adapter disabled
        ref = tokens * (per_token_layer + 4 * h) + lm["forward"]
        ref_how = ("a no-grad forward of the micro-batch with the adapter disabled: one layer's activations + "
                   "the LM head's tile")
    add(Part("reference", "reference model log-probs (scoring, before training)", "scoring", ref, ref_how))
    if dequant:
        add(Part("dequant", "4-bit dequantisation buffer", "training", dequant,
                 "the largest linear layer dequantised to 16 bits for a matmul or its backward"))
    return est


def recipe_tokens(recipe: Recipe, role: str) -> tuple[int, ...]:
    values = recipe.generator_tokens if role == "generator" else recipe.discriminator_tokens
    return tuple(values) * 5 if len(values) == 1 else tuple(values)


def _dequant_bytes(shape: ModelShape, recipe: Recipe) -> float:
    if not recipe.load_in_4bit:
        return 0.0
    return max(a * b for a, b in shape.linear_shapes().values()) * 2


def estimate_recipe(config: str | os.PathLike[str], overrides: Sequence[str] = (), model_config: str | None = None,
                    problem_tokens: int = DEFAULT_PROBLEM_TOKENS) -> Estimate:
    """Read a recipe and its model's config, render the chain's token layout, and estimate."""
    recipe = Recipe.from_config(config, overrides, problem_tokens=problem_tokens)
    shape = ModelShape.from_file(model_config or find_model_config(recipe.model))
    layout = chain_layout(load_tokenizer_for(recipe), recipe)
    return estimate(shape, recipe, layout)


# ----------------------------------------------------------------------------- output


def table(est: Estimate) -> str:
    r, s = est.recipe, est.shape
    lines = [
        f"{r.name}: {s.name} ({s.parameters / 1e9:.3f}B params; {s.num_layers} layers, hidden {s.hidden_size}, "
        f"MLP {s.intermediate_size}, {s.num_heads} heads / {s.num_kv_heads} KV x {s.head_dim}, vocab "
        f"{s.vocab_size}, {'tied' if s.tied_embeddings else 'untied'} embeddings)",
        f"  device {r.device}, {'4-bit NF4' if r.load_in_4bit else r.weight_dtype} base, "
        f"autocast {r.autocast or 'off'}, micro-batch {r.micro_batch}, generation {r.generation_rows} sequences, "
        f"gradient checkpointing {'on' if r.gradient_checkpointing else 'off'}; chain widths: generator "
        f"{est.layout.generator_width}, discriminator {est.layout.discriminator_width} tokens",
        "",
        f"  {'part':<62} {'phase':<11} {'GiB':>7}",
    ]
    for p in est.parts:
        phase = p.phase + ("*" if p.alternative else "")
        lines.append(f"  {p.label:<62} {phase:<11} {p.gib:>7.2f}")
    lines += [
        "",
        f"  {'persistent':<62} {'':<11} {est.phase_bytes('persistent') / GIB:>7.2f}",
        f"  {'generation phase':<62} {'':<11} {est.phase_bytes('generation') / GIB:>7.2f}",
        f"  {'training phase':<62} {'':<11} {est.phase_bytes('training') / GIB:>7.2f}",
        f"  {'TOTAL peak = persistent + max(generation, training)':<62} {est.peak_phase:<11} {est.total_gib:>7.2f}",
        "  (* transients of a phase that come one after another: the phase counts the largest)",
        "",
    ]
    for limit in LIMITS_GIB:
        verdict = "fits" if est.fits(limit) else "DOES NOT FIT"
        lines.append(f"  {limit} GiB: {verdict} ({limit - est.total_gib:+.2f} GiB headroom)")
    if r.device == "cpu":
        lines.append("  (a CPU recipe: these are host RAM figures, with no CUDA context)")
    lines += ["", "  how each part is computed:"]
    lines += [f"    {p.label}: {p.how}" for p in est.parts]
    return "\n".join(lines)


def with_observed_widths(est: Estimate, widths: dict[str, dict[str, int]]) -> Estimate:
    """The same estimate with the chain widths a run really produced (each role's longest prompt + longest
    completion, as TRL pads them) instead of every stage at its budget."""
    g, d = widths["generator"], widths["discriminator"]
    layout = Layout(g["prompt"], g["prompt"] + g["completion"], d["prompt"], d["prompt"] + d["completion"],
                    est.layout.generator_turns, est.layout.discriminator_turns, est.layout.tokenizer)
    return estimate(est.shape, est.recipe, layout)
