# payment-service. Build: docker build -t payment-service .   (or `make image`, with buildah)
# Secrets come from the environment or mounted files (*_FILE); none is baked in.
# The runtime dependencies are installed from requirements.txt, every file checked against its
# sha256 (`make lock` regenerates it from pyproject.toml); the service itself is copied as source,
# so nothing is built here and no unhashed package is fetched.

FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
COPY requirements.txt /tmp/requirements.txt
# Wheels only: a package that would need a compiler fails the build instead of compiling.
# pip and setuptools leave the venv afterwards: serve, migrate and reconcile never use them.
# The extension modules' debug symbols go too (uvloop's alone is 12 of its 14 MB); binutils
# stays in this stage. Its version is whatever the base's Debian ships: it shapes no file
# the service runs but the stripped ones. Libraries bundled in *.libs/ are left as shipped.
# A network that intercepts TLS lends its CA bundle as the build secret `pip_cert` (`make image`
# does where $PIP_CERT is set): mounted for this step only, never part of a layer.
# hadolint ignore=DL3008
RUN --mount=type=secret,id=pip_cert \
    if [ -f /run/secrets/pip_cert ]; then export PIP_CERT=/run/secrets/pip_cert; fi \
    && apt-get update \
    && apt-get install -y --no-install-recommends binutils \
    && rm -rf /var/lib/apt/lists/* \
    && python -m venv /opt/venv \
    && /opt/venv/bin/pip install --no-cache-dir --require-hashes --only-binary=:all: \
        -r /tmp/requirements.txt \
    && /opt/venv/bin/pip uninstall --yes --quiet pip setuptools \
    && find /opt/venv -name '*.cpython-*.so' -not -path '*.libs/*' \
        -exec strip --strip-unneeded {} +

FROM python:3.11-slim
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/app \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PORT=5003
RUN groupadd --system --gid 10001 appuser \
    && useradd --system --uid 10001 --gid appuser --home-dir /app --shell /usr/sbin/nologin appuser
WORKDIR /app
COPY --from=build /opt/venv /opt/venv
COPY --chown=root:root queries ./queries
COPY --chown=root:root migrations ./migrations
COPY --chown=root:root service ./service
USER 10001:10001
EXPOSE 5003
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import os,sys,urllib.request; sys.exit(0 if urllib.request.urlopen(f'http://127.0.0.1:{os.environ.get(\"PORT\",\"5003\")}/health', timeout=2).status == 200 else 1)"]
ENTRYPOINT ["python", "-m", "service"]
CMD ["serve"]
