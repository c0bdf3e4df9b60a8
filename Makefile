# Two commands set everything up on a fresh clone: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 5000
PYTEST_ARGS ?=

.PHONY: run test lint typecheck pytest bench clean

$(VENV)/.installed-run: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@ $(VENV)/.installed-run

## Serve the demo on http://$(HOST):$(PORT) with the embedded defaults.
run: $(VENV)/.installed-run
	$(BIN)/marketplace db upgrade
	$(BIN)/marketplace search reindex --if-empty
	$(BIN)/marketplace demo
	$(BIN)/marketplace run --host $(HOST) --port $(PORT)

## Lint, type-check and run the whole suite (DATABASE_URL / REDIS_URL pick the backends).
test: lint typecheck pytest

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache

typecheck: $(VENV)/.installed-dev
	$(BIN)/mypy

pytest: $(VENV)/.installed-dev
	$(BIN)/pytest -n 2 --dist loadfile $(PYTEST_ARGS)

## Benchmarks (not part of the suite; each prints a Markdown table for the README).
bench: $(VENV)/.installed-dev
	$(BIN)/python bench/ledger_bench.py
	$(BIN)/python bench/optout_bench.py --backend sqlite postgresql
	$(BIN)/python bench/catalog_bench.py
	$(BIN)/python bench/ingest_bench.py
	$(BIN)/python bench/search_bench.py
	$(BIN)/python bench/fulfilment_bench.py
	$(BIN)/python bench/certificate_bench.py --items 5000
	$(BIN)/python bench/package_bench.py
	$(BIN)/python bench/payouts_bench.py
	$(BIN)/python bench/search_quality.py --backend sqlite postgresql
	$(BIN)/python bench/similar_bench.py
	$(BIN)/python bench/reservations_bench.py
	$(BIN)/python bench/optout_catalog_bench.py
	$(BIN)/python bench/compliance_bench.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
