"""The sign-in throttle: token buckets per address and per account, and a bound on how many
sign-ins are checked at once. A hand-driven clock; no sleeping."""

from __future__ import annotations

import logging

import pytest

from api.throttle import LoginThrottle, Refusal, TokenBuckets


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_key_may_use_its_burst_then_waits_for_the_refill() -> None:
    clock = Clock()
    buckets = TokenBuckets(3, 6.0, clock=clock)
    assert [buckets.take("a") for _ in range(3)] == [0, 0, 0]
    assert buckets.take("a") == 6.0
    assert buckets.take("b") == 0  # each key has its own
    clock.now += 6.0
    assert buckets.take("a") == 0
    assert buckets.take("a") > 0


def test_the_buckets_forget_the_least_recently_seen_keys_first() -> None:
    buckets = TokenBuckets(1, 60.0, max_keys=2, clock=Clock())
    buckets.take("old")
    buckets.take("recent")
    buckets.take("new")
    assert len(buckets) == 2
    assert buckets.take("old") == 0  # forgotten: a fresh bucket
    assert buckets.take("new") > 0


def test_the_throttle_names_the_address_or_the_account_and_says_when_to_try_again() -> None:
    clock = Clock()
    throttle = LoginThrottle(burst=2, interval_s=6.0, clock=clock)
    assert throttle.refusal("10.0.0.1", "head") is None
    assert throttle.refusal("10.0.0.1", "head") is None
    by_address = throttle.refusal("10.0.0.1", "head")
    assert by_address is not None and by_address.retry_after_s == 6
    assert "from this computer" in by_address.message and "Wait 6 seconds" in by_address.message
    by_account = throttle.refusal("10.0.0.2", "head")
    assert by_account is not None and "for this account" in by_account.message


def test_at_most_concurrency_sign_ins_are_checked_at_once() -> None:
    throttle = LoginThrottle(concurrency=1)
    with throttle.slot() as first:
        assert first is None
        with throttle.slot() as second:
            assert second is not None and "busy" in second.message
    with throttle.slot() as again:
        assert again is None


def test_refusals_are_logged_once_a_minute_with_their_count(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    throttle = LoginThrottle(burst=1, clock=clock)
    throttle.refusal("10.0.0.9", "head")
    refusal = Refusal("Too many.", 6)
    with caplog.at_level(logging.WARNING, logger="api.throttle"):
        for _ in range(50):
            assert throttle.refusal("10.0.0.9", "head") is not None
            throttle.note_refused("10.0.0.9", refusal)
        clock.now += 60
        throttle.note_refused("10.0.0.9", refusal)
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2
    assert lines[0].startswith("1 sign-in attempts refused") and "10.0.0.9" in lines[0]
    assert lines[1].startswith("50 sign-in attempts refused")
