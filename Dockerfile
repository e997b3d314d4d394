# payment-service. Build: docker build -t payment-service .
# Secrets come from the environment or mounted files (*_FILE); none is baked in.

FROM python:3.11-slim AS build
WORKDIR /src
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
COPY pyproject.toml README.md ./
COPY service ./service
COPY sandbox ./sandbox
COPY devtools ./devtools
RUN python -m venv /opt/venv \
    && /opt/venv/bin/pip install --upgrade pip \
    && /opt/venv/bin/pip install .

FROM python:3.11-slim
ENV PATH=/opt/venv/bin:$PATH \
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
