"""The two roles as named LoRA adapters: creating, switching, saving and loading them.

By default the generator and the discriminator are two adapters, `generator` and `discriminator`, on ONE
peft model, so a single frozen base serves both (a 7B base in 4 bits plus two adapters fits a 24 GB card).
Exactly one adapter is active at a time: it runs in forward passes and is the only one with trainable
weights, so an optimizer built while a role is active updates that role alone.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
import torch
from peft import LoraConfig, PeftModel, get_peft_model
from transformers import PreTrainedModel

from prompts.roles import ROLES, Role

from pipeline.models import ModelConfig, ModelLoadError

ADAPTER_CONFIG = "adapter_config.json"

_ATTENTION_MLP = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
# Attention + MLP projections: LoRA on all of them trains better than attention alone (QLoRA paper, sec. 4).
DEFAULT_TARGET_MODULES: dict[str, list[str]] = {
    "llama": _ATTENTION_MLP,
    "mistral": _ATTENTION_MLP,
    "qwen2": _ATTENTION_MLP,
    "qwen3": _ATTENTION_MLP,
    "gemma": _ATTENTION_MLP,
    "gemma2": _ATTENTION_MLP,
    "starcoder2": ["q_proj", "k_proj", "v_proj", "o_proj", "c_fc", "c_proj"],
    "gpt2": ["c_attn", "c_proj", "c_fc"],
    "gpt_bigcode": ["c_attn", "c_proj", "c_fc"],
}


def lora_config(cfg: ModelConfig, model_type: str) -> LoraConfig:
    """The LoRA config of a fresh adapter; unknown architectures fall back to peft's 'all-linear'."""
    targets: list[str] | str
    if cfg.lora_target_modules is None:
        targets = DEFAULT_TARGET_MODULES.get(model_type, "all-linear")
    elif cfg.lora_target_modules == ["all-linear"]:
        targets = "all-linear"
    else:
        targets = list(cfg.lora_target_modules)
    return LoraConfig(
        r=cfg.lora_r,
        lora_alpha=cfg.lora_alpha,
        lora_dropout=cfg.lora_dropout,
        target_modules=targets,
        bias="none",
        task_type="CAUSAL_LM",
    )


def _check_role(model: PeftModel, role: str) -> None:
    if role not in ROLES:
        raise ValueError(f"role must be one of {ROLES}, got {role!r}")
    if role not in model.peft_config:
        raise ValueError(f"model has no {role!r} adapter (it has {sorted(model.peft_config)})")


def set_active_role(model: PeftModel, role: Role) -> None:
    """Make `role`'s adapter the one that runs and the only one that trains.

    peft 0.21's `set_adapter` already flips `requires_grad` this way (verified); it is enforced
    here by parameter name too, because the set of parameters an optimizer updates depends on it.
    """
    _check_role(model, role)
    model.set_adapter(role)
    adapters = set(model.peft_config)
    for name, param in model.named_parameters():
        owner = adapters.intersection(name.split("."))
        if owner:
            param.requires_grad_(owner == {role})


@contextmanager
def acting_as(model: PeftModel, role: Role) -> Iterator[PeftModel]:
    """Temporarily run `model` as `role` without gradient, e.g. the discriminator writing tests inside the
    generator's rollout; the previous adapter, `requires_grad` flags and train/eval mode are restored after.
    """
    _check_role(model, role)
    previous = model.active_adapter
    grad_flags = {name: p.requires_grad for name, p in model.named_parameters()}
    was_training = model.training
    model.set_adapter(role, inference_mode=True)  # frozen: nothing requires grad inside
    model.eval()  # no LoRA dropout while acting as the other role
    try:
        with torch.no_grad():
            yield model
    finally:
        model.set_adapter(previous)
        for name, param in model.named_parameters():
            param.requires_grad_(grad_flags[name])
        model.train(was_training)


def _local_or_download(source: str | os.PathLike[str], role: Role | None) -> Path:
    """`source` as a local folder, else a snapshot of the Hub repo of that id (only the files adapters need)."""
    path = Path(source).expanduser()
    if path.is_dir():
        return path
    from huggingface_hub import snapshot_download
    from huggingface_hub.utils import HFValidationError

    patterns = ["*.json", "*.safetensors"] + ([f"{role}/*"] if role else [])
    try:
        return Path(snapshot_download(str(source), allow_patterns=patterns))
    except HFValidationError as err:
        raise ModelLoadError(f"adapter {str(source)!r} is neither an existing folder nor a valid Hub id") from err
    except (OSError, ValueError) as err:  # no network, offline mode, missing repo
        raise ModelLoadError(f"adapter {str(source)!r} is not a local folder and could not be fetched "
                             f"from the Hub: {err}") from err


def resolve_adapter_dir(source: str | os.PathLike[str], role: Role | None = None) -> Path:
    """Find an adapter folder: `source/<role>` (a `save_adapters` folder) or else `source` itself.

    `source` may be a local folder or a Hub repo id; the Hub is asked only when no such folder exists.
    """
    root = _local_or_download(source, role)
    if role is not None and (root / role / ADAPTER_CONFIG).is_file():
        return root / role
    if (root / ADAPTER_CONFIG).is_file():
        return root
    wanted = f"{ADAPTER_CONFIG} in it" + (f" or in its {role}/ subfolder" if role else "")
    raise ModelLoadError(f"{str(source)!r} is not a peft adapter folder: expected {wanted}")


