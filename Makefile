# shoal: short targets. `make run` and `make test` work on a fresh machine.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DATA ?= data
SF ?= 0.1

.PHONY: setup run test test-fast lint typecheck bench bench-tpcds clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

setup: $(VENV)/.installed

# The main job: generate TPC-H SF0.1 (if absent) and run Q1 embedded, with its EXPLAIN.
run: setup
	$(BIN)/python -m shoal.demo --data $(DATA) --sf $(SF)

# Everything CI runs: lint, types, and the whole test suite (slow tests included).
test: setup
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy src
	$(BIN)/python -m pytest tests

test-fast: setup
	$(BIN)/python -m pytest tests -m "not slow"

lint: setup
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: setup
	$(BIN)/mypy src

bench: setup
	$(BIN)/python bench/tpch.py --sf 1 --runs 5

bench-tpcds: setup
	$(BIN)/python bench/tpcds.py --sf 1 --runs 1

clean:
	rm -rf $(VENV) build *.egg-info
