# The two commands of the README. Both set everything up from a fresh machine
# (Python 3.11 and pip are all they need) and are safe to run again.
SHELL := /bin/bash
UV := $(shell command -v uv 2>/dev/null || echo "python3 -m uv")
PROJECT := airflow_segprovider/example/segments_project
DEMO_DIR := .demo
DEMO_DB := $(DEMO_DIR)/warehouse.duckdb

.PHONY: setup demo cli-demo test bench clean docker-lock docker-env

setup:
	@command -v uv >/dev/null 2>&1 || python3 -m uv --version >/dev/null 2>&1 || python3 -m pip install --quiet uv
	$(UV) sync --frozen --all-extras --compile-bytecode

## The main job on the embedded default: generate data, start the destination sandbox, run
## segments_centralized for two days with dag.test(), print the summary, stop everything.
demo: setup
	$(UV) run segprovider demo --workdir $(DEMO_DIR)

## A tour of the command line on the same data: validate, describe, evaluate, preview, explain.
cli-demo: setup
	$(UV) run segprovider validate $(PROJECT)
	$(UV) run segprovider describe $(PROJECT)
	@mkdir -p $(DEMO_DIR) && rm -f $(DEMO_DB)
	$(UV) run segprovider generate --customers 50000 --db $(DEMO_DB)
	$(UV) run segprovider evaluate $(PROJECT) --db $(DEMO_DB) --as-of 2026-11-23 --run-id demo_day_1
	$(UV) run segprovider evaluate $(PROJECT) --db $(DEMO_DB) --as-of 2026-11-24 --run-id demo_day_2
	$(UV) run segprovider preview $(PROJECT) spring_promo --db $(DEMO_DB) --as-of 2026-11-24
	$(UV) run segprovider explain $(PROJECT) vip 42 --db $(DEMO_DB) --as-of 2026-11-24

## The test suite (what CI runs). Needs the local PostgreSQL server for integration tests.
test: setup
	$(UV) run pytest -n 2 --dist loadfile

bench: setup
	$(UV) run python benchmarks/evaluation.py
	$(UV) run python benchmarks/sync_throughput.py
	$(UV) run python benchmarks/reconcile.py
	$(UV) run python benchmarks/attribute_push.py
	$(UV) run python benchmarks/sandbox_throughput.py

## The Docker image's pinned requirements: uv.lock exported (tests/docker/test_docker_lock.py checks it is current).
docker-lock:
	$(UV) export --frozen --format requirements-txt --no-dev --no-emit-project --extra postgres > docker/requirements.lock.txt

## docker/.env for docker/compose.yaml: the example's variables with fresh random secrets (never overwrites one).
docker-env:
	python3 docker/make_env.py

clean:
	rm -rf $(DEMO_DIR) .pytest_cache
