# The two set-up commands of the README. Each creates .venv if missing,
# installs the project into it, then runs.
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: demo test test-fast lock clean

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(VENV)/bin/python pyproject.toml constraints.txt
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -c constraints.txt -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/territory demo

# Two test processes: most broker tests wait on sockets and subprocesses, so two of them
# share this 2-core machine well (the suite takes about half as long). Each process starts
# its own brokers, databases and workers on free ports. `make test PARALLEL=` runs serially.
PARALLEL ?= -n 2 --dist worksteal

# What ruff (lint and format) covers: the product, the benchmarks and the tests.
LINTED := core planner monitor potential detectors rebalancer alerts connectors simulator territory bench tests

test: $(STAMP)
	bash deploy/services/install.sh
	$(VENV)/bin/ruff check $(LINTED)
	$(VENV)/bin/ruff format --check $(LINTED)
	$(VENV)/bin/mypy
	$(VENV)/bin/pytest $(PARALLEL)

test-fast: $(STAMP)
	$(VENV)/bin/ruff check $(LINTED)
	$(VENV)/bin/ruff format --check $(LINTED)
	$(VENV)/bin/mypy
	$(VENV)/bin/pytest $(PARALLEL) -m 'not slow'

# Resolve pyproject.toml's ranges anew in a throwaway venv and pin the result.
lock:
	rm -rf .lock-venv && $(PYTHON) -m venv .lock-venv
	.lock-venv/bin/pip install --quiet --upgrade pip
	.lock-venv/bin/pip install --quiet -e '.[test]'
	{ head -n 2 constraints.txt; .lock-venv/bin/pip freeze --exclude-editable; } > constraints.new && mv constraints.new constraints.txt
	rm -rf .lock-venv

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache
