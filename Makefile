# The two entry points: `make demo` (the main job) and `make test`. Both set up .venv first.
PY := .venv/bin/python
MODELS := .cache/tiny-models

.PHONY: setup models demo test test-fast lint docs bench bench-router bench-rollback bench-runtime bench-convert gpu-wheels test-gpu clean

setup:
	@bash scripts/setup.sh

models: setup
	@$(PY) -m model_backends.cli make-tiny-models $(MODELS)

demo: models
	@$(PY) scripts/demo.py --models $(MODELS) $(if $(FAULTY_GREEN),--faulty-green)

# The gates (ruff, strict mypy) run before the tests; any finding fails `make test`.
lint: setup
	@$(PY) -m ruff check .
	@$(PY) -m mypy

test: lint
	@$(PY) -m pytest tests/unit tests/e2e

# The inner loop: the gates and the pure, fast unit tests (well under 30 s).
test-fast: lint
	@$(PY) -m pytest tests/unit

# docs/api.md from both programs' OpenAPI documents (tests/unit/test_docs.py fails when it is stale).
docs: setup
	@$(PY) scripts/gen_api_docs.py

bench: models
	@$(PY) scripts/bench_backend.py --models $(MODELS)

bench-router: setup
	@$(PY) scripts/bench_router.py

bench-rollback: setup
	@$(PY) scripts/bench_rollback.py

bench-runtime: models
	@$(PY) scripts/bench_runtime.py --models $(MODELS)

# `model-backend convert` on a generated 1.4 GB bfloat16 checkpoint: time and peak memory.
bench-convert: models
	@$(PY) scripts/bench_convert.py --models $(MODELS)

# The GPU tests (tests/gpu, skipped without CUDA): `make gpu-wheels` here gathers the wheels a CUDA machine
# without an index lacks into dist/gpu-wheels/; `make test-gpu` there installs them and runs the tests.
gpu-wheels: setup
	@bash scripts/gpu_check.sh wheels

test-gpu:
	@bash scripts/gpu_check.sh run

clean:
	rm -rf .cache runs
