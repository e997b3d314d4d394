"""Log lines are JSON, carry the request id, and have secrets and PII masked even when a
message or an exception text quotes them."""

from __future__ import annotations

import json
import logging
import os
import sys
import time

import pytest

from service.logs import JsonFormatter, LogWriter, redact, request_id_from, request_id_var


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


def test_a_stalled_stdout_never_blocks_logging_and_drops_are_counted() -> None:
    """A pipe nobody reads (a stuck log shipper): logging returns at once, lines beyond the
    queue are dropped and counted, and what was queued is written once the reader is back."""
    read_end, write_end = os.pipe()
    writer = LogWriter(write_end, capacity=100)
    writer.setFormatter(JsonFormatter())
    reported: list[int] = []
    writer.count_drops_with(reported.append)
    logger = logging.getLogger("service.test.stalled")
    logger.propagate = False
    logger.addHandler(writer)
    logger.setLevel(logging.INFO)
    try:
        started = time.perf_counter()
        for number in range(5000):  # ~1.5 MB: far past the pipe's 64 KiB and the queue
            logger.info("line", extra={"fields": {"number": number, "padding": "x" * 200}})
        elapsed = time.perf_counter() - started
        assert elapsed < 2.0, f"logging blocked for {elapsed:.1f} s"
        assert writer.dropped > 4000
        assert sum(reported) == writer.dropped

        received = b""
        os.set_blocking(read_end, False)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # the reader is back: the queue drains
            try:
                chunk = os.read(read_end, 1 << 20)
            except BlockingIOError:
                if received.count(b"\n") + writer.dropped >= 5000:
                    break
                time.sleep(0.01)
                continue
            received += chunk
        lines = received.splitlines()
        assert len(lines) + writer.dropped == 5000
        assert [json.loads(line)["number"] for line in lines[:3]] == [0, 1, 2]
    finally:
        logger.removeHandler(writer)
        writer.close()
        os.close(read_end)
        os.close(write_end)


def test_a_drop_counter_attached_late_still_counts_the_earlier_drops() -> None:
    read_end, write_end = os.pipe()
    writer = LogWriter(write_end, capacity=10)
    try:
        writer._drop(3)
        reported: list[int] = []
        writer.count_drops_with(reported.append)
        writer._drop(2)
        assert reported == [3, 2]
    finally:
        writer.close()
        os.close(read_end)
        os.close(write_end)
