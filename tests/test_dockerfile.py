"""The image: non-root, a HEALTHCHECK, no secrets baked in, no build tools in the final
stage, the SQL and migrations inside. (No Docker engine runs here; `make lint` also runs
hadolint on the Dockerfile.)"""

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
