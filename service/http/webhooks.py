"""Stripe's webhook: the raw body and its signature, handed to payments.receive_webhook."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from service import payments
from service.errors import InvalidWebhook, PayloadTooLarge, UnstorableWebhook
from service.http.base import BodyHandler
from service.http.error_status import UNSTORABLE
from service.logs import actor_var

log = logging.getLogger("service.http")

WEBHOOK_MAX_BODY = 1024 * 1024
# The metrics' labels of a delivery refused before its type was known (Outcome's values are
# what a recorded event came to; a refused one is never recorded).
UNKNOWN_TYPE, REJECTED = "unknown", "rejected"


class StripeWebhookHandler(BodyHandler):
    max_body_bytes = WEBHOOK_MAX_BODY
    database_down_status = 500
    unstorable_status = 400
    route = "webhook"
    # Authenticated by its Stripe-Signature; what it changes is audited as Stripe's.
    unauthenticated_actor = "stripe"

    async def prepare(self) -> None:
        self.received_at = datetime.now(UTC)
        actor_var.set(self.unauthenticated_actor)
        await super().prepare()

    async def handle(self) -> None:
        try:
            result = await payments.receive_webhook(
                self.ctx.pool,
                self.ctx.queries,
                self.ctx.settings,
                self.body(),
                self.request.headers.get("Stripe-Signature"),
                self.received_at,
                self.ctx.outbox,
            )
        except (InvalidWebhook, PayloadTooLarge) as error:
            self.ctx.metrics.webhook_events.labels(UNKNOWN_TYPE, REJECTED).inc()
            if isinstance(error, UnstorableWebhook):
                _log_unstorable(error.message)
            raise
        except UNSTORABLE as error:
            # The last resort: the event passed every check and the database still refused
            # a value. asyncpg's message quotes the value (customer data, perhaps): never log it.
            self.ctx.metrics.webhook_events.labels(UNKNOWN_TYPE, REJECTED).inc()
            _log_unstorable(f"the database refused a value ({type(error).__name__})")
            raise
        self.ctx.metrics.webhook_events.labels(result.event_type, str(result.outcome)).inc()
        self.ctx.api_versions.note(result.api_version)
        self.render_json(dict(payments.event_summary(result)))


def _log_unstorable(reason: str) -> None:
    log.warning(
        "signed webhook refused: it cannot be stored",
        extra={"fields": {"event": "webhook_unstorable", "reason": reason}},
    )
