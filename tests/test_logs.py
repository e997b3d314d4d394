"""Log lines are JSON, carry the request id, and have secrets and PII masked even when a
message or an exception text quotes them."""

from __future__ import annotations

import json
import logging
import sys

import pytest

from service.logs import JsonFormatter, redact, request_id_from, request_id_var


@pytest.mark.parametrize(
    ("text", "hidden"),
    [
        ("key sk_test_51HqLyjWDarjtT1zdp7dc leaked", "51HqLyjWDarjtT1zdp7dc"),
        ("key sk_live_51HqLyjWDarjtT1zdp7dc leaked", "51HqLyjWDarjtT1zdp7dc"),
        ("restricted rk_live_abcDEF123 leaked", "abcDEF123"),
        ("secret whsec_abc123DEF leaked", "abc123DEF"),
        ("dsn postgresql://payments:hunter2@db.internal:5432/payments", "hunter2"),
        ("dsn postgres+psycopg://u:pw@h/db", "pw@h"),
        ("customer jenny.rosen@example.com wrote", "jenny.rosen@example.com"),
    ],
)
def test_secrets_and_emails_are_masked(text: str, hidden: str) -> None:
    assert hidden not in redact(text)


def test_a_clean_line_is_left_alone() -> None:
    line = '{"message":"request","path":"/api/checkout","status":200}'
    assert redact(line) is line


def test_a_record_becomes_one_json_line_with_the_request_id_and_fields() -> None:
    token = request_id_var.set("req-123")
    try:
        record = logging.LogRecord(
            "service.test",
            logging.INFO,
            __file__,
            1,
            "charged %s",
            ("jenny.rosen@example.com",),
            None,
        )
        record.fields = {"project_id": "proj_1"}
        line = JsonFormatter().format(record)
    finally:
        request_id_var.reset(token)
    entry = json.loads(line)
    assert entry["request_id"] == "req-123"
    assert entry["project_id"] == "proj_1"
    assert entry["level"] == "info"
    assert "jenny.rosen" not in line


def _fail() -> None:
    raise ConnectionError('cannot reach postgresql://u:hunter2@db/x "quoted"')


def test_an_exception_is_logged_by_kind_with_its_text_masked() -> None:
    try:
        _fail()
    except ConnectionError:
        record = logging.LogRecord(
            "service.test", logging.ERROR, __file__, 1, "failed", (), sys.exc_info()
        )
    line = JsonFormatter().format(record)
    entry = json.loads(line)  # masking never breaks the JSON
    assert entry["error"] == "ConnectionError"
    assert "hunter2" not in line


@pytest.mark.parametrize("header", [None, "", "has space", "x" * 129, "semi;colon"])
def test_an_unusable_request_id_is_replaced(header: str | None) -> None:
    made = request_id_from(header)
    assert made != header
    assert len(made) == 32


def test_a_sane_request_id_is_kept() -> None:
    assert request_id_from("frontend-42.a:b_c") == "frontend-42.a:b_c"
