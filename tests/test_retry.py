"""RetryPolicy and the pure parsers of Retry-After and X-RateLimit-* hints (no sockets)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import attrs
import pytest
from multidict import CIMultiDict

from runnerhub import RetryPolicy
from runnerhub.limits import Budget
from runnerhub.retry import (
    Decision,
    Failure,
    decide_retry,
    parse_rate_limit_reset,
    parse_retry_after,
    ratelimit_budget,
)

NOW = datetime(2025, 6, 1, 12, 0, 0, tzinfo=UTC)
NOW_TS = NOW.timestamp()


class _Failure:
    """What backoff sends into the wait generator: an exception with an optional hint."""

    def __init__(self, hint: object = None) -> None:
        self.hint = hint


# -- RetryPolicy -------------------------------------------------------------


def test_defaults() -> None:
    """The default policy retries 4 times on 500/502/503/504 within 120 s."""
    policy = RetryPolicy()
    assert policy.max_retries == 4
    assert policy.retry_statuses == frozenset({500, 502, 503, 504})
    assert policy.max_total == 120.0
    assert 429 not in policy.retry_statuses  # 429 is handled on its own path


def test_is_a_frozen_value() -> None:
    """A policy cannot be mutated, and equal settings make equal, hashable policies."""
    policy = RetryPolicy(max_retries=2)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        policy.max_retries = 3  # type: ignore[misc]
    assert policy == RetryPolicy(max_retries=2)
    assert len({policy, RetryPolicy(max_retries=2)}) == 1
    assert attrs.evolve(policy, max_retries=0).max_retries == 0


def test_negative_max_retries_refused() -> None:
    """max_retries below 0 is refused; 0 (no retry) is allowed."""
    with pytest.raises(ValueError, match="max_retries"):
        RetryPolicy(max_retries=-1)
    assert RetryPolicy(max_retries=0).max_retries == 0


@pytest.mark.parametrize(
    "field",
    [{"base_delay": -1.0}, {"max_delay": -1.0}, {"max_total": -1.0}, {"max_delay": float("nan")}],
)
def test_nonsense_delays_refused(field: dict[str, Any]) -> None:
    """Negative or NaN delays and budgets are refused like a negative max_retries."""
    with pytest.raises(ValueError):  # noqa: PT011 - attrs validators raise plain ValueError
        RetryPolicy(**field)


@pytest.mark.parametrize("retry", [1, 2, 3, 4, 10, 30])
def test_backoff_stays_within_the_ceiling(retry: int) -> None:
    """Every jittered delay lies in [0, min(max_delay, base_delay * 2**(retry-1))]."""
    policy = RetryPolicy(base_delay=0.5, max_delay=3.0)
    ceiling = min(3.0, 0.5 * 2 ** (retry - 1))
    rng = random.Random(retry)
    delays = [policy.backoff(retry, rng) for _ in range(500)]
    assert all(0.0 <= d <= ceiling for d in delays)
    # Full jitter spreads over the whole range, not just near the ceiling.
    assert min(delays) < ceiling * 0.1
    assert max(delays) > ceiling * 0.9


def test_backoff_is_full_jitter_from_the_given_rng() -> None:
    """With a seeded Random, backoff draws uniform(0, ceiling) from exactly that RNG."""
    policy = RetryPolicy(base_delay=0.25, max_delay=20.0)
    expected = random.Random(42)
    rng = random.Random(42)
    for retry in (1, 2, 3, 8):
        ceiling = min(20.0, 0.25 * 2 ** (retry - 1))
        assert policy.backoff(retry, rng) == expected.uniform(0.0, ceiling)


def test_backoff_ceiling_caps_at_max_delay() -> None:
    """Past the doubling phase the ceiling is max_delay, even for huge retry numbers."""
    policy = RetryPolicy(base_delay=1.0, max_delay=2.0)
    rng = random.Random(0)
    assert max(policy.backoff(200, rng) for _ in range(200)) <= 2.0


def test_waits_starts_with_zero_then_backs_off() -> None:
    """waits() yields 0.0 on priming, then jittered delays under a doubling ceiling."""
    policy = RetryPolicy(base_delay=0.01, max_delay=0.04)
    waits = policy.waits()
    assert waits.send(None) == 0.0
    ceilings = [0.01, 0.02, 0.04, 0.04]
    for ceiling in ceilings:
        assert 0.0 <= waits.send(_Failure()) <= ceiling


def test_waits_honours_a_longer_hint() -> None:
    """A failure's numeric ``hint`` (Retry-After) wins over a shorter jittered delay."""
    policy = RetryPolicy(base_delay=0.01, max_delay=0.01)
    waits = policy.waits()
    waits.send(None)
    assert waits.send(_Failure(hint=5)) == 5.0
    assert waits.send(_Failure(hint=0.75)) == 0.75


