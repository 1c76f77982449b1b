# Every target makes its own virtual environment first, so each works on a fresh machine
# with nothing but python3.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin

.PHONY: demo test lint bench bench-peers clean

$(BIN)/capledger: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.dev: pyproject.toml $(BIN)/capledger
	$(BIN)/pip install --quiet -e ".[dev,postgres,prices,tokenizers]"
	touch $@

## The demo: 1000 concurrent agents against user, tenant and feature caps on SQLite.
demo: $(BIN)/capledger
	$(BIN)/capledger demo

## The whole test suite (PostgreSQL tests need the server running). The LiteLLM and
## Datasette suites need SDK versions that conflict, so each runs in a venv of its own.
test: $(VENV)/.dev
	$(BIN)/pytest -q
	$(BIN)/python tests/integrations/run_envs.py

lint: $(VENV)/.dev
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy src/capledger

bench: $(VENV)/.dev
	$(BIN)/pip install --quiet token-budget-py
	$(BIN)/python benchmarks/cap_correctness.py --store sqlite --store memory --runs 5
	$(BIN)/python benchmarks/throughput.py --store sqlite --history 100000 --runs 5
	$(BIN)/python benchmarks/memory_vs_token_budget.py --runs 7

bench-peers:
	bash benchmarks/peers/run.sh

clean:
	rm -rf $(VENV) .venv-ci capledger-demo.db* .pytest_cache .mypy_cache .ruff_cache
