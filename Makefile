# The two set-up commands: `make run` (daemon on the bundled model) and `make test` (the whole suite).
# Both create .venv at the repo root and install what they need, idempotently.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint bench install clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# CPU build of PyTorch first: a bare `torch` would pull a multi-GB CUDA build.
	$(BIN)/pip install --quiet torch==2.13.0
	# llama.cpp is compiled from source (about 6 min on 2 cores; pip caches the wheel). See the script for
	# why its CPU flags are set by hand.
	CMAKE_ARGS="$$(bash deploy/llama-cmake-args.sh)" $(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/assistant serve

test: $(STAMP)
	bash deploy/system-deps.sh
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .

bench: $(STAMP)
	$(BIN)/python -m benchmarks.bench_chat $(ARGS)

clean:
	rm -rf $(VENV)
