"""JSON-line logs on stdout, each carrying the request id, with secrets and PII scrubbed.

Callers log structured fields (`extra={"fields": {...}}`); the formatter is the last line of
defence, masking anything shaped like a Stripe key, webhook secret, database URL or e-mail
address that slipped into a message or an exception text.
"""

from __future__ import annotations

import contextvars
import json
import logging
import os
import re
import sys
import time
from typing import Any

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")
# Who caused what is being done: `key:<id>`, `jwt:<sub>`, `anonymous` (API_AUTH=none),
# `stripe` (a signed webhook), `reconcile`; `system` for the service's own work. Written to
# every log line and audit row; never a token or a key.
actor_var: contextvars.ContextVar[str] = contextvars.ContextVar("actor", default="system")

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")

_REDACTIONS = (
    (re.compile(r"\b(sk|rk|pk)_(test|live)_[A-Za-z0-9]+"), r"\1_\2_[redacted]"),
    (re.compile(r"\bwhsec_[A-Za-z0-9+/=_-]+"), "whsec_[redacted]"),
    (re.compile(r"\b(postgres(?:ql)?(?:\+\w+)?://)[^\s'\"]+"), r"\1[redacted]"),
    (re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}"), "[email redacted]"),
)


# Substrings without which no pattern above can match: most lines skip the regexes.
_TELLTALES = ("_test_", "_live_", "whsec_", "postgres", "@")


def redact(text: str) -> str:
    if not any(telltale in text for telltale in _TELLTALES):
        return text
    for pattern, replacement in _REDACTIONS:
        text = pattern.sub(replacement, text)
    return text


def request_id_from(header: str | None) -> str:
    """Honour a caller's X-Request-ID when it is a sane token; otherwise make one."""
    if header and _REQUEST_ID.fullmatch(header):
        return header
    return os.urandom(16).hex()  # 32 hex digits, like uuid4().hex, at a quarter of its cost


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "request_id": request_id_var.get(),
            "actor": actor_var.get(),
            "message": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            entry.update(fields)
        if record.exc_info and record.exc_info[0] is not None:
            entry["error"] = record.exc_info[0].__name__
            entry["traceback"] = self.formatException(record.exc_info)
        # Masked value by value, before encoding: masking the encoded line could cut through
        # a JSON escape and break the line.
        masked = {
            key: redact(value) if isinstance(value, str) else value for key, value in entry.items()
        }
        return json.dumps(masked, default=_masked_text, separators=(",", ":"))


def _masked_text(value: object) -> str:
    return redact(str(value))


def configure_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # The request log is written by the application's log_function, one line per request.
    logging.getLogger("tornado.access").setLevel(logging.WARNING)
    # The Stripe SDK logs every request and response at INFO (long lines with every query
    # parameter); the service logs and counts its Stripe calls itself. DEBUG shows them.
    stripe_level = logging.DEBUG if level.upper() == "DEBUG" else logging.WARNING
    logging.getLogger("stripe").setLevel(stripe_level)
