# Every target bootstraps .venv itself, so a fresh clone needs only Python 3.11+.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
PYTEST_ARGS ?=

.PHONY: all venv system-deps lint test test-fast bench demo mutate clean

all: test

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

# mosquitto is the one system package the test suite needs; install it when we can.
system-deps:
	@if ! command -v mosquitto >/dev/null && [ ! -x /usr/sbin/mosquitto ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing mosquitto (apt)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mosquitto mosquitto-clients >/dev/null; \
	  else \
	    echo "mosquitto is missing and cannot be installed here: broker tests will skip (sudo apt-get install mosquitto)"; \
	  fi; \
	fi

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

test: $(STAMP) system-deps lint
	$(VENV)/bin/pytest $(PYTEST_ARGS)

test-fast: $(STAMP)
	$(VENV)/bin/pytest tests/unit -q

bench: $(STAMP) system-deps
	$(PY) -m bench.run

# Mutation testing of the contract and decision modules (mutate/run.py): minutes of CPU,
# not part of CI; results in mutate/results/. Run before resolving an issue that touches them.
mutate: $(STAMP)
	nice -n 19 $(PY) -m mutate.run

demo: $(STAMP)
	$(PY) -m edgefleet_orchestrator.demo

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
