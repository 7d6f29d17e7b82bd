# sparkml_ops: `make quickstart` and `make test` do all the set-up on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: help quickstart test test-fast test-oldest-mlflow lint bench clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

$(STAMP): setup.py
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

quickstart: $(STAMP)  ## run the quickstart pipeline on the embedded default root
	$(PY) jobs/quickstart.py

# Two pytest workers (pytest-xdist), one test file each at a time: most tests wait on JVMs,
# servers and subprocesses, so two at once roughly halve the wall time on a 2-core machine.
XDIST := -n 2 --dist loadfile

test: $(STAMP)  ## run the whole test suite (needs Java 17 for the Spark tests)
	$(PY) -m pytest -q $(XDIST)

# The oldest MLflow of the supported range (setup.py): the store-level tests run on it too.
MLFLOW_OLDEST ?= 3.6.0
OLD_VENV ?= .venv-mlflow-oldest
OLD_STAMP := $(OLD_VENV)/.installed-$(MLFLOW_OLDEST)

$(OLD_STAMP): setup.py
	$(PYTHON) -m venv $(OLD_VENV)
	$(OLD_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(OLD_VENV)/bin/python -m pip install --quiet '.[test]' 'mlflow-skinny==$(MLFLOW_OLDEST)' 'mlflow==$(MLFLOW_OLDEST)' \
		'sqlalchemy>=2,<2.1'  # MLflow 3.6's SQL store (the differential tests' reference) predates SQLAlchemy 2.1
	touch $(OLD_STAMP)

# Tests whose *reference* changed after MLflow 3.6, so they cannot hold there: MLflow 3.6's
# FileStore LIKE does not escape regex characters (fixed later; our search follows the fix,
# and test_differential checks search against the SQL store on 3.6), its FileStore skips the
# experiment-tag length check, and its sklearn log_model has no skops_trusted_types argument.
# Its registry answers a missing model's alias with INVALID_PARAMETER_VALUE (later: RESOURCE_DOES_NOT_EXIST)
# and accepts a non-integer version_number filter (later refused); our registry follows the newer answers.
OLDEST_DESELECT := \
	--deselect tests/registry/test_differential.py::test_aliases \
	--deselect tests/registry/test_differential.py::test_search \
	--deselect tests/tracking/test_search.py::test_filters_match_mlflow \
	--deselect tests/tracking/test_search.py::test_search_experiments_matches_mlflow \
	--deselect 'tests/tracking/test_validation.py::test_same_outcome_as_file_store[experiment tag too long]' \
	--deselect 'tests/artifacts/test_models.py::test_sklearn_model[skops]'

test-oldest-mlflow: $(OLD_STAMP)  ## tracking, artifact and registry store tests (no Spark) on the oldest supported MLflow
	PYTHONPATH=$(CURDIR) $(OLD_VENV)/bin/python -m pytest -q -m 'not spark and not browser' \
		tests/tracking tests/artifacts tests/registry $(OLDEST_DESELECT)

test-fast: $(STAMP)  ## the fast tier: no Spark, no slow or browser tests (a few minutes)
	$(PY) -m pytest -q $(XDIST) -m "not spark and not slow and not browser"

lint: $(STAMP)  ## ruff + import layers + mypy (strict on the public entry points)
	$(VENV)/bin/ruff check sparkml_ops jobs tests bench examples
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy

bench: $(STAMP)  ## benchmarks against MLflow's own stores (prints JSON lines)
	$(PY) -m pip install --quiet -e '.[bench]'
	$(PY) bench/run_all.py

clean:
	rm -rf $(VENV) $(OLD_VENV) build *.egg-info .pytest_cache
