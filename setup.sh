#!/usr/bin/env bash
# Installs confidently and the offline models into ./.venv (idempotent; re-running is cheap).
# torch is pinned first: 2.13.0 is the CPU build; any other request pulls a multi-GB CUDA build.
set -euo pipefail
cd "$(dirname "$0")"
PYTHON="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet "torch==2.13.0"
.venv/bin/python -m pip install --quiet -e ".[default-model,gemma,test]"
echo "confidently installed in $(pwd)/.venv"
