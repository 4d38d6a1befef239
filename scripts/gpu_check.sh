#!/usr/bin/env bash
# The GPU tests (tests/gpu) on a CUDA machine that has Python 3.12 with CUDA torch, transformers,
# accelerate and numpy but no package index: gather the other wheels here, install them there.
#
#   scripts/gpu_check.sh wheels   # here: dist/gpu-wheels/ for CPython 3.12 manylinux x86_64 (+ this project)
#   scripts/gpu_check.sh install  # there: install from dist/gpu-wheels/ only (no index)
#   scripts/gpu_check.sh run      # there: install, then `pytest -m gpu tests/gpu`; results to $OUT if set
#
# Only what the backend and the GPU tests import is brought (bitsandbytes is ~43 MB of it);
# llama-cpp-python is left out, so the cascade's GGUF step says it is missing there. PY names the
# interpreter (default: python3 there, .venv's or python3 here).
set -euo pipefail
cd "$(dirname "$0")/.."
mode="${1:-}"
wheels=dist/gpu-wheels
# The backend's and tests/gpu's imports besides torch, transformers, accelerate and numpy (bounds as in pyproject.toml).
needs=("fastapi>=0.110" "pydantic>=2.6" "pydantic-settings>=2.3" "uvicorn>=0.30" "httptools>=0.6" "httpx>=0.27"
       "pyyaml>=6" "jinja2>=3.1" "prometheus-client>=0.20" "typer>=0.12" "rich>=13" "psutil>=5.9" "gguf>=0.10"
       "pytest>=8" "pytest-timeout>=2.3")
# Already there (torch and transformers need them) and big: not brought even when a wheel above asks for them.
present='^(numpy|torch|nvidia_|triton|sympy|networkx|transformers|accelerate|tokenizers|safetensors|huggingface_hub|hf_xet)-'

gather() {
    local py="${PY:-python3}"
    [ -x .venv/bin/python ] && py="${PY:-.venv/bin/python}"
    local target=(--only-binary=:all: --python-version 3.12 --implementation cp --abi cp312
                  --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64
                  --platform manylinux_2_24_x86_64 --platform manylinux_2_28_x86_64)
    rm -rf "$wheels" && mkdir -p "$wheels"
    # The versions the tests pass with here, where this checkout's environment has them.
    local pins="$wheels/.pins.txt"
    "$py" -m pip freeze --exclude-editable 2>/dev/null | grep -v ' @ ' > "$pins" || true
    target+=(--constraint "$pins")
    echo "== wheels for CPython 3.12 manylinux x86_64 into $wheels ($(wc -l < "$pins") versions pinned from $py)"
    "$py" -m pip download --quiet --dest "$wheels" "${target[@]}" "${needs[@]}"
    "$py" -m pip download --quiet --dest "$wheels" "${target[@]}" --no-deps bitsandbytes
    "$py" -m pip wheel --quiet --no-deps --wheel-dir "$wheels" .
    find "$wheels" -maxdepth 1 -name '*.whl' -printf '%f\n' | grep -E "$present" | while read -r dropped; do
        echo "   dropped $dropped (the GPU machine has it)"
        rm -f "$wheels/$dropped"
    done
    rm -f "$pins"
    echo "== $(find "$wheels" -name '*.whl' | wc -l) wheels, $(du -sh "$wheels" | cut -f1) in $wheels"
}

install() {
    local py="${PY:-python3}"
    [ -d "$wheels" ] || { echo "no $wheels: run 'scripts/gpu_check.sh wheels' on a machine with an index first" >&2; exit 2; }
    "$py" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 12))' || {
        echo "the wheels in $wheels are for CPython 3.12, $py is $("$py" -V 2>&1): set PY to a Python 3.12" >&2; exit 2; }
    echo "== installing from $wheels (no index) into $("$py" -c 'import sys; print(sys.prefix)')"
    export PIP_BREAK_SYSTEM_PACKAGES=1  # a GPU box's system Python may be marked externally managed
    "$py" -m pip --version >/dev/null 2>&1 || "$py" -m ensurepip --upgrade  # pip ships inside CPython
    "$py" -m pip install --quiet --no-index --find-links "$wheels" --no-deps bluegreen-llm
    "$py" -m pip install --quiet --no-index --find-links "$wheels" bitsandbytes "${needs[@]}"
}

run() {
    local py="${PY:-python3}"
    install
    local out="${OUT:-runs/gpu}"
    mkdir -p "$out"
    { nvidia-smi || true; "$py" -c 'import torch, transformers, bitsandbytes as b; print("torch", torch.__version__,
      "cuda", torch.version.cuda, torch.cuda.is_available(), "transformers", transformers.__version__, "bitsandbytes", b.__version__)' \
      || true  # the tests say what is missing
    } 2>&1 | tee "$out/gpu-env.txt"
    echo "== pytest -m gpu tests/gpu (report: $out/gpu-report.json)"
    local rc=0
    OUT="$out" "$py" -m pytest -m gpu tests/gpu -q -rs -p no:cacheprovider --junitxml "$out/gpu-junit.xml" 2>&1 \
        | tee "$out/gpu-pytest.log" || rc=$?  # pipefail: pytest's status (tee's is 0)
    echo "== pytest exited $rc; results in $out"
    return "$rc"
}

case "$mode" in
    wheels) gather ;;
    install) install ;;
    run) run ;;
    *) echo "usage: scripts/gpu_check.sh wheels|install|run" >&2; exit 2 ;;
esac
