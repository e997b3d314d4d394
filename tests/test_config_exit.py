"""A bad configuration stops `python -m service` with exit 2, naming every bad variable, with no
traceback and no secret in its output."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from helpers import GOOD, OPTIONAL
from processes import ROOT, run_to_end


def run_service(variables: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """`python -m service` as an operator starts it in `cwd`, given only `variables` of the
    service's own, its output captured."""
    environment = {k: v for k, v in os.environ.items() if k not in GOOD and k not in OPTIONAL}
    return run_to_end(
        [sys.executable, "-m", "service"],
        environment | variables | {"PYTHONPATH": str(ROOT)},
        cwd=cwd,
    )


def test_server_with_bad_configuration_exits_2_naming_everything(tmp_path: Path) -> None:
    variables = {
        "STRIPE_SECRET_KEY": "sk_nope_SECRETVALUE",
        "STRIPE_WEBHOOK_SECRET": "whsec_fine",
        "PORT": "not-a-port",
    }
    result = run_service(variables, tmp_path)
    assert result.returncode == 2
    for name in [
        "STRIPE_SECRET_KEY",
        "STRIPE_PRODUCT_PRICE_ID",
        "STRIPE_SUCCESS_URL",
        "STRIPE_CANCEL_URL",
        "DATABASE_URL",
        "PORT",
    ]:
        assert name in result.stderr
    assert "SECRETVALUE" not in result.stderr + result.stdout
    assert "STRIPE_WEBHOOK_SECRET" not in result.stderr


def test_server_with_a_malformed_database_url_exits_2_without_a_traceback(
    tmp_path: Path,
) -> None:
    variables = GOOD | {
        "DATABASE_URL": "postgresql://payments:dbSECRETpw@db.internal:port/payments"
    }
    result = run_service(variables, tmp_path)
    assert result.returncode == 2
    assert "DATABASE_URL" in result.stderr
    assert "Traceback" not in result.stderr
    assert "dbSECRETpw" not in result.stderr + result.stdout


def test_a_loose_secret_file_stops_the_server_with_exit_2(tmp_path: Path) -> None:
    secret_file = tmp_path / "stripe-secret-key"
    secret_file.write_text(GOOD["STRIPE_SECRET_KEY"])
    secret_file.chmod(0o644)
    variables = {k: v for k, v in GOOD.items() if k != "STRIPE_SECRET_KEY"}
    variables |= {"STRIPE_SECRET_KEY_FILE": str(secret_file)}
    result = run_service(variables, tmp_path)
    assert result.returncode == 2
    assert "STRIPE_SECRET_KEY_FILE: mode 0644" in result.stderr
    assert "SECRETVALUE" not in result.stderr + result.stdout
