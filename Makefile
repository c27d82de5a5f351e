# Two commands on a fresh machine: `make run` (the whole pipeline, locally) and `make test`.
# Both create .venv/ themselves from requirements.lock.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
# Linters that cannot share .venv (checkov pins an old boto3) get their own environments; only
# their executables are exposed, through .tools/bin, so they never shadow .venv's python.
TOOLS := .tools
TOOLS_STAMP := $(TOOLS)/.installed-stamp
CHECKOV_VERSION := 3.3.30
GROOVY_LINT_VERSION := 15.2.2

.PHONY: setup tools run test test-fast bench notebooks lint typecheck render validate clean help

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

$(TOOLS_STAMP):
	mkdir -p $(TOOLS)/bin
	test -x $(TOOLS)/checkov/bin/checkov || ( $(PYTHON) -m venv $(TOOLS)/checkov && \
		$(TOOLS)/checkov/bin/pip install --quiet "checkov==$(CHECKOV_VERSION)" )
	ln -sf ../checkov/bin/checkov $(TOOLS)/bin/checkov
	if command -v npm >/dev/null 2>&1 && command -v java >/dev/null 2>&1; then \
		npm install --silent --no-audit --no-fund --prefix $(TOOLS)/node \
			"npm-groovy-lint@$(GROOVY_LINT_VERSION)" && \
		ln -sf ../node/node_modules/.bin/npm-groovy-lint $(TOOLS)/bin/npm-groovy-lint; \
	else echo "npm or java missing: the Jenkinsfile lint test will be skipped" >&2; fi
	touch $(TOOLS_STAMP)

tools: $(TOOLS_STAMP)

run: setup
	$(PY) -m workflow run --local

test: setup tools
	PATH="$(CURDIR)/$(TOOLS)/bin:$$PATH" $(PY) -m pytest

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
	rm -rf $(VENV) $(TOOLS) .pytest_cache .mypy_cache .ruff_cache notebooks/output