def test_waits_keeps_the_jitter_when_the_hint_is_shorter() -> None:
    """A hint shorter than the jittered delay does not shorten it."""
    policy = RetryPolicy(base_delay=100.0, max_delay=100.0)
    waits = policy.waits()
    waits.send(None)
    delays = [waits.send(_Failure(hint=0.0)) for _ in range(20)]
    assert max(delays) > 1.0
    assert all(0.0 <= d <= 100.0 for d in delays)


@pytest.mark.parametrize("hint", [None, "5", object()])
def test_waits_ignores_non_numeric_hints(hint: object) -> None:
    """A missing or non-numeric hint leaves the jittered delay alone."""
    policy = RetryPolicy(base_delay=0.01, max_delay=0.01)
    waits = policy.waits()
    waits.send(None)
    assert waits.send(_Failure(hint=hint)) <= 0.01


def test_waits_without_hint_attribute() -> None:
    """A failure with no ``hint`` attribute at all is accepted."""
    waits = RetryPolicy(base_delay=0.01, max_delay=0.01).waits()
    waits.send(None)
    assert waits.send(RuntimeError("boom")) <= 0.01


# -- parse_retry_after -------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("0", 0.0),
        ("1", 1.0),
        ("120", 120.0),
        (" 7 ", 7.0),
        ("0.275", 0.275),
        ("1.5", 1.5),
        ("86400", 86400.0),
    ],
)
def test_retry_after_delay_seconds(value: str, expected: float) -> None:
    """Delay-seconds, with or without a fraction or padding, parse to seconds."""
    assert parse_retry_after(value) == expected


def test_retry_after_http_date_in_the_future() -> None:
    """An HTTP date 30 s after ``now`` means 30 s."""
    when = format_datetime(NOW + timedelta(seconds=30), usegmt=True)
    assert parse_retry_after(when, now=NOW) == 30.0


def test_retry_after_imf_fixdate_literal() -> None:
    """A literal IMF-fixdate is read as UTC."""
    assert parse_retry_after("Sun, 01 Jun 2025 12:01:00 GMT", now=NOW) == 60.0


def test_retry_after_http_date_in_the_past_is_zero() -> None:
    """An HTTP date already past means retry now (0), not a negative wait."""
    when = format_datetime(NOW - timedelta(hours=1), usegmt=True)
    assert parse_retry_after(when, now=NOW) == 0.0


def test_retry_after_date_without_zone_is_utc() -> None:
    """A date with ``-0000`` (no zone information) is taken as UTC."""
    assert parse_retry_after("Sun, 01 Jun 2025 12:00:10 -0000", now=NOW) == 10.0


def test_retry_after_date_far_in_the_future_is_kept() -> None:
    """A date years ahead is a wait like any other: the caller raises rather than retry early."""
    assert parse_retry_after("Fri, 31 Dec 9999 23:59:59 GMT", now=NOW) == pytest.approx(
        (datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC) - NOW).total_seconds()
    )


