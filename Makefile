# payment-service: `make run` serves it locally, `make test` runs the whole suite.
# Both install into .venv first; nothing needs installing by hand.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

# Commands that act on what a running `make run` chose (./.data/run.env; the environment wins).
WITH_RUN_ENV := $(PY) -m devtools.run_env

.PHONY: install run test lint fmt clean clean-data chromium promtool bench migrate reconcile send-event trigger

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

## Serve on http://127.0.0.1:5003 with an embedded PostgreSQL (./.data) and the Stripe
## sandbox unless DATABASE_URL / STRIPE_SECRET_KEY say otherwise.
## SANDBOX_DELIVERY=shuffled (SANDBOX_MAX_DELAY=30) makes the sandbox deliver like Stripe after
## an outage: each event held a random delay, so later events overtake earlier ones.
export SANDBOX_DELIVERY SANDBOX_MAX_DELAY
run: install
	$(PY) -m devtools.run

## Apply pending migrations to make run's database (or DATABASE_URL's).
migrate: install
	$(WITH_RUN_ENV) $(PY) -m service migrate

## Apply Stripe events whose webhooks never arrived: make reconcile SINCE=72h [DRY_RUN=1]
SINCE ?= 72h
reconcile: install
	$(WITH_RUN_ENV) $(PY) -m service reconcile --since $(SINCE) $(if $(DRY_RUN),--dry-run)

## Post one raw, hand-made signed event to the service (bypasses the sandbox):
## make send-event EVENT=checkout.session.completed.paid PROJECT=proj_demo_1 [SESSION=cs_…]
EVENT ?= checkout.session.completed.paid
PROJECT ?= proj_demo_1
send-event: install
	$(WITH_RUN_ENV) $(PY) -m devtools.send_event $(EVENT) --project $(PROJECT) $(if $(SESSION),--session $(SESSION))

## Move a sandbox session as its customer, bank or card network would (stripe trigger):
## make trigger ACTION=complete PROJECT=proj_demo_1 (fail, expire, refund, dispute, …)
ACTION ?= complete
trigger: install
	$(WITH_RUN_ENV) $(PY) -m sandbox trigger $(ACTION) $(if $(SESSION),--session $(SESSION),--project $(PROJECT))

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

# --- The container image (see README "Container image") --------------------------------
# Engine: Debian's buildah (no Docker engine needed); the run test uses `buildah run`.
IMAGE ?= payment-service:latest
IMAGE_TOOLS := buildah podman mmdebstrap
.PHONY: lock image image-tools image-test

## requirements.txt: the image's runtime dependencies from pyproject.toml, pinned, every file's
## sha256 listed (the Dockerfile installs it with --require-hashes). The one command to run
## after changing [project] dependencies; `make test` keeps using pyproject's ranges.
lock: install
	$(VENV)/bin/uv pip compile pyproject.toml --quiet --generate-hashes \
	    --python-version 3.11 --python-platform x86_64-unknown-linux-gnu \
	    --custom-compile-command 'make lock' --output-file requirements.txt

image-tools:
	for tool in $(IMAGE_TOOLS); do command -v $$tool >/dev/null || missing=1; done; \
	    [ -z "$$missing" ] || (apt-get update && apt-get install -y $(IMAGE_TOOLS))

## Build $(IMAGE) from the Dockerfile; writes build/image/sbom.cdx.json (CycloneDX).
image: install image-tools
	$(PY) -m devtools.image --tag $(IMAGE)

## Build it, then run it as a user would (tests/test_image.py): migrate, serve, health,
## a paid checkout learnt by signed webhook, SIGTERM; and check what the image holds.
image-test: image
	IMAGE=$(IMAGE) $(PY) -m pytest -m image tests/test_image.py -s -p no:cacheprovider \
	    --async-test-timeout=180
