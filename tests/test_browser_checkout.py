"""The whole payment flow in a real headless browser (Debian's chromium, driven by
Playwright): the sandbox's demo page calls the real service (`python -m service`) across
origins (CORS), the browser pays on the sandbox's hosted checkout page, the sandbox delivers
signed webhooks to the service, and the success page polls the service until `paid`. As
with `make run`, the service runs with API_AUTH=jwt and the sandbox is the identity provider:
each page obtains a short-lived token for its project and sends it.

Screenshots of every step go to test-artifacts/, each at a phone's width (390 px) and a
laptop's (1280 px). Without chromium this test fails: CI and `make test` install it (`make
chromium`)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from helpers import PRICE_ID, SECRET_KEY, WEBHOOK_SECRET, new_id
from playwright.sync_api import Browser, Page, expect, sync_playwright
from processes import ServiceProcess, free_port, service_environment

from sandbox.identity import AUDIENCE, JWKS_PATH

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


WIDTHS = (390, 1280)  # a phone, a laptop
LONGEST_ID = ("proj_longest_" + "x" * 64)[:64]  # the longest id the contract allows


@dataclass
class Stack:
    service_url: str
    sandbox_url: str


def _get(url: str, token: str | None = None) -> tuple[int, bytes]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        request = urllib.request.Request(url, headers=headers)  # noqa: S310 - local
        with urllib.request.urlopen(request, timeout=2) as response:  # noqa: S310 - local
            return int(response.status), response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def _wait_until_up(url: str, process: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert process.poll() is None, f"{what} exited during start-up"
        try:
            if _get(url)[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{what} never answered {url}")


@pytest.fixture(scope="module")
def stack(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The service and the sandbox as `make run` starts them, on free ports."""
    port, sandbox_port = free_port(), free_port()
    service_url = f"http://127.0.0.1:{port}"
    sandbox_url = f"http://127.0.0.1:{sandbox_port}"
    log = tmp_path_factory.mktemp("sandbox") / "sandbox.log"
    with log.open("wb") as out:
        sandbox = subprocess.Popen(
            [
                *(sys.executable, "-m", "sandbox", "--port", str(sandbox_port)),
                *("--api-key", SECRET_KEY, "--price-id", PRICE_ID),
                *("--webhook-url", f"{service_url}/webhooks/stripe"),
                *("--webhook-secret", WEBHOOK_SECRET, "--webhook-retry-base", "0.2"),
                *("--service-url", service_url),
            ],
            cwd=ROOT,
            env=os.environ | {"PYTHONPATH": str(ROOT)},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    service = ServiceProcess(
        service_environment(
            database_url,
            sandbox_url,
            port,
            STRIPE_SUCCESS_URL=f"{sandbox_url}/demo/success?session_id={{CHECKOUT_SESSION_ID}}",
            STRIPE_CANCEL_URL=f"{sandbox_url}/demo/cancelled",
            CORS_ALLOWED_ORIGINS=f"{sandbox_url},http://localhost:{sandbox_port}",
            # As make run: the sandbox is the identity provider, its demo pages send tokens.
            API_AUTH="jwt",
            AUTH_JWKS_URL=f"{sandbox_url}{JWKS_PATH}",
            AUTH_ISSUER=sandbox_url,
            AUTH_AUDIENCE=AUDIENCE,
        )
    )
    try:
        _wait_until_up(f"{sandbox_url}/demo", sandbox, "the sandbox")
        service.start()
        assert service.process is not None
        _wait_until_up(f"{service_url}/health", service.process, "the service")
        yield Stack(service_url, sandbox_url)
    finally:
        service.stop()
        sandbox.terminate()
        sandbox.wait(10)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: `make chromium` (apt-get install -y chromium)")
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    failed: list[str] = []
    page.on("requestfailed", lambda request: failed.append(request.url))
    yield page
    context.close()
    assert failed == [], f"requests that failed in the browser: {failed}"


def shot(page: Page, name: str) -> None:
    """The page at each width; nothing on it may be wider than the screen."""
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 800})
        page.screenshot(path=str(ARTIFACTS / f"{name}-{width}.png"), full_page=True)
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"{name} is {overflow} px wider than a {width} px screen"
    page.set_viewport_size({"width": WIDTHS[-1], "height": 800})


