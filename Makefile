# payment-service: `make run` serves it locally, `make test` runs the whole suite.
# Both install into .venv first; nothing needs installing by hand.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: install run test lint fmt clean clean-data chromium promtool bench

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

## Serve on http://127.0.0.1:5003 with an embedded PostgreSQL (./.data) and the Stripe
## sandbox unless DATABASE_URL / STRIPE_SECRET_KEY say otherwise.
run: install
	$(PY) -m devtools.run

## The whole suite. Uses TEST_DATABASE_URL's server when set, else starts its own.
## The browser test (tests/test_browser_*.py) needs Debian's chromium: `chromium` installs it.
test: install chromium promtool
	$(PY) -m pytest $(PYTEST_ARGS)

## Debian's chromium for the browser test (Playwright drives it; never `playwright install`).
chromium:
	command -v chromium >/dev/null || (apt-get update && apt-get install -y chromium)

## promtool (Debian's prometheus package) checks and unit-tests deploy/alerts.yaml.
promtool:
	command -v promtool >/dev/null || (apt-get update && apt-get install -y --no-install-recommends prometheus)

## Throughput against the database's own ceiling (pgbench); see BENCHMARKS.md. Needs wrk.
bench: install
	command -v wrk >/dev/null || (apt-get update && apt-get install -y wrk)
	$(PY) -m bench.run $(BENCH_ARGS)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/hadolint Dockerfile

fmt: install
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

clean-data:
	rm -rf .data

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
