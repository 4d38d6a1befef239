# The two entry points: `make demo` (the main job) and `make test`. Both set up .venv first.
PY := .venv/bin/python
MODELS := .cache/tiny-models

.PHONY: setup models demo test bench bench-router bench-rollback bench-runtime clean

setup:
	@bash scripts/setup.sh

models: setup
	@$(PY) -m model_backends.cli make-tiny-models $(MODELS)

demo: models
	@$(PY) scripts/demo.py --models $(MODELS) $(if $(FAULTY_GREEN),--faulty-green)

test: setup
	@$(PY) -m pytest

bench: models
	@$(PY) scripts/bench_backend.py --models $(MODELS)

bench-router: setup
	@$(PY) scripts/bench_router.py

bench-rollback: setup
	@$(PY) scripts/bench_rollback.py

bench-runtime: models
	@$(PY) scripts/bench_runtime.py --models $(MODELS)

clean:
	rm -rf .cache runs