def token_for(stack: Stack, project: str) -> str:
    """A token for the project from the sandbox, the identity provider of make run."""
    request = urllib.request.Request(  # noqa: S310 - local
        f"{stack.sandbox_url}/idp/token",
        data=json.dumps({"project_id": project}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=2) as response:  # noqa: S310 - local
        token: str = json.loads(response.read())["access_token"]
        return token


def status_at_service(stack: Stack, project: str) -> str:
    url = f"{stack.service_url}/api/projects/{project}/payment"
    assert _get(url)[0] == 401  # API_AUTH=jwt: no token, no status
    code, body = _get(url, token_for(stack, project))
    assert code == 200, body
    return str(json.loads(body)["status"])


def buy(page: Page, stack: Stack, project: str, prefix: str) -> None:
    """Demo page → project id → Buy → the sandbox's hosted checkout page."""
    page.goto(f"{stack.sandbox_url}/demo")
    page.fill("#project-id", project)
    shot(page, f"{prefix}-1-demo")
    page.click("#buy")
    page.wait_for_url(f"{stack.sandbox_url}/c/pay/cs_test_*")
    expect(page.locator("#project")).to_have_text(project)
    expect(page.locator("#price")).to_have_text("2,500.00 USD")


def test_card_payment_in_a_real_browser_ends_paid(page: Page, stack: Stack) -> None:
    project = new_id("proj_browser_card")
    buy(page, stack, project, "card")
    shot(page, "card-2-checkout")
    session_id = page.url.rsplit("/", 1)[1]

    page.click("#pay-card")
    page.wait_for_url(f"{stack.sandbox_url}/demo/success?session_id={session_id}")
    expect(page.locator("#project")).to_have_text(project)
    expect(page.locator("#status")).to_have_attribute("data-status", "paid", timeout=15_000)
    shot(page, "card-3-success-paid")
    assert status_at_service(stack, project) == "paid"

    # The dashboard shows the event and the service's 200 for its delivery.
    page.goto(f"{stack.sandbox_url}/dashboard")
    row = page.locator(f"#session-{session_id}")
    expect(row.locator(".payment-status")).to_have_text("paid")
    expect(page.locator("#events")).to_contain_text("checkout.session.completed")
    expect(page.locator("#events .attempt").first).to_contain_text("→ 200")
    shot(page, "card-4-dashboard")


def test_bank_debit_in_a_real_browser_is_processing_then_paid(page: Page, stack: Stack) -> None:
    project = new_id("proj_browser_bank")
    buy(page, stack, project, "bank")
    page.select_option("#bank-outcome", "succeed-2")
    shot(page, "bank-2-checkout")

    paid_at = time.monotonic()
    page.click("#pay-bank")
    page.wait_for_url(f"{stack.sandbox_url}/demo/success?session_id=*")
    status = page.locator("#status")
    expect(status).to_have_attribute("data-status", "processing", timeout=10_000)
    shot(page, "bank-3-success-processing")
    expect(status).to_have_attribute("data-status", "paid", timeout=15_000)
    assert time.monotonic() - paid_at >= 2  # the bank debit settled after the chosen delay
    expect(page.locator("#history")).to_contain_text("processing → paid")
    shot(page, "bank-4-success-paid")
    assert status_at_service(stack, project) == "paid"


def test_a_failed_bank_debit_says_so_above_the_status(page: Page, stack: Stack) -> None:
    project = new_id("proj_browser_fail")
    buy(page, stack, project, "fail")
    page.select_option("#bank-outcome", "fail-2")
    page.click("#pay-bank")
    page.wait_for_url(f"{stack.sandbox_url}/demo/success?session_id=*")
    expect(page.locator("#status")).to_have_attribute("data-status", "failed", timeout=15_000)
    expect(page.locator("#headline")).to_have_text("Payment failed: nothing was charged")
    assert "Thank you" not in page.locator("body").inner_text()
    shot(page, "fail-3-success-failed")


def test_the_longest_id_pays_and_an_already_paid_project_shows_the_service_s_409(
    page: Page, stack: Stack
) -> None:
    """A 64-character id, readable on a phone and a laptop at every step; buying it again
    shows the service's own 409 message, which the browser can read only when the error
    carries the CORS headers too."""
    page.goto(f"{stack.sandbox_url}/demo")
    expect(page.locator("#project-id-hint")).to_contain_text("1\N{EN DASH}64 characters")
    expect(page.locator("#project-id")).to_have_attribute("aria-describedby", "project-id-hint")
    buy(page, stack, LONGEST_ID, "long")
    expires = page.locator("#expires-at").inner_text()
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} \S+", expires), expires
    shot(page, "long-2-checkout")
    page.click("#pay-card")
    expect(page.locator("#status")).to_have_attribute("data-status", "paid", timeout=15_000)
    expect(page.locator("#headline")).to_have_text("Thank you: paid")
    shot(page, "long-3-success-paid")

    page.goto(f"{stack.sandbox_url}/demo")
    page.fill("#project-id", LONGEST_ID)
    page.click("#buy")
    error = page.locator("#error")
    expect(error).to_contain_text("The service answered 409: ", timeout=10_000)
    code, body = _post(
        f"{stack.service_url}/api/checkout",
        {"project_id": LONGEST_ID},
        token_for(stack, LONGEST_ID),
    )
    assert code == 409
    expect(error).to_have_text(f"The service answered 409: {json.loads(body)['error']}")
    assert page.url == f"{stack.sandbox_url}/demo"
    shot(page, "long-4-demo-409")

    page.goto(f"{stack.sandbox_url}/dashboard")
    expect(page.locator(f"tr[data-project='{LONGEST_ID}'] .payment-status")).to_have_text("paid")
    shot(page, "long-5-dashboard")


def _post(url: str, body: dict[str, str], token: str) -> tuple[int, bytes]:
    request = urllib.request.Request(  # noqa: S310 - local
        url,
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Authorization": f"Bearer {token}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 - local
            return int(response.status), response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def test_cancel_in_a_real_browser_returns_to_the_shop(page: Page, stack: Stack) -> None:
    project = new_id("proj_browser_cancel")
    buy(page, stack, project, "cancel")
    page.click("#cancel")
    page.wait_for_url(f"{stack.sandbox_url}/demo/cancelled")
    expect(page.locator("h1")).to_have_text("Payment cancelled")
    shot(page, "cancel-2-cancelled")
    assert status_at_service(stack, project) == "pending"
