#!/usr/bin/env bash
# Creates .venv-evalplus beside the repository's .venv (if missing) and installs evalplus 0.3.1 into it,
# the reference judge that scripts/evalplus_reference.py runs. A venv of its own: evalplus pulls openai,
# anthropic, transformers... which do not belong in the project's environment. Idempotent; prints the
# venv's python.
#   scripts/evalplus_env.sh            # then: "$(scripts/evalplus_env.sh | tail -1)" scripts/evalplus_reference.py ...
set -euo pipefail
cd "$(dirname "$0")/.."
venv=.venv-evalplus
version=0.3.1
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
if ! "$venv/bin/python" -c "import importlib.metadata as m, sys; sys.exit(m.version('evalplus') != '$version')" 2>/dev/null; then
  "$venv/bin/pip" install -q "evalplus==$version" >&2
fi
echo "$(pwd)/$venv/bin/python"
