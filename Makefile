# Trilha: the two commands are `make demo` and `make test` (see README.md).
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STATE ?= $(CURDIR)/.trilha
INPUT ?= $(CURDIR)/include/sample/inmet
PROJECT ?= inmet
STAMP := $(VENV)/.installed-$(shell cat requirements*.txt constraints.txt pyproject.toml | sha256sum | cut -c1-12)
export TRILHA_STATE_DIR := $(STATE)

.PHONY: demo test chaos lint up down status ui venv clean-state

$(STAMP):
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "Trilha needs Python 3.11, got " + sys.version.split()[0]'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip wheel
	$(BIN)/pip install --quiet -c constraints.txt -r requirements-test.txt
	$(BIN)/pip install --quiet --no-deps -e .
	@rm -f $(VENV)/.installed-* && touch $@

venv: $(STAMP)

## Bring the local stack up (Postgres, S3 server, MongoDB), migrate, load airflow_settings.yaml.
up: venv
	$(BIN)/python -m trilha.ops.devstack up
	@set -a && . $(STATE)/env && set +a && \
	  $(BIN)/airflow db migrate >$(STATE)/airflow-db-migrate.log 2>&1 && \
	  $(BIN)/python -m trilha.ops.settings && \
	  $(BIN)/python -m trilha.ops.migrate --dsn "$$($(BIN)/python -m trilha.ops.devstack dsn)"

## The Airflow UI on the local stack (api-server, scheduler, dag-processor, triggerer), on 127.0.0.1:
## a free port or TRILHA_UI_PORT. Prints the URL and the login; `make down` stops it with the stack.
ui: up
	$(BIN)/python -m trilha.ops.ui up

## Stop the UI (if it runs) and the stack.
down:
	@test -x $(BIN)/python && $(BIN)/python -m trilha.ops.devstack down || true

status:
	$(BIN)/python -m trilha.ops.devstack status

## Command 1: run the whole pipeline on the bundled INMET sample (or INPUT=/folder PROJECT=name).
demo: up
	@set -a && . $(STATE)/env && set +a && scripts/demo.sh "$(INPUT)" "$(PROJECT)"

## Command 2: the full test suite against real Postgres, S3 server and MongoDB processes.
test: venv
	$(BIN)/ruff check dags plugins tests bench
	$(BIN)/ruff format --check dags plugins tests bench
	$(BIN)/mypy
	$(BIN)/pytest

## The whole chaos suite (kills and outages, at least 24 trials; `make test` runs the cheap set).
chaos: venv
	TRILHA_CHAOS=full $(BIN)/pytest -s tests/chaos

lint: venv
	$(BIN)/ruff check dags plugins tests bench && $(BIN)/ruff format --check dags plugins tests bench && $(BIN)/mypy
