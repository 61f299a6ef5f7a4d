PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
# extra pytest arguments; .ci/run adds --theanine-require opencl
PYTEST_ARGS ?=

.PHONY: demo test lint bench clean opencl gpu-check

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install -q -e ".[test,examples,opencl,distributed]"
	touch $@

# a CPU OpenCL platform that builds on this host, in .venv (quick once it is there); a failure
# is reported and leaves OpenCL to whatever platform works, if any
opencl: $(VENV)/.installed
	-$(BIN)/theanine setup-opencl

demo: $(VENV)/.installed opencl
	$(BIN)/python examples/run_seed.py examples/seed_000_theano_tutorial.py

test: $(VENV)/.installed opencl
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q -n auto $(PYTEST_ARGS)

bench: $(VENV)/.installed opencl
	$(BIN)/python -m pip install -q -e ".[bench]"
	$(BIN)/python benchmarks/run.py --backend numpy
	$(BIN)/python benchmarks/c_backend.py
	$(BIN)/python benchmarks/random_bench.py
	$(BIN)/python benchmarks/scan_bench.py

# on a lent NVIDIA GPU machine (../shared/GPU.md): installs what it needs, runs the CUDA tests,
# the kit on cuda and NVIDIA's OpenCL, the seeds and the GPU benchmarks; summary in $$OUT
gpu-check:
	bash .ci/gpu-check

clean:
	rm -rf $(VENV) build *.egg-info
