#!/usr/bin/env bash
# Put every wheel the image needs into compose/wheels, so that `docker build` installs offline and
# compiles nothing (llama-cpp-python is taken from pip's cache when it was built here before).
# Run it on a machine with the same OS and CPU architecture as the image's base (Debian 12, x86_64).
#
#   scripts/build-wheels.sh [ENGINES]     # ENGINES: llama (default), vistral or llama,vistral
set -euo pipefail
cd "$(dirname "$0")/.."
engines="${1:-llama}"
out=compose/wheels
pip=(python3 -m pip)
[ -x .venv/bin/pip ] && pip=(.venv/bin/pip)
rm -f "$out"/*.whl
echo "== wheels for .[${engines}] into $out"
# setuptools and wheel too: the image builds the project itself, offline.
"${pip[@]}" wheel --quiet --wheel-dir "$out" "setuptools>=68" wheel ".[${engines}]"
rm -f "$out"/bluegreen_llm-*.whl  # the image installs the project from its source
echo "== $(ls "$out"/*.whl | wc -l) wheels, $(du -sh "$out" | cut -f1)"
