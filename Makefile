# Two commands matter: `make run` (demo server on SQLite) and `make test` (the suite on SQLite).
# Everything they need is installed here, into .venv, from the project's own files.

PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
PYTEST_WORKERS ?= 2
PG_TEST_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/postgres

.PHONY: install run test test-pg lint format openapi browser-deps bench clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

run: install
	$(BIN)/migrant migrate
	$(BIN)/migrant seed-demo
	$(BIN)/migrant serve --host 127.0.0.1 --port 8000

test: install
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS)

# The same suite on PostgreSQL (each run creates and drops its own databases on that server).
test-pg: install
	TEST_DATABASE_URL=$(PG_TEST_URL) $(BIN)/python -m pytest -n $(PYTEST_WORKERS)

# The code is formatted by hand to 120 columns; `make format` is there for whoever wants ruff's layout.
lint: install
	@status=0; \
	$(BIN)/ruff check app tests bench migrations || status=1; \
	$(BIN)/mypy app || status=1; \
	exit $$status

format: install
	$(BIN)/ruff format app tests bench

openapi: install
	$(BIN)/migrant openapi --out openapi/openapi.json

# Headless Chromium for the offline /docs check (Debian's package; needs root, as on CI).
browser-deps:
	command -v chromium >/dev/null 2>&1 || (export DEBIAN_FRONTEND=noninteractive; \
		apt-get update -qq && apt-get install -y -qq chromium >/dev/null)

clean:
	rm -rf $(VENV) data/*.db data/*.db-* .mypy_cache .ruff_cache
