"""The one place where errors become HTTP: a status and a message for the caller.

The domain raises the errors of service/errors.py and never speaks HTTP; every handler's
write_error (http/base.py) asks `status_for` what to answer.
"""

from __future__ import annotations

from http.client import responses

import asyncpg
import tornado.web

from service.db import is_unavailable
from service.errors import (
    CheckoutBusy,
    DatabaseUnavailable,
    Forbidden,
    InvalidRequest,
    InvalidWebhook,
    PayloadTooLarge,
    PaymentError,
    ProjectNotFound,
    ProjectNotPayable,
    RateLimited,
    StripeFailed,
    Unauthenticated,
)

# What PostgreSQL refuses to store (a value out of range, a NUL, an index row too large):
# from a signed webhook that is a poison event, and a 500 would make Stripe retry it for days.
UNSTORABLE = (asyncpg.exceptions.DataError, asyncpg.exceptions.ProgramLimitExceededError)


ERROR_STATUS: tuple[tuple[type[PaymentError], int], ...] = (
    (InvalidRequest, 400),
    (InvalidWebhook, 400),
    (Unauthenticated, 401),
    (Forbidden, 403),
    (PayloadTooLarge, 413),
    (ProjectNotFound, 404),
    (ProjectNotPayable, 409),
    (RateLimited, 429),
    (StripeFailed, 502),
    (CheckoutBusy, 503),
    (DatabaseUnavailable, 503),
)


def status_for(
    error: BaseException, *, database_down_status: int = 503, unstorable_status: int = 500
) -> tuple[int, str]:
    """The HTTP status and message for an error; unknown errors never leak their text.

    `unstorable_status` is for a value the database refused (a DataError): a bug anywhere
    but in a signed webhook, where it is a poison event (400: see StripeWebhookHandler)."""
    if isinstance(error, DatabaseUnavailable) or is_unavailable(error):
        return database_down_status, "the database is unavailable; try again later"
    if isinstance(error, UNSTORABLE) and unstorable_status < 500:
        return unstorable_status, "the event holds a value that cannot be stored"
    if isinstance(error, UNSTORABLE):
        return unstorable_status, "internal error"
    if isinstance(error, PaymentError):
        for kind, status in ERROR_STATUS:
            if isinstance(error, kind):
                return status, error.message
    if isinstance(error, tornado.web.HTTPError):
        # The standard phrase only: Tornado's own messages quote the request (up to 40 bytes
        # of an undecodable path), and an error body never echoes what the caller sent.
        return error.status_code, responses.get(error.status_code, "error").lower()
    return 500, "internal error"
