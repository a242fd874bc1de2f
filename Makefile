# Hayate — developer entry points. Every target creates .venv on demand.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CONFIG ?= var/hayate.toml

.PHONY: run test lint typecheck bench clean

$(BIN)/hayate: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.dev: $(BIN)/hayate
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

run: $(BIN)/hayate
	@test -f $(CONFIG) || $(BIN)/hayate init --dir var
	$(BIN)/hayate serve -c $(CONFIG)

test: $(VENV)/.dev
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/pytest -q

lint: $(VENV)/.dev
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy

bench: $(VENV)/.dev
	$(BIN)/python -m bench.relay
	$(BIN)/python -m bench.dkim
	$(BIN)/python -m bench.queue_memory
	$(BIN)/python -m bench.imap
	$(BIN)/python -m bench.imap_large

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
