"""Generation engines: what runs the model when the chain, the rollout or evaluation generates.

Imports ``pipeline.models`` only. ``base`` (the interface: token ids in, token ids and sampling logprobs out),
``transformers_engine`` (``generate`` on the peft model, KV-cached conversations; the CPU default),
``vllm_server`` (starting vLLM's OpenAI-compatible server from ``.venv-vllm``, or reaching one by URL, and the
HTTP client), ``vllm_engine`` (generation on that server, each role a LoRA adapter served by a versioned name).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.engines.base import ENGINES, Conversations, GenerationEngine, Sampling
from pipeline.engines.vllm_engine import ServedAdapters, VllmEngine
from pipeline.engines.vllm_server import VllmClient, VllmServer, VllmServerConfig, VllmServerError


@dataclass
class EngineArguments:
    """Which engine generates, and the vLLM server's settings (used only with ``generation_engine: vllm``)."""

    generation_engine: str = field(default="transformers", metadata={
        "help": "transformers: generate with the trained model itself (the CPU default). vllm: generate on a vLLM "
                "server with both role adapters served by name (GPU; on the CPU only to check it; needs "
                "./scripts/setup_vllm.sh or engine_url)."})
    engine_url: str | None = field(default=None, metadata={
        "help": "URL of a running vLLM server (started with --enable-lora, --served-model-name base, --logprobs-mode "
                "processed_logprobs and VLLM_ALLOW_RUNTIME_LORA_UPDATING=1), e.g. on a second GPU. Empty: start "
                "our own from .venv-vllm."})
    engine_max_loras: int = field(default=4, metadata={
        "help": "Adapters the vLLM engine holds at once (--max-loras); >= 2, one per role."})
    engine_max_lora_rank: int = field(default=64, metadata={"help": "Largest LoRA rank vLLM serves (--max-lora-rank)."})
    engine_dtype: str = field(default="auto", metadata={
        "help": "dtype of the weights in the vLLM server (float32 is what the CPU check uses)."})
    engine_kv_cache_gib: int = field(default=2, metadata={
        "help": "vLLM's KV cache on the CPU, whole GiB (VLLM_CPU_KVCACHE_SPACE)."})
    engine_gpu_memory_utilization: float = field(default=0.45, metadata={
        "help": "Share of the GPU the vLLM server takes: ~0.45 when the trainer shares the card, 0.9 on a card "
                "of its own."})
    engine_max_model_len: int = field(default=4096, metadata={"help": "Longest prompt + completion vLLM accepts."})
    engine_start_timeout_s: float = field(default=600.0, metadata={
        "help": "Seconds to wait for the vLLM server's /health after starting it."})

    def __post_init__(self) -> None:
        if self.generation_engine not in ENGINES:
            raise ValueError(f"generation_engine must be one of {ENGINES}, got {self.generation_engine!r}")
        if self.generation_engine == "vllm":
            self.server_config()  # its checks, at start-up

    def server_config(self) -> VllmServerConfig:
        return VllmServerConfig(url=self.engine_url, max_loras=self.engine_max_loras,
                                max_lora_rank=self.engine_max_lora_rank, dtype=self.engine_dtype,
                                kv_cache_gib=self.engine_kv_cache_gib,
                                gpu_memory_utilization=self.engine_gpu_memory_utilization,
                                max_model_len=self.engine_max_model_len, start_timeout_s=self.engine_start_timeout_s)


def model_stop_ids(source: str, tokenizer: Any) -> list[int]:
    """The tokens that end a turn, as the transformers engine decides: the model folder's generation config's
    EOS ids, else the tokenizer's. vLLM is told them explicitly, so both engines end turns on the same ids."""
    from transformers import GenerationConfig

    try:
        eos = GenerationConfig.from_pretrained(source).eos_token_id
    except OSError:  # no generation_config.json
        eos = None
    eos = eos if eos is not None else tokenizer.eos_token_id
    ids = eos if isinstance(eos, (list, tuple)) else [eos]
    return sorted({int(i) for i in ids if i is not None})


@contextlib.contextmanager
def open_vllm(config: VllmServerConfig, model_source: str, *, stop: Iterable[int], work_dir: str | os.PathLike[str],
              adapters: dict[str, str | os.PathLike[str]] | None = None) -> Iterator[VllmEngine]:
    """A vLLM engine for the time of the block: our own server (started on a free port, log and served adapter
    versions under ``work_dir``, stopped at the end) or the one at ``config.url`` (checked now). ``adapters``
    maps roles to adapter folders to serve first (``<role>-v1``)."""
    work = Path(work_dir)
    server = None
    if config.url:
        client = VllmClient(config.url, timeout_s=config.request_timeout_s)
        client.check()
    else:
        server = VllmServer(model_source, config, log_dir=work)
        client = server.start()
    try:
        served = ServedAdapters(client, work / "served_adapters")
        for role, folder in (adapters or {}).items():
            served.publish(role, folder)
        yield VllmEngine(client, served, stop)
    finally:
        if server is not None:
            server.stop()


__all__ = ["ENGINES", "Conversations", "EngineArguments", "GenerationEngine", "Sampling", "ServedAdapters",
           "VllmClient", "VllmEngine", "VllmServer", "VllmServerConfig", "VllmServerError", "model_stop_ids", "open_vllm"]
