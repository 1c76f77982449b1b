# Every target makes its own virtual environment first, so each works on a fresh machine
# with nothing but python3. Every environment installs from the pinned, hashed lock files in
# requirements/ (and benchmarks/peers/locks/): a new release upstream cannot change what the
# tests run on. `make lock` refreshes every lock file; commit what it changes.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
# pytest's workers: CI machines have 2 cores; "auto" uses them all.
WORKERS ?= auto
UV_VERSION := 0.13.8
PIP := pip install --quiet --disable-pip-version-check

.PHONY: demo test test-main test-core-coverage test-envs lint bench bench-peers mutation lock clean

$(BIN)/capledger: pyproject.toml requirements/core.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/$(PIP) -r requirements/core.txt
	$(BIN)/$(PIP) --no-deps -e .
	touch $@

# The test environments install with uv (pinned here): the same locks, in a fraction of pip's
# time. tests/integrations/run_envs.py uses this uv too.
$(VENV)/.dev: pyproject.toml requirements/dev.txt $(BIN)/capledger
	$(BIN)/$(PIP) uv==$(UV_VERSION)
	$(BIN)/uv pip install --quiet --python $(BIN)/python --require-hashes -r requirements/dev.txt
	touch $@

## The demo: 1000 concurrent agents against user, tenant and feature caps on SQLite.
demo: $(BIN)/capledger
	$(BIN)/capledger demo

## The whole test suite (PostgreSQL tests need the server running). The LiteLLM and
## Datasette suites need SDK versions that conflict, so each runs in a venv of its own.
test: test-main test-core-coverage test-envs

test-main: $(VENV)/.dev
	$(BIN)/pytest -q -n $(WORKERS)

## The state machine alone under coverage.py: its branch coverage of src/capledger/_core/,
## printed, and every branch it misses listed with its reason in tests/stateful/uncovered.toml
## (about 30 s: the memory:// machine, 500 derandomized examples).
test-core-coverage: $(VENV)/.dev
	$(BIN)/python tests/stateful/core_coverage.py

test-envs: $(VENV)/.dev
	$(BIN)/python tests/integrations/run_envs.py

lint: $(VENV)/.dev
	$(BIN)/ruff check src tests benchmarks conftest.py
	$(BIN)/ruff format --check src tests benchmarks conftest.py
	$(BIN)/mypy src/capledger

## Mutation testing of src/capledger/_core/ and src/capledger/money.py with mutmut, configured
## in pyproject.toml's [tool.mutmut]; docs/testing.md has the last score and the survivors.
## Scheduled, not part of `make test`: over an hour on 2 shared cores. It starts afresh each
## time; the results stay in mutants/ (`.venv-mutation/bin/mutmut results`, `... show NAME`).
MUTATION_VENV ?= .venv-mutation
MUTATION_WORKERS ?= 1

$(MUTATION_VENV)/.installed: pyproject.toml requirements/mutation.txt
	$(PYTHON) -m venv $(MUTATION_VENV)
	$(MUTATION_VENV)/bin/$(PIP) uv==$(UV_VERSION)
	$(MUTATION_VENV)/bin/uv pip install --quiet --python $(MUTATION_VENV)/bin/python \
		--require-hashes -r requirements/mutation.txt
	$(MUTATION_VENV)/bin/$(PIP) --no-deps -e .
	touch $@

mutation: $(MUTATION_VENV)/.installed
	rm -rf mutants
	nice -n 10 $(MUTATION_VENV)/bin/mutmut run --max-children $(MUTATION_WORKERS)
	$(MUTATION_VENV)/bin/mutmut export-cicd-stats
	cat mutants/mutmut-cicd-stats.json

## The core benchmarks, run one after the other; docs/benchmarks.md is rewritten from their
## output, with the commit and the machine (a few minutes; run it on a quiet machine).
bench: $(VENV)/.dev
	$(BIN)/python benchmarks/report.py

## The peers head to head: results in build/bench-peers/; WRITE=1 also updates
## docs/benchmarks-peers.md, docs/img/peers.png and the README's table.
bench-peers:
	bash benchmarks/peers/run.sh $(if $(WRITE),--write)

## Refresh every lock file from pyproject.toml, requirements/*.in and the peers' pins. A pin
## stays unless it no longer fits; `make lock UPGRADE=1` moves every pin to the newest release.
lock:
	$(PYTHON) -m venv .venv-lock
	.venv-lock/bin/$(PIP) uv==$(UV_VERSION)
	PYTHON=$(PYTHON) UV=.venv-lock/bin/uv bash requirements/lock.sh

clean:
	rm -rf $(VENV) .venv-ci .venv-lock .venv-litellm .venv-llm $(MUTATION_VENV) mutants build \
		capledger-demo.db* .pytest_cache .mypy_cache .ruff_cache
