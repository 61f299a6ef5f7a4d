PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test lint bench clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install -q -e ".[test,examples,opencl]"
	touch $@

demo: $(VENV)/.installed
	$(BIN)/python examples/run_seed.py examples/seed_000_theano_tutorial.py

test: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q -n auto

bench: $(VENV)/.installed
	$(BIN)/python -m pip install -q -e ".[bench]"
	$(BIN)/python benchmarks/run.py --backend numpy
	$(BIN)/python benchmarks/c_backend.py

clean:
	rm -rf $(VENV) build *.egg-info