def check_init_adapters(cfg: ModelConfig) -> None:
    """``<role>_init_adapter`` of ``cfg``, before anything loads: a local folder must hold that role's adapter, and
    a path that does not exist is an error (only ``user/name`` is tried on the Hub, at model load)."""
    for role in ROLES:
        name = f"{role}_init_adapter"
        source = getattr(cfg, name)
        if source is None:
            continue
        path = Path(source).expanduser()
        if path.exists():
            try:
                resolve_adapter_dir(path, role)
            except ModelLoadError as err:
                raise ModelLoadError(f"{name}: {err}") from err
        elif path.is_absolute() or source.startswith((".", "~")) or source.count("/") != 1:
            raise ModelLoadError(f"{name} {source!r}: no such folder (a warm start writes its adapters to "
                                 "<output_dir>/final; a Hub repo is given as user/name)")


def attach_role_adapters(
    base: PreTrainedModel,
    cfg: ModelConfig,
    roles: Sequence[Role] = ROLES,
    init_adapters: Mapping[str, str | None] | None = None,
) -> PeftModel:
    """Wrap `base` in a peft model with one trainable adapter per role; the first role ends up active,
    the model in eval mode.

    A role listed in `init_adapters` starts from that adapter (folder or Hub id; its own rank, alpha and
    target modules are kept, its dropout becomes `cfg.lora_dropout`, see ``set_lora_dropout``), the
    others from a fresh LoRA built from `cfg` (B = 0, so they start as the base model).
    """
    if not roles:
        raise ValueError("attach_role_adapters needs at least one role")
    init_adapters = init_adapters or {}
    fresh = lora_config(cfg, base.config.model_type)
    model: PeftModel | None = None
    for role in roles:
        source = init_adapters.get(role)
        if model is None:
            if source is None:
                model = get_peft_model(base, fresh, adapter_name=role)
            else:
                model = PeftModel.from_pretrained(base, resolve_adapter_dir(source, role),
                                                  adapter_name=role, is_trainable=True)
        elif source is None:
            model.add_adapter(role, fresh)
        else:
            model.load_adapter(resolve_adapter_dir(source, role), adapter_name=role, is_trainable=True)
        if source is not None:
            set_lora_dropout(model, role, cfg.lora_dropout)
    assert model is not None
    set_active_role(model, roles[0])
    model.eval()  # generation-ready; Trainer.train() switches to train mode itself
    return model


def set_lora_dropout(model: PeftModel, role: Role, p: float) -> int:
    """Give `role`'s LoRA layers dropout `p` (``nn.Identity`` at 0, as peft builds a fresh adapter with
    ``lora_dropout=0``); returns the number of layers changed.

    Why: dropout is a training choice of the recipe, not part of the adapter, but peft rebuilds a loaded
    adapter's dropout from its saved ``adapter_config.json``. Run 2's recipe said ``lora_dropout: 0.0`` and
    trained adapters saved by the bootstrap with 0.05, so 5 % of each LoRA input was dropped in every
    training forward pass while the rollout sampled in eval mode, without dropout (``acting_as``): the
    log-probabilities the loss used were of a noisier policy than the one that wrote the completions
    (TRL's ``disable_dropout`` exists for this mismatch; issue 22).
    """
    if not 0.0 <= p < 1.0:
        raise ValueError(f"dropout must lie in [0, 1), got {p!r}")
    _check_role(model, role)
    changed = 0
    for module in model.modules():
        dropouts = getattr(module, "lora_dropout", None)
        if isinstance(dropouts, torch.nn.ModuleDict) and role in dropouts:
            dropouts[role] = torch.nn.Dropout(p=p) if p > 0 else torch.nn.Identity()
            changed += 1
    model.peft_config[role].lora_dropout = p
    return changed


def save_adapters(model: PeftModel, out_dir: str | os.PathLike[str]) -> Path:
    """Write every role adapter of `model` to `out_dir/<role>/` (adapter_config.json + adapter_model.safetensors).

    peft puts each adapter not named 'default' into a subfolder named after it, which is exactly this layout;
    it is checked rather than assumed. A Trainer checkpoint of the peft model has the same layout.
    """
    roles = [role for role in ROLES if role in model.peft_config]
    if not roles:
        raise ValueError(f"model has no role adapter to save (it has {sorted(model.peft_config)})")
    out = Path(out_dir)
    model.save_pretrained(str(out), selected_adapters=roles)
    for role in roles:
        if not (out / role / ADAPTER_CONFIG).is_file():
            raise RuntimeError(f"peft did not write {out / role / ADAPTER_CONFIG}; its save layout changed")
    return out


def load_adapters(
    base: PreTrainedModel,
    source: str | os.PathLike[str],
    *,
    roles: Sequence[Role] = ROLES,
    is_trainable: bool = False,
) -> PeftModel:
    """Load `source/<role>/` for each role onto `base` (a folder from `save_adapters` or a Trainer checkpoint,
    or a Hub repo with those subfolders). Frozen unless `is_trainable`; the first role ends up active.
    """
    if not roles:
        raise ValueError("load_adapters needs at least one role")
    if isinstance(base, PeftModel):
        raise TypeError("load_adapters takes the plain base model, not a PeftModel")
    model: PeftModel | None = None
    for role in roles:
        folder = _local_or_download(source, role) / role
        if not (folder / ADAPTER_CONFIG).is_file():
            raise ModelLoadError(f"{str(source)!r} has no {role}/{ADAPTER_CONFIG}: not a save_adapters folder")
        if model is None:
            model = PeftModel.from_pretrained(base, folder, adapter_name=role, is_trainable=is_trainable)
        else:
            model.load_adapter(folder, adapter_name=role, is_trainable=is_trainable)
    assert model is not None
    if is_trainable:
        set_active_role(model, roles[0])
    else:
        model.set_adapter(roles[0], inference_mode=True)
    model.eval()
    return model
