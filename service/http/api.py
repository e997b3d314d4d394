"""The API a frontend calls: start a checkout, read a project's payment status."""

from __future__ import annotations

from datetime import UTC
from enum import StrEnum

from service import payments
from service.errors import CheckoutBusy, DatabaseUnavailable, InvalidRequest, StripeFailed
from service.http.base import BaseHandler, BodyHandler, json_object
from service.http.limits import CallerLimits

CHECKOUT_MAX_BODY = 16 * 1024


class CheckoutAnswer(StrEnum):
    """What a checkout request came to (the metrics' result label)."""

    CREATED = "created"  # a session made in Stripe by this request
    REUSED = "reused"  # the project's open session handed out again
    FAILED = "failed"


class CheckoutHandler(BodyHandler):
    max_body_bytes = CHECKOUT_MAX_BODY
    cors = True
    route = "checkout"
    protected = True

    def rate_limit(self) -> CallerLimits | None:
        return self.ctx.limits.checkout

    async def handle(self) -> None:
        data = json_object(self.body())
        if "project_id" not in data:
            raise InvalidRequest("project_id is required")
        try:
            result = await payments.start_checkout(
                self.ctx.pool,
                self.ctx.queries,
                self.ctx.gateway,
                self.ctx.settings,
                self.authorize(payments.validate_project_id(data["project_id"])),
                self.ctx.outbox,
            )
        except (StripeFailed, DatabaseUnavailable, CheckoutBusy):
            self.ctx.metrics.checkout_sessions.labels(CheckoutAnswer.FAILED).inc()
            raise
        answer = CheckoutAnswer.CREATED if result.created else CheckoutAnswer.REUSED
        self.ctx.metrics.checkout_sessions.labels(answer).inc()
        self.render_json(
            {
                "checkout_url": result.checkout_url,
                "session_id": result.session_id,
                "expires_at": result.expires_at,
            }
        )


class PaymentStatusHandler(BaseHandler):
    cors = True
    route = "payment_status"
    protected = True

    def rate_limit(self) -> CallerLimits | None:
        return self.ctx.limits.status

    async def get(self, project_id: str) -> None:
        project_id = self.authorize(payments.validate_project_id(project_id))
        payment = await payments.payment_status(
            self.ctx.pool,
            self.ctx.queries,
            self.ctx.gateway,
            self.ctx.settings,
            project_id,
            stripe_reads=self.ctx.limits.stripe_reads,
        )
        self.render_json(
            {
                "project_id": payment.project_id,
                "status": str(payment.status),
                "updated_at": payment.updated_at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
            }
        )
