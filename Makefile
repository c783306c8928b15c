# feedline — `make run` brings up the quickstart, `make test` runs the whole suite as CI does.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: run run-detached stop status install test test-unit lint typecheck bench bench-latency bench-burst bench-sensing bench-load reliability-doc lambda-package infra-check clean

install:  ## create .venv from requirements.lock (installs uv first if missing)
	@PYTHON=$(PYTHON) scripts/bootstrap.sh

run: install  ## start Airflow, load the sample files, report; Ctrl-C stops everything
	@$(PY) -m feedline.quickstart

run-detached: install  ## like run, but leave the stack running (stop it with `make stop`)
	@$(PY) -m feedline.quickstart --detach

stop:  ## stop every process `make run` started
	@if [ -x $(PY) ]; then $(PY) -m feedline.stack stop; else echo "nothing to stop"; fi

status: install  ## feeds' files by state
	@$(VENV)/bin/feedline status

test: install  ## lint, type-check and the whole test suite (unit, integration, end-to-end)
	@scripts/test.sh

test-unit: install  ## the fast tests only (no Airflow)
	@$(VENV)/bin/pytest tests/unit -q

lint: install
	@$(VENV)/bin/ruff check src tests bench dags lambda
	@$(VENV)/bin/ruff format --check src tests bench dags lambda

typecheck: install
	@$(VENV)/bin/mypy

bench: install  ## transform throughput vs the pandas baseline (100 MB and 1 GB)
	@$(PY) bench/transform.py

bench-latency: install  ## landing -> queryable on the local stack, 50 files (docs/benchmarks.md, Latency)
	@$(PY) bench/latency.py --files 50

bench-burst: install  ## 1,000 small files at once on the local stack (docs/benchmarks.md, Bursts)
	@$(PY) bench/burst.py --files 1000 --rows 20

bench-sensing: install  ## worker slots and CPU per hour while waiting, per trigger mode (Sensing)
	@$(PY) bench/sensing.py

bench-load: install  ## feedline loads vs the raw bulk path, DuckDB and PostgreSQL, 10 M rows (Loads)
	@$(PY) bench/load.py

reliability-doc: install  ## run the bad-input corpus and fault suite, then regenerate docs/reliability.md
	@$(PY) scripts/reliability_doc.py

lambda-package: install  ## build the transform Lambda zips (python3.12, arm64 and x86_64) and print their sizes
	@$(PY) lambda/package.py

infra-check: install  ## offline Terraform checks: every file parses, checkov reports no failed check
	@scripts/infra_check.sh

clean: stop
	rm -rf .airflow data/.tmp
