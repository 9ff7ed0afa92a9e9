# Two entry points (README): `make demo` and `make test`. Each creates .venv on first use.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test lint venv clean

$(BIN)/.installed: pyproject.toml
	$(PY) -m venv $(VENV)
	# CPU build of torch from the local wheel first, so nothing pulls a CUDA build.
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[torch,dev,bench,models]'
	# torchvision's model builders, outside the import path (tests/models/build.py says why)
	$(BIN)/pip install -q --no-deps --target $(VENV)/vendor torchvision==0.28.0
	# annealing's compiled move loop, into numba's cache, so no solve pays its compilation
	$(BIN)/python -c 'from hetsched.schedule.latency.annealkernel import compile_kernel as c; c()'
	touch $@

venv: $(BIN)/.installed

demo: venv
	$(BIN)/hetsched demo

test: venv
	$(BIN)/ruff check hetsched tests benchmarks
	$(BIN)/ruff format --check hetsched tests benchmarks
	$(BIN)/mypy hetsched
	$(BIN)/lint-imports
	$(BIN)/pytest -q

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
