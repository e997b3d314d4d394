"""What a newcomer reads is true: every README command works as written on a fresh clone,
.env.example and the README's table list exactly the variables the service reads, and the
contract in the repository (docs/contract.md) names the endpoints openapi.yaml and the app
have. Derived from the code each time, so a variable or route added later is checked too."""

from __future__ import annotations

import os
import re
import shlex
import sys
from pathlib import Path
from typing import Any, cast

import pytest
import tornado.web
import yaml
from processes import run_to_end

from service.config import ConfigError, load_settings
from service.http.app import make_app
from service.http.context import AppContext

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
MAKEFILE = (ROOT / "Makefile").read_text()
CONTRACT = ROOT / "docs" / "contract.md"
ENV_EXAMPLE = ROOT / ".env.example"
PYTHON = ".venv/bin/python"


# --- the commands -------------------------------------------------------------------------


def readme_commands() -> list[str]:
    """Every command the README shows: lines of its sh blocks and `inline` spans that start
    like a command (make, python, .venv/bin/…), as one string each."""
    commands = []
    for block in re.findall(r"```sh\n(.*?)```", README, flags=re.DOTALL):
        for line in block.splitlines():
            commands.append(line.split("  #")[0].strip())
    # Inline spans may wrap over a line break in the Markdown source.
    prose = re.sub(r"```.*?```", "", README, flags=re.DOTALL)
    for span in re.findall(r"`([^`]+)`", prose.replace("\n", " ")):
        if re.match(r"(make |python3? |\.venv/bin/)", span):
            commands.append(" ".join(span.split()))
    return [c for c in commands if c]


def make_targets() -> set[str]:
    return set(re.findall(r"^([a-z][a-z-]*):", MAKEFILE, flags=re.MULTILINE))


def test_the_readme_never_says_a_bare_python() -> None:
    """`python -m service` on a fresh clone: No module named 'stripe'."""
    bare = [c for c in readme_commands() if re.match(r"python3? ", c)]
    assert bare == []


def test_every_make_command_in_the_readme_is_a_target() -> None:
    used = {c.split()[1] for c in readme_commands() if c.startswith("make ") and len(c.split()) > 1}
    used = {u for u in used if "=" not in u}
    assert {"run", "test", "migrate", "reconcile", "send-event", "trigger"} <= used
    assert used <= make_targets(), used - make_targets()


def python_commands() -> list[list[str]]:
    found = []
    for command in readme_commands():
        if not command.startswith(f"{PYTHON} -m "):
            continue
        required = re.sub(r"\[[^\]]*\]", "", command)  # optional parts, [--dry-run]
        found.append(shlex.split(required.replace("…", "x")))
    return found


def test_the_readme_has_its_python_commands_written_for_the_venv() -> None:
    modules = {words[2] for words in python_commands()}
    assert {"service", "sandbox", "devtools.send_event"} <= modules


@pytest.mark.parametrize("words", python_commands(), ids=" ".join)
def test_every_python_command_in_the_readme_runs(words: list[str]) -> None:
    """As written, with --help added so that it stops before doing anything: the module
    exists in .venv and takes the subcommand and options the README gives it."""
    result = run_to_end([sys.executable, *words[1:], "--help"])
    assert result.returncode == 0, result.stderr
    assert "usage:" in result.stdout


def test_the_make_targets_go_through_the_run_env_of_make_run() -> None:
    for target in ("migrate", "reconcile", "send-event", "trigger"):
        recipe = re.search(rf"^{target}:.*\n\t(.*)$", MAKEFILE, flags=re.MULTILINE)
        assert recipe is not None, target
        assert recipe[1].startswith("$(WITH_RUN_ENV) $(PY) -m "), recipe[1]


# --- the variables ------------------------------------------------------------------------


class RecordingEnviron(dict[str, str]):
    """os.environ that remembers every name looked up."""

    def __init__(self, values: dict[str, str]) -> None:
        super().__init__(values)
        self.read: set[str] = set()

    def __getitem__(self, name: str) -> str:
        self.read.add(name)
        return super().__getitem__(name)

    def get(self, name: str, default: Any = None) -> Any:
        self.read.add(name)
        return super().get(name, default)

    def __contains__(self, name: object) -> bool:
        self.read.add(str(name))
        return super().__contains__(name)


