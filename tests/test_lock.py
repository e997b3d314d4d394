"""requirements.txt, the image's hash-pinned runtime dependencies, agrees with pyproject.toml.

The Dockerfile installs requirements.txt with `--require-hashes`; `make lock` regenerates it
from pyproject.toml's [project] dependencies (`make test` installs from pyproject's ranges).
These tests fail when one changed without the other: run `make lock`.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from importlib.metadata import requires
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent
LOCK = ROOT / "requirements.txt"
PYPROJECT_ORIGIN = "payment-service (pyproject.toml)"
FIX = "requirements.txt and pyproject.toml disagree: run `make lock`"


@dataclass
class Locked:
    name: str
    version: str
    hashes: list[str] = field(default_factory=list)
    via: set[str] = field(default_factory=set)


def read_lock(text: str) -> dict[str, Locked]:
    """uv's (and pip-compile's) format: `name==version \\`, `--hash=sha256:…` lines, then
    `# via x` or `# via` followed by `#   x` lines naming what needs the package."""
    locked: dict[str, Locked] = {}
    current: Locked | None = None
    for line in text.splitlines():
        stripped = line.strip()
        pin = re.match(r"^([A-Za-z0-9._-]+)(?:\[[^\]]*\])?==(\S+?)\s*\\?$", line)
        if pin:
            current = Locked(canonicalize_name(pin[1]), pin[2])
            locked[current.name] = current
        elif current is None or not stripped:
            continue
        elif stripped.startswith("--hash="):
            current.hashes.append(stripped.removeprefix("--hash=").rstrip(" \\"))
        elif stripped.startswith("# via "):
            current.via.add(stripped.removeprefix("# via ").strip())
        elif stripped.startswith("#   "):
            current.via.add(stripped.removeprefix("#   ").strip())
    return locked


def runtime_requirements() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return [Requirement(line) for line in project["dependencies"]]


LOCKED = read_lock(LOCK.read_text())


def test_every_runtime_dependency_is_pinned_within_its_pyproject_range() -> None:
    for requirement in runtime_requirements():
        name = canonicalize_name(requirement.name)
        assert name in LOCKED, f"{requirement} is not in the lock. {FIX}"
        version = Version(LOCKED[name].version)
        assert requirement.specifier.contains(version, prereleases=True), (
            f"the lock pins {name}=={version}, outside {requirement}. {FIX}"
        )


def test_the_extras_pyproject_asks_for_are_locked_too() -> None:
    # psycopg[binary] needs psycopg-binary: read from the installed package's own metadata
    # (Marker.evaluate fills in this interpreter's environment around the extra).
    for requirement in runtime_requirements():
        for extra in requirement.extras:
            for line in requires(requirement.name) or []:
                needed = Requirement(line)
                if needed.marker is not None and needed.marker.evaluate({"extra": extra}):
                    assert canonicalize_name(needed.name) in LOCKED, f"{needed}. {FIX}"


def test_the_lock_holds_nothing_the_runtime_dependencies_do_not_need() -> None:
    direct: set[str] = {canonicalize_name(r.name) for r in runtime_requirements()}
    from_pyproject = {name for name, entry in LOCKED.items() if PYPROJECT_ORIGIN in entry.via}
    assert from_pyproject == direct, FIX
    # Every other entry is needed by one already reached, back to pyproject's list.
    reached: set[str] = set(direct)
    frontier: set[str] = set(direct)
    while frontier:
        frontier = {
            name
            for name, entry in LOCKED.items()
            if name not in reached and {canonicalize_name(v) for v in entry.via} & frontier
        }
        reached |= frontier
    assert reached == set(LOCKED), f"not needed by any runtime dependency: {set(LOCKED) - reached}"


def test_every_locked_package_is_pinned_exactly_and_hashed() -> None:
    assert len(LOCKED) > len(runtime_requirements())  # the transitive ones are there too
    for entry in LOCKED.values():
        assert Version(entry.version), entry
        assert entry.hashes, f"{entry.name} has no --hash: pip --require-hashes would refuse it"
        for digest in entry.hashes:
            assert re.fullmatch(r"sha256:[0-9a-f]{64}", digest), (entry.name, digest)


def test_the_lock_says_how_to_regenerate_it() -> None:
    assert "#    make lock\n" in LOCK.read_text().split("\n\n")[0]


def test_the_lock_parser_reads_a_changed_pyproject_as_a_disagreement() -> None:
    # The checks above are only as good as the parser: a lock missing a package, or pinning
    # one outside its range, must read that way.
    text = LOCK.read_text()
    without_tornado = re.sub(r"(?ms)^tornado==.*?(?=^\S)", "", text)
    assert "tornado" in LOCKED
    assert "tornado" not in read_lock(without_tornado)
    older = read_lock(re.sub(r"(?m)^tornado==\S+", "tornado==5.1.1", text))
    [tornado] = [r for r in runtime_requirements() if r.name == "tornado"]
    assert not tornado.specifier.contains(Version(older["tornado"].version))
