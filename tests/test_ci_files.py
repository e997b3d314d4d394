"""The GitHub workflow and dependabot files are valid against their JSON schemas, offline.

The schemas are vendored in tests/data/schemas (SchemaStore's, as check-jsonschema 0.39.0
ships them; see the README there), so this needs no network.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
SCHEMAS = Path(__file__).parent / "data" / "schemas"
WORKFLOW = ROOT / ".github" / "workflows" / "ci.yml"
DEPENDABOT = ROOT / ".github" / "dependabot.yml"


class GitHubYamlLoader(yaml.SafeLoader):
    """YAML as GitHub reads it: only true/false are booleans (YAML 1.1 would turn the
    workflow's `on:` key into True)."""


GitHubYamlLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
GitHubYamlLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


def load(path: Path) -> Any:
    return yaml.load(path.read_text(), Loader=GitHubYamlLoader)  # noqa: S506 - a SafeLoader


def validator(schema: str) -> jsonschema.Draft7Validator:
    document = json.loads((SCHEMAS / schema).read_text())
    jsonschema.Draft7Validator.check_schema(document)
    return jsonschema.Draft7Validator(document)


@pytest.mark.parametrize(
    ("path", "schema"),
    [(WORKFLOW, "github-workflows.json"), (DEPENDABOT, "dependabot.json")],
    ids=["workflow", "dependabot"],
)
def test_the_file_is_valid_against_its_schema(path: Path, schema: str) -> None:
    errors = [e.message for e in validator(schema).iter_errors(load(path))]
    assert errors == [], errors


def test_the_schemas_catch_a_mistake() -> None:
    workflow = load(WORKFLOW)
    workflow["jobs"]["ci"]["runs-on"] = None
    assert list(validator("github-workflows.json").iter_errors(workflow))
    dependabot = load(DEPENDABOT)
    dependabot["updates"][0]["package-ecosystem"] = "pip-compile"
    assert list(validator("dependabot.json").iter_errors(dependabot))


def test_the_workflow_runs_ci_and_audits_the_image_lock() -> None:
    jobs = load(WORKFLOW)["jobs"]
    commands = {job: [s.get("run", "") for s in jobs[job]["steps"]] for job in jobs}
    assert "bash .ci/run" in commands["ci"]
    [audit] = [c for c in commands["audit"] if c.startswith("pip-audit")]
    assert "--requirement requirements.txt" in audit
    assert "--require-hashes" in audit
    assert "--strict" in audit  # no data is a failure, not a pass


def test_dependabot_watches_pip_the_base_image_and_the_actions() -> None:
    ecosystems = {u["package-ecosystem"] for u in load(DEPENDABOT)["updates"]}
    assert ecosystems == {"pip", "docker", "github-actions"}
