# sparkml_ops: `make quickstart` and `make test` do all the set-up on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: help quickstart test test-fast lint bench clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

$(STAMP): setup.py
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

quickstart: $(STAMP)  ## run the quickstart pipeline on the embedded default root
	$(PY) jobs/quickstart.py

test: $(STAMP)  ## run the whole test suite (needs Java 17 for the Spark tests)
	$(PY) -m pytest -q

lint: $(STAMP)  ## ruff + import layers
	$(VENV)/bin/ruff check sparkml_ops jobs tests bench examples
	$(VENV)/bin/lint-imports

bench: $(STAMP)  ## benchmarks against MLflow's own stores (prints JSON lines)
	$(PY) -m pip install --quiet -e '.[bench]'
	$(PY) bench/run_all.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
