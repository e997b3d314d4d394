"""The Dockerfile as text: non-root, a HEALTHCHECK, no secrets baked in, no build tools in the
final stage, the SQL and migrations inside, dependencies only from the hash-locked
requirements.txt. (`make lint` runs hadolint on it; `make image-test`, tests/test_image.py,
builds the image and runs it.)"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = (ROOT / "Dockerfile").read_text()
FINAL_STAGE = DOCKERFILE.split("\nFROM ")[-1]


def instructions(stage: str, keyword: str) -> list[str]:
    return [line for line in stage.splitlines() if line.startswith(keyword + " ")]


def test_the_final_stage_runs_as_a_non_root_user() -> None:
    [user] = instructions(FINAL_STAGE, "USER")
    assert user.split()[1].split(":")[0] not in ("root", "0")
    assert "useradd --system --uid 10001" in FINAL_STAGE


def test_there_is_a_healthcheck_on_health() -> None:
    [check] = [line for line in FINAL_STAGE.splitlines() if line.startswith("HEALTHCHECK")]
    assert "/health" in FINAL_STAGE[FINAL_STAGE.index(check) :]


def test_no_secret_is_baked_in() -> None:
    for line in instructions(DOCKERFILE, "ENV") + instructions(DOCKERFILE, "ARG"):
        assert not re.search(r"(SECRET|KEY|PASSWORD|DATABASE_URL|TOKEN)", line), line
    assert not re.search(r"(sk|rk)_(test|live)_|whsec_", DOCKERFILE)
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert ".env" in ignored
    assert ".git" in ignored


def test_the_final_stage_has_no_build_tools() -> None:
    assert FINAL_STAGE.startswith("python:3.11-slim")
    assert "apt-get" not in FINAL_STAGE
    assert "pip install" not in FINAL_STAGE
    assert "gcc" not in FINAL_STAGE
    assert "COPY --from=build /opt/venv /opt/venv" in FINAL_STAGE


def test_queries_and_migrations_ship_in_the_image() -> None:
    copied = " ".join(instructions(FINAL_STAGE, "COPY"))
    for folder in ("queries", "migrations", "service"):
        assert f" {folder} " in copied + " ", folder


def test_the_build_installs_only_the_hash_locked_dependencies() -> None:
    [build_stage] = [stage for stage in DOCKERFILE.split("\nFROM ") if " AS build" in stage]
    assert "COPY requirements.txt /tmp/requirements.txt" in build_stage
    assert "--require-hashes --only-binary=:all:" in build_stage
    assert "-r /tmp/requirements.txt" in build_stage
    assert "pip install ." not in DOCKERFILE  # the service is copied, never built or fetched
    for folder in ("sandbox", "devtools", "tests", "bench"):
        assert f"COPY {folder}" not in DOCKERFILE, folder


def test_the_build_context_is_an_allow_list() -> None:
    lines = [
        line
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line and not line.startswith("#")
    ]
    assert lines[0] == "*"
    allowed = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    assert allowed == {"requirements.txt", "service", "queries", "migrations"}


def test_the_build_ca_bundle_is_a_secret_mount_of_the_pip_step_only() -> None:
    # Where TLS is intercepted, the host's bundle is lent as a build secret: never COPY'd,
    # never an ARG or ENV, and only the build stage's pip step mounts it.
    assert DOCKERFILE.count("--mount=type=secret,id=pip_cert") == 1
    assert "--mount" not in FINAL_STAGE
    assert "pip.conf" not in DOCKERFILE
