# VibeThink — `make run` serves the platform with demo data, `make test` runs the whole suite.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEV_STAMP := $(VENV)/.installed-dev

.DEFAULT_GOAL := help
.PHONY: help run test lint typecheck bench migrate revision worker clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	@touch $@

$(DEV_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $(STAMP) $@

run: $(STAMP) ## Start PostgreSQL, migrate, load the demo data and serve on http://127.0.0.1:8000
	$(BIN)/vibethink serve --demo

test: $(DEV_STAMP) ## Run the whole test suite against a real PostgreSQL
	$(BIN)/pytest

lint: $(DEV_STAMP) ## ruff check and format check
	$(BIN)/ruff check src tests bench migrations
	$(BIN)/ruff format --check src tests bench migrations

typecheck: $(DEV_STAMP) ## mypy --strict on src
	$(BIN)/mypy --strict src

bench: $(DEV_STAMP) ## Run the benchmarks and print their tables (see bench/RESULTS.md)
	$(BIN)/python -m bench

migrate: $(STAMP) ## Apply pending migrations
	$(BIN)/vibethink db upgrade

revision: $(STAMP) ## Create a migration: make revision m="what it does"
	$(BIN)/vibethink db revision -m "$(m)"

worker: $(STAMP) ## Run an outbox worker
	$(BIN)/vibethink worker

clean: ## Remove the virtualenv and local data
	rm -rf $(VENV) var
