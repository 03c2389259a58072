# The front door: every routine action is a target. `make help` lists them.
PYTHON ?= python3
UV_VERSION := 0.13.9
VENV := .venv
BIN := $(VENV)/bin
UV := .tools/bin/uv
# `make token USER=name`: USER from the command line only (the shell's USER is the login name).
TOKEN_USER := $(if $(filter command line,$(origin USER)),$(USER),admin)
export PYTHONPATH := $(CURDIR)

.DEFAULT_GOAL := help
.PHONY: help setup run test test-postgres lint bench bench-full migrate token catalogue clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "} {printf "  %-14s %s\n", $$1, $$2}'

$(UV):
	$(PYTHON) -m venv .tools
	.tools/bin/pip install --quiet uv==$(UV_VERSION)

$(VENV)/.installed: pyproject.toml uv.lock | $(UV)
	UV_PROJECT_ENVIRONMENT=$(VENV) $(UV) sync --frozen --python $(PYTHON)
	touch $@

setup: $(VENV)/.installed ## Create the virtual environment and install the locked packages

run: setup ## Start the broker, the five services and the gateway (Ctrl-C stops all)
	$(BIN)/python -m crmkit.devstack run

test: setup ## Run every test (SQLite and, where a test needs it, PostgreSQL)
	$(BIN)/python -m pytest -n 2 --dist loadgroup

test-postgres: setup ## Run the integration tests again with every service database on PostgreSQL
	CRM_TEST_DATABASE=postgres $(BIN)/python -m pytest -n 2 --dist loadgroup -m "integration or postgres"

lint: setup ## ruff and mypy
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy crmkit services gateway

bench: setup ## Run every benchmark at a size that fits a 2-core machine
	$(BIN)/python -m bench

bench-full: setup ## Run every benchmark at the issues' full size
	$(BIN)/python -m bench --full

migrate: setup ## Apply every service's migrations to its database
	$(BIN)/python -m crmkit.devstack migrate

token: setup ## Print a development token: make token USER=manager.li
	@$(BIN)/python -m crmkit.devauth $(TOKEN_USER)

catalogue: setup ## Regenerate the event catalogue (docs/events.md) from the JSON Schemas
	$(BIN)/python -m crmkit.catalogue > docs/events.md

clean: ## Remove the virtual environments and local data
	rm -rf $(VENV) .tools var
