# Two commands matter: `make run` (demo server on SQLite) and `make test` (the suite on SQLite).
# Everything they need is installed here, into .venv, from the project's own files.

PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
PYTEST_WORKERS ?= 2
PG_TEST_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/postgres

.PHONY: install interop-deps run test test-pg lint format openapi fuzz browser-deps bench clean lock

# Exact versions from constraints.txt (the ranges are pyproject.toml's; `make lock` refreshes the versions).
$(STAMP): pyproject.toml constraints.txt
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# Node packages for the WatermelonDB interop test (tests/interop; exact versions from its package-lock.json).
# Without npm (or when npm ci fails) the rest of the suite still runs and the test is skipped; CI (.ci/run)
# installs Node and requires the test to run (REQUIRE_NODE=1).
INTEROP := tests/interop
INTEROP_STAMP := $(INTEROP)/node_modules/.installed-stamp

$(INTEROP_STAMP): $(INTEROP)/package.json $(INTEROP)/package-lock.json
	@if ! command -v npm >/dev/null 2>&1; then \
		echo "npm not found: tests/sync/test_watermelon_interop.py will be skipped (install Node >= 18 to run it)"; \
	elif ! (cd $(INTEROP) && npm ci --no-audit --no-fund --loglevel=error && touch node_modules/.installed-stamp); then \
		echo "npm ci failed in $(INTEROP): the interop test will be skipped (fails on CI)"; \
	fi

interop-deps: $(INTEROP_STAMP)

run: install
	$(BIN)/migrant migrate
	$(BIN)/migrant seed-demo
	$(BIN)/migrant cycle-open
	$(BIN)/migrant serve --host 127.0.0.1 --port 8000

test: install interop-deps
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS)

# The same suite on PostgreSQL (each run creates and drops its own databases on that server).
test-pg: install interop-deps
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

# Schemathesis against the app's own OpenAPI, as a worker and as an admin, on a throwaway SQLite database (.ci/fuzz).
fuzz: install
	.ci/fuzz

# Headless Chromium for the offline /docs check (Debian's package; needs root, as on CI).
browser-deps:
	command -v chromium >/dev/null 2>&1 || (export DEBIAN_FRONTEND=noninteractive; \
		apt-get update -qq && apt-get install -y -qq chromium >/dev/null)

clean:
	rm -rf $(VENV) $(INTEROP)/node_modules data/*.db data/*.db-* .mypy_cache .ruff_cache

# The newest versions pyproject.toml allows, resolved in a fresh environment and written to constraints.txt (then
# run `make test` and .ci/run before committing it).
lock:
	rm -rf .lock-venv
	$(PY) -m venv .lock-venv
	.lock-venv/bin/python -m pip install --quiet --upgrade pip
	.lock-venv/bin/python -m pip install --quiet '.[dev]'
	{ grep '^#' constraints.txt; .lock-venv/bin/python -m pip freeze --exclude-editable | grep -v '^migrant-services'; } > constraints.new
	mv constraints.new constraints.txt
	rm -rf .lock-venv