@pytest.mark.parametrize(("value", "expected"), [("86401", 86401.0), ("1e9", 1e9)])
def test_retry_after_over_a_day_is_kept(value: str, expected: float) -> None:
    """Hints over a day are not dropped (issue 10, item 4): they mean "not within this call"."""
    assert parse_retry_after(value, now=NOW) == expected


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        "   ",
        "soon",
        "-5",
        "-0.5",
        "12abc",
        "nan",
        "inf",
        "Sun, 99 Foo 2025 99:99:99 GMT",
    ],
)
def test_retry_after_garbage_negative_huge_is_none(value: str | None) -> None:
    """Absent, empty, malformed, negative and non-finite values all mean 'no hint'."""
    assert parse_retry_after(value, now=NOW) is None


# -- parse_rate_limit_reset --------------------------------------------------


def _headers(remaining: str | None, reset: str | None) -> CIMultiDict[str]:
    headers: CIMultiDict[str] = CIMultiDict()
    if remaining is not None:
        headers["X-RateLimit-Remaining"] = remaining
    if reset is not None:
        headers["X-RateLimit-Reset"] = reset
    return headers


@pytest.mark.parametrize("remaining", ["1", "99", "0.5"])
def test_rate_limit_room_left_means_no_pause(remaining: str) -> None:
    """While X-RateLimit-Remaining is above 0 there is nothing to wait for."""
    assert parse_rate_limit_reset(_headers(remaining, "30"), now=NOW_TS) is None


@pytest.mark.parametrize(("reset", "expected"), [("2.5", 2.5), ("0", 0.0), ("60", 60.0)])
def test_rate_limit_spent_with_delta_seconds(reset: str, expected: float) -> None:
    """Remaining 0 with a delta reset pauses for exactly that many seconds."""
    assert parse_rate_limit_reset(_headers("0", reset), now=NOW_TS) == expected


def test_rate_limit_spent_with_unix_timestamp() -> None:
    """A reset that is a Unix time is turned into seconds from ``now``."""
    reset = str(int(NOW_TS) + 12)
    assert parse_rate_limit_reset(_headers("0", reset), now=NOW_TS) == pytest.approx(12.0)


def test_rate_limit_unix_timestamp_in_the_past_is_zero() -> None:
    """A Unix-time reset already past means no wait."""
    reset = str(int(NOW_TS) - 100)
    assert parse_rate_limit_reset(_headers("0", reset), now=NOW_TS) == 0.0


def test_rate_limit_header_names_are_case_insensitive() -> None:
    """Lower-case header names work with a case-insensitive mapping (as aiohttp gives)."""
    headers: CIMultiDict[str] = CIMultiDict(
        {"x-ratelimit-remaining": "0", "x-ratelimit-reset": "3"}
    )
    assert parse_rate_limit_reset(headers, now=NOW_TS) == 3.0


@pytest.mark.parametrize(
    ("remaining", "reset"),
    [
        (None, None),
        ("0", None),
        (None, "5"),
        ("none", "5"),
        ("0", "soon"),
        ("", "5"),
        ("0", ""),
    ],
)
def test_rate_limit_malformed_is_none(remaining: str | None, reset: str | None) -> None:
    """Absent or malformed rate-limit headers give no pause."""
    assert parse_rate_limit_reset(_headers(remaining, reset), now=NOW_TS) is None


def test_rate_limit_uses_the_wall_clock_without_now() -> None:
    """Without ``now`` a Unix-time reset is measured from the current time."""
    reset = str(int(datetime.now(UTC).timestamp()) + 30)
    pause = parse_rate_limit_reset(_headers("0", reset))
    assert pause is not None
    assert 25.0 <= pause <= 31.0


# -- decide_retry ----------------------------------------------------------------

FAST = RetryPolicy(base_delay=0.1, max_delay=0.1, max_total=10, max_retries=3)


