# gen_loop developer targets. `make help` lists them.
PY ?= .venv/bin/python

.PHONY: help setup run smoke test test-fast lint format typecheck bench clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

setup:  ## create .venv and install gen_loop with its dev tools
	python3 -m venv .venv && .venv/bin/pip install -e ".[dev]"

run:  ## the whole loop on the embedded demo target
	$(PY) -m gen_loop run

smoke:  ## a seconds-long run with the smoke profile
	$(PY) -m gen_loop run debug=smoke

test:  ## the test suite (as CI runs it)
	$(PY) -m pytest

test-fast:  ## tests without the slow end-to-end ones
	$(PY) -m pytest -m "not slow"

lint:  ## ruff lint and format check
	$(PY) -m ruff check gen_loop tests experiments && $(PY) -m ruff format --check gen_loop tests experiments

format:  ## ruff format
	$(PY) -m ruff format gen_loop tests experiments

typecheck:  ## mypy on the package
	$(PY) -m mypy gen_loop

bench:  ## the default-run benchmark (experiments/default_run)
	$(PY) experiments/default_run/run.py

clean:  ## remove run outputs (not the cache)
	rm -rf runs outputs multirun mlflow.db mlartifacts
