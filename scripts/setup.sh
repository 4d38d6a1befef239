#!/usr/bin/env bash
# Create .venv and install the project with every engine, once per pyproject.toml version.
# Idempotent: a second run with an unchanged pyproject.toml does nothing. llama-cpp-python is
# compiled from source the first time (10-15 minutes on 2 cores); pip keeps the built wheel in
# its cache, so later set-ups (fresh clones included) reuse it.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
VENV=.venv
stamp="$VENV/.installed-$(sha256sum pyproject.toml | cut -c1-16)"

if [ -f "$stamp" ]; then
  exit 0
fi
echo "== setting up $VENV (first run compiles llama-cpp-python; later runs reuse pip's cache)"
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
"$VENV/bin/pip" install --quiet --upgrade pip wheel
# The CPU build of torch; any other spec would download a multi-GB CUDA build.
"$VENV/bin/pip" install --quiet "torch==2.13.0"
CMAKE_BUILD_PARALLEL_LEVEL="$(nproc)" "$VENV/bin/pip" install --progress-bar off -e ".[llama,vistral,dev]"
rm -f "$VENV"/.installed-*
touch "$stamp"
echo "== $VENV ready"