@pytest.mark.parametrize(
    ("failure", "idempotent", "retry"),
    [
        (Failure.CONNECT, False, True),  # nothing was sent
        (Failure.RATE_LIMITED, False, True),  # refused before acting
        (Failure.TRANSPORT, True, True),
        (Failure.TRANSPORT, False, False),  # a POST may have acted
        (Failure.SERVER, True, True),
        (Failure.SERVER, False, False),
        (Failure.FATAL, True, False),
    ],
)
def test_decide_retry_by_failure_and_method(
    failure: Failure, idempotent: bool, retry: bool
) -> None:
    """Only what cannot have acted is retried for POST; a fatal answer never is."""
    decision = decide_retry(
        failure, idempotent=idempotent, attempt=1, elapsed=0.0, policy=FAST, status=503
    )
    assert decision.retry is retry


def test_decide_retry_server_statuses_come_from_the_policy() -> None:
    """A 501 is not in retry_statuses, so it is not retried."""
    decision = decide_retry(
        Failure.SERVER, idempotent=True, attempt=1, elapsed=0.0, policy=FAST, status=501
    )
    assert not decision.retry


def test_decide_retry_stops_after_max_retries() -> None:
    """Attempt max_retries + 1 failing means no more tries."""
    assert decide_retry(Failure.CONNECT, idempotent=True, attempt=3, elapsed=0, policy=FAST).retry
    assert not decide_retry(
        Failure.CONNECT, idempotent=True, attempt=4, elapsed=0, policy=FAST
    ).retry


def test_decide_retry_never_waits_less_than_retry_after() -> None:
    """The wait is at least the vendor's stated Retry-After."""
    decision = decide_retry(
        Failure.RATE_LIMITED, idempotent=True, attempt=1, elapsed=0, policy=FAST, retry_after=2.5
    )
    assert decision == Decision(retry=True, wait=2.5, retry_after=2.5)


@pytest.mark.parametrize("retry_after", [5.0, 100_000.0])
def test_decide_retry_raises_when_the_stated_wait_passes_the_budget(retry_after: float) -> None:
    """A Retry-After past max_total (however large) raises at once, carrying the hint."""
    policy = attrs.evolve(FAST, max_total=2.0)
    decision = decide_retry(
        Failure.SERVER,
        idempotent=True,
        attempt=1,
        elapsed=0.0,
        policy=policy,
        status=503,
        retry_after=retry_after,
    )
    assert decision == Decision(retry=False, retry_after=retry_after)


def test_decide_retry_counts_the_deadline_as_a_budget() -> None:
    """A deadline tighter than max_total bounds the wait too."""
    decision = decide_retry(
        Failure.CONNECT,
        idempotent=True,
        attempt=1,
        elapsed=0.9,
        policy=FAST,
        budget=1.0,
        rng=random.Random(1),
    )
    assert decision.retry is (0.9 + FAST.backoff(1, random.Random(1)) <= 1.0)


def test_decide_retry_jitter_comes_from_the_policy() -> None:
    """Without a hint, the wait is the policy's full-jitter back-off for that attempt."""
    decision = decide_retry(
        Failure.TRANSPORT, idempotent=True, attempt=2, elapsed=0, policy=FAST, rng=random.Random(7)
    )
    assert decision.wait == FAST.backoff(2, random.Random(7))


def test_ratelimit_budget_reads_remaining_and_reset() -> None:
    """X-RateLimit-Remaining/Reset become a Budget; absent or malformed ones None."""
    assert ratelimit_budget(_headers("7", "30"), now=NOW_TS) == Budget(7, 30.0)
    assert ratelimit_budget(_headers("0", str(int(NOW_TS) + 12)), now=NOW_TS) == Budget(0, 12.0)
    assert ratelimit_budget(_headers(None, "5")) is None
    assert ratelimit_budget(_headers("5", None)) is None
    assert ratelimit_budget(_headers("x", "5")) is None
    assert ratelimit_budget(_headers("-1", "5")) is None
