# Two commands on a fresh machine: `make run` (the whole pipeline, locally) and `make test`.
# Both create .venv/ themselves from requirements.lock.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: setup run test test-fast bench notebooks lint typecheck render validate clean help

help:
	@echo "make run        the whole state machine locally on a synthetic data set"
	@echo "make test       set up .venv and run every test (what CI runs)"
	@echo "make test-fast  unit tests only"
	@echo "make bench      benchmarks -> bench/results/"
	@echo "make notebooks  execute the notebooks with papermill -> notebooks/output/"
	@echo "make lint       ruff + mypy"

$(STAMP): pyproject.toml requirements.lock
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade "pip>=24"
	$(PY) -m pip install --quiet -r requirements.lock
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	$(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $(STAMP)

setup: $(STAMP)

run: setup
	$(PY) -m workflow run --local

test: setup
	$(PY) -m pytest

test-fast: setup
	$(PY) -m pytest tests/unit

bench: setup
	$(PY) -m bench

notebooks: setup
	$(PY) -m workflow notebooks

lint: setup
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

typecheck: setup
	$(PY) -m mypy workflow container/mask_r_cnn

render: setup
	$(PY) -m workflow render

validate: setup
	$(PY) -m workflow validate

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache notebooks/output
