"""deploy/alerts.yaml: valid rules (`promtool check rules`), each alert unit-tested
(`promtool test rules`, tests/data/alerts.test.yaml), each with a runbook line in the README.

promtool comes from Debian's `prometheus` package; `make test` installs it when missing."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
ALERTS = ROOT / "deploy" / "alerts.yaml"
UNIT_TESTS = Path(__file__).parent / "data" / "alerts.test.yaml"


def rule_groups() -> dict[str, Any]:
    document = yaml.safe_load(ALERTS.read_text(encoding="utf-8"))
    assert document["apiVersion"] == "monitoring.coreos.com/v1"
    assert document["kind"] == "PrometheusRule"
    groups: dict[str, Any] = document["spec"]
    return groups


def alert_names() -> list[str]:
    return [rule["alert"] for group in rule_groups()["groups"] for rule in group["rules"]]


@pytest.fixture
def rules_file(tmp_path: Path) -> Path:
    """The PrometheusRule's spec is a plain Prometheus rules file: what promtool reads."""
    path = tmp_path / "alerts.rules.yaml"
    path.write_text(yaml.safe_dump(rule_groups()), encoding="utf-8")
    shutil.copy(UNIT_TESTS, tmp_path / UNIT_TESTS.name)
    return path


def promtool(*args: str | Path) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("promtool")
    assert binary, "promtool is missing: `make test` installs Debian's prometheus package"
    return subprocess.run(
        [binary, *map(str, args)], capture_output=True, text=True, timeout=60, check=False
    )


def test_the_alert_rules_are_valid(rules_file: Path) -> None:
    result = promtool("check", "rules", rules_file)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(alert_names())} rules found" in result.stdout


def test_every_alert_fires_when_it_should_and_not_otherwise(rules_file: Path) -> None:
    result = promtool("test", "rules", rules_file.parent / UNIT_TESTS.name)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_unit_tests_cover_every_alert_firing() -> None:
    tests = yaml.safe_load(UNIT_TESTS.read_text(encoding="utf-8"))["tests"]
    fired = {
        case["alertname"]
        for test in tests
        for case in test["alert_rule_test"]
        if case["exp_alerts"]
    }
    assert fired == set(alert_names())


def test_every_alert_has_a_runbook_line_in_the_readme() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    alerts_section = readme.split("## Alerts", 1)[1].split("\n## ", 1)[0]
    for name in alert_names():
        assert f"`{name}`" in alerts_section, name


def test_the_alerts_name_the_metrics_other_work_adds_exactly() -> None:
    text = ALERTS.read_text(encoding="utf-8")
    for metric in (
        "payment_duplicate_refunds_total",
        'payment_reconcile_sweeps_total{result="failed"}',
        "payment_reconcile_applied_events_total",
    ):
        assert metric in text
