# shoal: short targets. `make run` and `make test` work on a fresh machine.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DATA ?= data
SF ?= 0.1

.PHONY: setup chromium run test test-fast test-ray lint typecheck bench bench-materialized bench-ray bench-skew proto bench-tpcds clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

setup: $(VENV)/.installed

# Headless Chromium (Debian's package) renders the stage-graph picture in the tests.
# Installed once, when absent; a machine that has it is left alone.
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
		echo "installing Debian's chromium (for the HTML picture tests)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

# The main job: generate TPC-H SF0.1 (if absent) and run Q1 embedded, with its EXPLAIN.
run: setup
	$(BIN)/python -m shoal.demo --data $(DATA) --sf $(SF)

# Everything CI runs: lint, types, and the whole test suite (slow tests included).
test: setup chromium
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy src
	$(BIN)/python -m pytest tests
	# The differential suites again with every exchange materialized (retry_policy="task").
	SHOAL_RETRY_POLICY=task $(BIN)/python -m pytest tests/differential -q
	# TPC-H SF 0.1 and the differential suites again with every task a Ray task (one local Ray).
	SHOAL_RUNTIME=ray $(BIN)/python -m pytest tests/test_tpch.py tests/differential -m "ray and not slow" -q

test-ray: setup
	SHOAL_RUNTIME=ray $(BIN)/python -m pytest tests/test_tpch.py tests/differential -m "ray and not slow" -q
	$(BIN)/python -m pytest tests/test_ray.py tests/test_ray_cluster.py -q

test-fast: setup
	$(BIN)/python -m pytest tests -m "not slow"

lint: setup
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: setup
	$(BIN)/mypy src

bench: setup
	$(BIN)/python bench/tpch.py --sf 1 --runs 5

# Materialized (retry_policy="task") vs pipelined exchanges vs DuckDB, TPC-H SF 1, one run.
bench-materialized: setup
	$(BIN)/python bench/materialized.py --sf 1 --runs 3

# The Ray runtime vs the embedded one, TPC-H SF 1, 2 CPUs, one run (where Ray's time goes).
bench-ray: setup
	$(BIN)/python bench/ray_runtime.py --sf 1 --runs 3 --cpus 2

# Skew: uniform / Zipf(1.1) / 90%-hot keys, mitigation on and off (20 M rows), then the
# hot vs uniform join on Ray with 2 workers at partitions 8.
bench-skew: setup
	$(BIN)/python bench/skew.py
	$(BIN)/python bench/skew.py --runtime ray --workers 2

# The Flight SQL messages: regenerate the committed flight_sql_pb2.py(i) after editing
# src/shoal/server/flight_sql.proto (protobuf's own compiler, from grpcio-tools).
proto: setup
	cd src/shoal/server && ../../../$(BIN)/python -m grpc_tools.protoc -I. --python_out=. --pyi_out=. flight_sql.proto

# TPC-DS SF 1: the 99 queries side by side with DuckDB in one run.
bench-tpcds: setup
	$(BIN)/python bench/tpcds.py --sf 1 --runs 1

clean:
	rm -rf $(VENV) build *.egg-info