def variables_the_service_reads(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> set[str]:
    """What load_settings reads for every command, plus what service/ reads directly."""
    environ = RecordingEnviron({})
    monkeypatch.setattr(os, "environ", environ)
    monkeypatch.chdir(tmp_path)  # no .env
    for purpose in ("serve", "reconcile", "migrate"):
        with pytest.raises(ConfigError):
            load_settings(purpose=purpose)
    monkeypatch.undo()
    direct = set()
    for path in (ROOT / "service").rglob("*.py"):
        direct |= set(
            re.findall(r"environ(?:\.get\(|\[)\s*\"([A-Z][A-Z0-9_]+)\"", path.read_text())
        )
        direct |= set(re.findall(r"getenv\(\s*\"([A-Z][A-Z0-9_]+)\"", path.read_text()))
    return environ.read | direct


def env_example_variables() -> list[str]:
    return re.findall(r"^#?\s?([A-Z][A-Z0-9_]*)=", ENV_EXAMPLE.read_text(), flags=re.MULTILINE)


def readme_table_variables() -> set[str]:
    section = README.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    names = set()
    for row in section.splitlines():
        if row.startswith("| `"):
            names |= set(re.findall(r"`([A-Z][A-Z0-9_]+)`", row.split("|")[1]))
    return names


def test_env_example_lists_exactly_the_variables_the_service_reads(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    read = variables_the_service_reads(monkeypatch, tmp_path)
    assert len(read) > 20  # the recording worked
    listed = env_example_variables()
    assert len(listed) == len(set(listed)), "a variable is listed twice"
    assert set(listed) - read == set(), "listed but never read"
    assert read - set(listed) == set(), "read by the service but missing from .env.example"


def test_the_readme_table_lists_exactly_the_variables_the_service_reads(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    read = variables_the_service_reads(monkeypatch, tmp_path)
    table = readme_table_variables()
    assert table - read == set(), "in the README but never read"
    assert read - table == set(), "read by the service but missing from the README"


def test_env_example_uncommented_is_a_configuration_that_loads(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Its example values are valid: uncomment every line (one form of each secret) and it
    loads as a .env file."""
    lines = []
    for line in ENV_EXAMPLE.read_text().splitlines():
        match = re.match(r"^# ([A-Z][A-Z0-9_]*=.*)$", line)
        if match and not match[1].split("=")[0].endswith("_FILE"):
            lines.append(match[1])
    (tmp_path / ".env").write_text("\n".join(lines) + "\n")
    for name in env_example_variables():
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    # Secrets are read from the environment only after .env has been loaded into it.
    try:
        settings = load_settings()
    finally:
        for line in lines:
            os.environ.pop(line.split("=")[0], None)
    assert settings.port == 5003
    assert settings.metrics_port == 9464


# --- the contract -------------------------------------------------------------------------


def contract_endpoints() -> set[tuple[str, str]]:
    return set(
        re.findall(
            r"^### (GET|POST|PUT|PATCH|DELETE) (/\S+)$", CONTRACT.read_text(), flags=re.MULTILINE
        )
    )


def openapi_endpoints() -> set[tuple[str, str]]:
    spec = yaml.safe_load((ROOT / "openapi.yaml").read_text())
    return {
        (method.upper(), path)
        for path, operations in spec["paths"].items()
        for method in operations
        if method in ("get", "post", "put", "patch", "delete")
    }


def app_endpoints() -> set[tuple[str, str]]:
    """(method, path pattern) of every route the app serves, parameters as {…}."""
    app = make_app(cast(AppContext, None))  # handlers are only made per request
    spec = yaml.safe_load((ROOT / "openapi.yaml").read_text())
    found = set()
    for rule in app.wildcard_router.rules:
        handler = cast(type[tornado.web.RequestHandler], rule.target)
        pattern = cast(Any, rule.matcher).regex
        for path in spec["paths"]:
            sample = re.sub(r"\{[^}]+\}", "sample_id", path)
            if pattern.fullmatch(sample):
                break
        else:
            path = pattern.pattern
        for method in handler.SUPPORTED_METHODS:
            own = getattr(handler, method.lower(), None)
            if method != "OPTIONS" and own is not getattr(
                tornado.web.RequestHandler, method.lower()
            ):
                found.add((method, path))
    return found


def test_the_contract_is_in_the_repository_and_the_readme_links_it() -> None:
    assert CONTRACT.is_file()
    assert "](docs/contract.md)" in README
    assert "SPEC.md" not in README


def test_the_contract_the_openapi_file_and_the_app_name_the_same_endpoints() -> None:
    assert contract_endpoints() == openapi_endpoints()
    assert app_endpoints() == openapi_endpoints()


def test_the_readme_s_api_table_names_the_same_endpoints() -> None:
    section = README.split("## HTTP API", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `(GET|POST) (\S+?)`", section, flags=re.MULTILINE)
    named = {(m, re.sub(r"\{[^}]+\}", "{project_id}", p)) for m, p in rows}
    assert named == openapi_endpoints()
