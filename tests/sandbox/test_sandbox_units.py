"""The stand-in's parts on their own: parameter declarations, form names, the CLI."""

from __future__ import annotations

import signal
import subprocess
import sys

import httpx
import pytest

from sandbox import checkout_request, errors, forms
from sandbox.errors import StripeError
from sandbox.faults import FaultPlan

SPECS = checkout_request.SPECS


@pytest.mark.parametrize(
    "name",
    [
        "mode",
        "line_items[0][price]",
        "line_items[7][quantity]",
        "metadata[anything at all]",
        "metadata[7]",
        "payment_intent_data[metadata][project_id]",
        "allowed_payment_method_types[0]",
        "custom_fields[2][dropdown][options][3][label]",
        "shipping_options[0][shipping_rate_data][fixed_amount][currency_options][eur][amount]",
    ],
)
def test_declared_names_are_known(name: str) -> None:
    assert SPECS.spec_for(name) is not None


@pytest.mark.parametrize(
    "name",
    [
        "payment_method_types[0]",  # removed in 2026-10-28.endive
        "metadata[a][b]",
        "metadata[]",
        "line_items[x][price]",
        "mode[0]",
        "line_items[0]price",
        "[mode]",
    ],
)
def test_undeclared_names_are_unknown(name: str) -> None:
    with pytest.raises(StripeError) as caught:
        SPECS.spec_for(name)
    assert (caught.value.code, caught.value.param) == ("parameter_unknown", name)


def test_values_are_checked_against_their_declared_type() -> None:
    SPECS.check({"mode": "payment", "adaptive_pricing[enabled]": "true", "expires_at": "1"})
    for params, param in [
        ({"mode": "pay"}, "mode"),
        ({"adaptive_pricing[enabled]": "yes"}, "adaptive_pricing[enabled]"),
        ({"expires_at": "1e9"}, "expires_at"),
        ({"metadata": "x"}, "metadata"),
        ({"line_items": "x"}, "line_items"),
    ]:
        with pytest.raises(StripeError) as caught:
            SPECS.check(params)
        assert caught.value.param == param


def test_error_bodies_have_stripes_shape() -> None:
    body = errors.no_such("price", "price_x", param="line_items[0][price]").body()
    assert body == {
        "error": {
            "type": "invalid_request_error",
            "message": "No such price: 'price_x'",
            "code": "resource_missing",
            "doc_url": "https://stripe.com/docs/error-codes/resource-missing",
            "param": "line_items[0][price]",
        }
    }
    assert errors.masked_key("sk_test_51HxyzABCDabcd") == "sk_test_****abcd"


def test_forms_helpers() -> None:
    params = {
        "line_items[1][price]": "b",
        "line_items[0][price]": "a",
        "line_items[0][quantity]": "2",
        "metadata[k]": "v",
        "metadata[x][y]": "nested",
    }
    assert forms.indexed(params, "line_items") == {
        0: {"price": "a", "quantity": "2"},
        1: {"price": "b"},
    }
    assert forms.sub_dict(params, "metadata") == {"k": "v"}
    assert forms.segments("a[b][0]") == ["a", "b", "0"]
    assert forms.segments("a[b") is None


def test_fault_plan_error_types_and_reset() -> None:
    plan = FaultPlan()
    plan.hang_next(path_prefix="/v1/events")
    plan.fail_next(status=429)
    plan.fail_next(status=503)
    plan.fail_next(status=400)
    first = plan.take("/v1/checkout/sessions")
    assert first is not None
    assert (first.kind, first.error().error_type) == ("fail", "rate_limit_error")
    hang = plan.take("/v1/events")
    assert hang is not None
    assert hang.kind == "hang"
    kinds = [fault.error().error_type for fault in iter(lambda: plan.take("/v1/x"), None)]
    assert kinds == ["api_error", "invalid_request_error"]
    plan.fail_next(2)
    plan.delay_seconds = 1
    plan.reset()
    assert (plan.pending, plan.delay_seconds) == (0, 0)


def test_python_m_sandbox_serves_and_stops() -> None:
    command = [sys.executable, "-m", "sandbox", "--port", "0", "--api-key", "sk_test_cli0000"]
    command += ["--api-version", "2025-03-31.basil"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as process:
        try:
            assert process.stdout is not None
            line = process.stdout.readline()
            assert "Stripe sandbox listening on http://127.0.0.1:" in line
            url = line.split(" ")[4]
            auth = {"Authorization": "Bearer sk_test_cli0000"}
            response = httpx.get(f"{url}/v1/events", headers=auth, timeout=5)
            assert response.json()["object"] == "list"
            assert response.headers["Stripe-Version"] == "2025-03-31.basil"
        finally:
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=10) == 0
