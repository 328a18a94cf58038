# The README's commands. Every target sets up .venv first, so each one works on a fresh clone.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run check test lint bench clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "firebreak needs Python 3.11+; set PYTHON=python3.11")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $(STAMP)

run: $(STAMP)  ## run the bot (reads .env; see README)
	$(BIN)/firebreak serve

check: $(STAMP)  ## check configuration, Redis and Slack
	$(BIN)/firebreak check

lint: $(STAMP)  ## ruff, mypy (strict) and the import contracts
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

test: lint  ## everything CI runs
	$(BIN)/pytest

bench: $(STAMP)  ## ack latency against a bare aiohttp handler
	$(BIN)/python -m bench.ack_latency

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
