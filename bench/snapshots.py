"""Other code than this tree's, measured by this bench: `--before REF` (the service of REF
next to this one) and `--ref REF` (the whole run in a snapshot of REF)."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Any

from bench.common import BENCH, ROOT, log
from bench.service import Profile

# The bench's own tools, always this tree's, whatever code it measures: the bench, the
# Stripe stand-in and its example events, the embedded PostgreSQL and process helpers.
TOOLS = ("bench", "sandbox", "devtools")


def _git() -> str:
    git = shutil.which("git")
    if git is None:
        raise SystemExit("--ref and --before need git")
    return git


def _short_sha(git: str, ref: str) -> str:
    return subprocess.run(  # noqa: S603 - git, fixed arguments
        [git, "rev-parse", "--short", ref], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()


def _extract(git: str, sha: str, folder: Path, *paths: str) -> None:
    """`paths` (all, when none) as committed at `sha`, written below `folder`."""
    archive = subprocess.run(  # noqa: S603 - git, fixed arguments
        [git, "archive", "--format=tar", sha, *paths], cwd=ROOT, capture_output=True, check=True
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(folder, filter="data")


def before_profile(ref: str, workdir: Path) -> Profile:
    """The service, queries and migrations of `ref`, extracted into workdir/before."""
    git = _git()
    sha = _short_sha(git, ref)
    code = workdir / "before"
    _extract(git, sha, code, "service", "queries", "migrations")
    return Profile("defaults", tuned=False, code=code, ref=sha)


def run_at_ref(ref: str, argv: list[str]) -> int:
    """Re-run this bench in a `git archive` snapshot of `ref`, with this tree's TOOLS."""
    git = _git()
    argv = [a for a in argv if a != "--ref" and not a.startswith("--ref=")]
    if not any(a == "--out" or a.startswith("--out=") for a in argv):
        argv += ["--out", str(BENCH / "out")]
    sha = _short_sha(git, ref)
    with tempfile.TemporaryDirectory(prefix="payment-bench-src-") as tmp:
        _extract(git, sha, Path(tmp))
        for tool in TOOLS:
            shutil.rmtree(Path(tmp) / tool, ignore_errors=True)
            shutil.copytree(
                ROOT / tool, Path(tmp) / tool, ignore=shutil.ignore_patterns("out", "__pycache__")
            )
        log(f"measuring {ref} ({sha}) from a snapshot in {tmp}")
        return subprocess.run(  # noqa: S603 - this bench, in the snapshot
            [sys.executable, "-m", "bench.run", *argv],
            cwd=tmp,
            env=os.environ | {"BENCH_CODE_REF": f"{ref} ({sha})"},
            check=False,
        ).returncode


def code_version() -> dict[str, Any]:
    """The commit measured, and whether the service's code differed from it."""
    if os.environ.get("BENCH_CODE_REF"):
        return {"commit": os.environ["BENCH_CODE_REF"], "service_code_modified": False}
    git = shutil.which("git")
    if git is None:
        return {}

    def out(*args: str) -> str:
        return subprocess.run(  # noqa: S603 - git, fixed arguments
            [git, *args], cwd=ROOT, capture_output=True, text=True, check=False
        ).stdout.strip()

    changed = out("status", "--porcelain", "--", "service", "queries", "migrations")
    return {"commit": out("rev-parse", "--short", "HEAD"), "service_code_modified": bool(changed)}
