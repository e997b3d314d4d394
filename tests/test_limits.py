"""The token buckets behind the rate limits, the rate syntax, and who counts as the caller."""

from __future__ import annotations

import pytest
import tornado.httputil

from service.http.limits import (
    CallerLimits,
    Rate,
    TokenBucket,
    caller_key,
    parse_rate,
    parse_trusted_proxies,
)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(
    ("text", "rate"),
    [
        ("20/minute", Rate(20, 60.0)),
        ("300/minute", Rate(300, 60.0)),
        ("5/second", Rate(5, 1.0)),
        (" 1000 / hour ", Rate(1000, 3600.0)),
        ("off", None),
        ("OFF", None),
    ],
)
def test_a_rate_is_a_count_per_period_or_off(text: str, rate: Rate | None) -> None:
    assert parse_rate(text) == rate


@pytest.mark.parametrize("text", ["", "20", "0/minute", "-1/minute", "20/fortnight", "x/second"])
def test_a_malformed_rate_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="20/minute"):
        parse_rate(text)


def test_a_bucket_allows_a_burst_then_refills_at_its_rate() -> None:
    clock = Clock()
    refused: list[None] = []
    bucket = TokenBucket(5.0, 5.0, clock, on_refused=lambda: refused.append(None))
    assert [bucket.take() for _ in range(6)] == [True] * 5 + [False]
    assert len(refused) == 1
    clock.now += 0.2  # one token's worth
    assert bucket.take() is True
    assert bucket.take() is False
    clock.now += 100  # never more than the burst
    assert [bucket.take() for _ in range(6)] == [True] * 5 + [False]


def test_a_bucket_of_zero_allows_nothing() -> None:
    bucket = TokenBucket(0.0, 0.0, Clock())
    assert bucket.take() is False


def test_each_caller_has_its_own_bucket_and_is_told_when_to_retry() -> None:
    clock = Clock()
    limits = CallerLimits(Rate(20, 60.0), clock)
    assert [limits.retry_after("a") for _ in range(20)] == [None] * 20
    assert limits.retry_after("a") == 3  # a token every 3 s
    assert limits.retry_after("b") is None
    clock.now += 3.0
    assert limits.retry_after("a") is None
    assert limits.retry_after("a") == 3


def test_callers_beyond_the_tracked_maximum_forget_the_idle_ones_first() -> None:
    clock = Clock()
    limits = CallerLimits(Rate(2, 60.0), clock, max_callers=3)
    limits.retry_after("busy")
    limits.retry_after("busy")
    clock.now += 1000  # "idle" buckets below are full again by then
    for name in ("idle-1", "idle-2"):
        limits.retry_after(name)
    clock.now += 1000
    limits.retry_after("busy")
    limits.retry_after("busy")  # busy: its bucket is empty now
    limits.retry_after("new")  # over the maximum: the full ones are forgotten
    assert limits.retry_after("busy") is not None  # the busy caller was not


def request(peer: str, forwarded: str | None = None) -> tornado.httputil.HTTPServerRequest:
    headers = tornado.httputil.HTTPHeaders({"Host": "service"})
    if forwarded is not None:
        headers.add("X-Forwarded-For", forwarded)
    made = tornado.httputil.HTTPServerRequest(
        start_line=tornado.httputil.RequestStartLine("GET", "/", "HTTP/1.1"), headers=headers
    )
    made.remote_ip = peer
    return made


PROXIES = parse_trusted_proxies("10.0.0.0/8, 192.168.1.1")


@pytest.mark.parametrize(
    ("peer", "forwarded", "caller"),
    [
        ("203.0.113.5", None, "203.0.113.5"),
        # Not from a trusted proxy: whatever the client says it is does not count.
        ("203.0.113.5", "198.51.100.1", "203.0.113.5"),
        # From a trusted proxy: the right-most address it did not add itself.
        ("10.1.2.3", "198.51.100.1", "198.51.100.1"),
        ("10.1.2.3", "6.6.6.6, 198.51.100.1, 10.9.9.9", "198.51.100.1"),
        ("192.168.1.1", "2001:db8::1", "2001:db8::1"),
        ("10.1.2.3", None, "10.1.2.3"),
        ("10.1.2.3", "not-an-address", "10.1.2.3"),
        ("10.1.2.3", "10.4.4.4", "10.1.2.3"),
    ],
)
def test_the_caller_is_the_client_address_x_forwarded_for_only_from_trusted_proxies(
    peer: str, forwarded: str | None, caller: str
) -> None:
    assert caller_key(request(peer, forwarded), PROXIES) == caller


def test_without_trusted_proxies_x_forwarded_for_is_ignored() -> None:
    assert caller_key(request("127.0.0.1", "198.51.100.1"), ()) == "127.0.0.1"
