# payment-service: `make run` serves it locally, `make test` runs the whole suite.
# Both install into .venv first; nothing needs installing by hand.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: install run test lint fmt clean clean-data chromium bench

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
test: install chromium
	$(PY) -m pytest $(PYTEST_ARGS)

## Debian's chromium for the browser test (Playwright drives it; never `playwright install`).
chromium:
	command -v chromium >/dev/null || (apt-get update && apt-get install -y chromium)

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
