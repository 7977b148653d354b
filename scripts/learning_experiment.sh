#!/usr/bin/env bash
# Issue 22's learning experiment in one command (scripts/learning_experiment.py says what each step runs):
#   scripts/learning_experiment.sh quick    # small budgets, few steps, the first 15 tasks of HumanEval+ and MBPP+
#   scripts/learning_experiment.sh full     # the documented run: hours on 2 cores; e.g.
#       nohup scripts/learning_experiment.sh full > outputs/learning_full.log 2>&1 &
# Writes outputs/learning_<size>/summary.json and the adapters under outputs/learning_<size>/; resumes when rerun.
set -euo pipefail
cd "$(dirname "$0")/.."
size=${1:?usage: scripts/learning_experiment.sh quick|full [--out DIR] [--model DIR] [--dry_run]}
shift
exec "${PYTHON:-.venv/bin/python}" scripts/learning_experiment.py "$size" "$@"
