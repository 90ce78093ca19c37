"""Retry policy as a value, the one retry decision, and the parsers of a vendor's wait hints.

Everything here is pure: :func:`decide_retry` turns what happened to an
attempt into "wait this long, then retry" or "raise", and is tested without a
socket. The HTTP core's loop (``runnerhub._http``) only carries it out.
"""

from __future__ import annotations

import enum
import math
import random
from collections.abc import Generator, Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import attrs

from ._limits import Budget

__all__ = [
    "Decision",
    "Failure",
    "RetryPolicy",
    "decide_retry",
    "parse_rate_limit_reset",
    "parse_retry_after",
    "ratelimit_budget",
]


def _non_negative(instance: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
        raise ValueError(f"{attribute.name} must be a finite number >= 0, got {value!r}")


def _positive(instance: object, attribute: attrs.Attribute[float], value: float) -> None:
    _non_negative(instance, attribute, value)
    if value == 0:
        raise ValueError(f"{attribute.name} must be > 0")


@attrs.frozen
class RetryPolicy:
    """When and how long to retry a failed request.

    Which requests are retried is decided by :func:`decide_retry`: GET, PUT
    and DELETE on connection errors, timeouts, 429 and the statuses in
    ``retry_statuses``; POST only when the vendor cannot have acted (429, or
    the connection was refused before the request was sent).

    Args:
        max_retries: Retries after the first attempt; 0 disables retrying.
        base_delay: First back-off ceiling in seconds; it doubles per retry.
        max_delay: Ceiling of one back-off in seconds (full jitter below it).
        max_total: Seconds after which no further attempt starts.
        retry_statuses: Server statuses worth another attempt (besides 429).
    """

    max_retries: int = attrs.field(default=4, validator=attrs.validators.ge(0))
    base_delay: float = attrs.field(default=0.25, validator=_non_negative)
    max_delay: float = attrs.field(default=20.0, validator=_non_negative)
    max_total: float = attrs.field(default=120.0, validator=_positive)
    retry_statuses: frozenset[int] = frozenset({500, 502, 503, 504})

    def backoff(self, retry: int, rng: random.Random | None = None) -> float:
        """Full-jitter exponential delay before retry number ``retry`` (1-based)."""
        ceiling = min(self.max_delay, self.base_delay * 2.0 ** (retry - 1))
        return (rng or random).uniform(0.0, ceiling)

    def waits(self) -> Generator[float, Any, None]:
        """The delays of :meth:`backoff` as a ``backoff`` wait generator.

        For callers driving the ``backoff`` package themselves; the HTTP core
        uses :func:`decide_retry`. It is sent each failure and yields the
        delay; a failure's ``hint`` attribute (a Retry-After in seconds) wins
        over a shorter jittered delay.
        """
        failure = yield 0.0
        retry = 0
        while True:
            retry += 1
            delay = self.backoff(retry)
            hint = getattr(failure, "hint", None)
            if isinstance(hint, (int, float)):
                delay = max(delay, float(hint))
            failure = yield delay


class Failure(enum.Enum):
    """What went wrong with an attempt, as far as retrying is concerned."""

    CONNECT = "connect"  # no connection was made: nothing was sent
    TRANSPORT = "transport"  # sent, then no complete answer (timeout, reset, cut body)
    RATE_LIMITED = "rate_limited"  # 429 or a vendor's rate-limit 403: refused before acting
    SERVER = "server"  # a 5xx answer
    FATAL = "fatal"  # any other answer: retrying cannot help


@attrs.frozen
class Decision:
    """Retry after ``wait`` seconds, or raise (``retry`` False).

    ``retry_after`` is the vendor's stated wait, to be put on the raised error
    when the call gives up rather than send before the vendor allows.
    """

    retry: bool
    wait: float = 0.0
    retry_after: float | None = None


_RAISE = Decision(retry=False)


def decide_retry(
    failure: Failure,
    *,
    idempotent: bool,
    attempt: int,
    elapsed: float,
    policy: RetryPolicy,
    status: int | None = None,
    retry_after: float | None = None,
    budget: float | None = None,
    rng: random.Random | None = None,
) -> Decision:
    """Whether and when to retry after attempt number ``attempt`` (1-based) failed.

    Rules: a connection never made and a rate-limit refusal may be retried
    for any method; a request that may have reached the vendor (a timeout, a
    reset, a 5xx in ``policy.retry_statuses``) only when ``idempotent``. The
    wait is full-jitter back-off, never shorter than the vendor's
    ``retry_after``; when that wait would end past the call's budget
    (``policy.max_total``, or ``budget`` if smaller, both counted from the
    first send), the call raises instead, carrying ``retry_after``.

    Args:
        failure: What happened.
        idempotent: Whether the request may be repeated (GET, PUT, DELETE).
        attempt: Attempts made so far, this one included.
        elapsed: Seconds since the first attempt started.
        policy: The retry policy.
        status: The HTTP status, for :attr:`Failure.SERVER`.
        retry_after: The vendor's stated wait in seconds, if any.
        budget: Seconds the whole call may take (a deadline), if tighter.
        rng: Random source for the jitter (tests).
    """
    if failure is Failure.FATAL:
        return Decision(retry=False, retry_after=retry_after)
    if failure is Failure.SERVER and status not in policy.retry_statuses:
        return Decision(retry=False, retry_after=retry_after)
    if not idempotent and failure in (Failure.TRANSPORT, Failure.SERVER):
        return Decision(retry=False, retry_after=retry_after)
    if attempt > policy.max_retries:
        return Decision(retry=False, retry_after=retry_after)
    wait = policy.backoff(attempt, rng)
    if retry_after is not None:
        wait = max(wait, retry_after)
    limit = policy.max_total if budget is None else min(policy.max_total, budget)
    if elapsed + wait > limit:
        return Decision(retry=False, retry_after=retry_after)
    return Decision(retry=True, wait=wait, retry_after=retry_after)


def _finite_hint(seconds: float) -> float | None:
    # Any finite wait counts, however long: a caller who cannot wait that long
    # gets an error carrying it rather than an early retry.
    if math.isnan(seconds) or seconds < 0 or math.isinf(seconds):
        return None
    return seconds


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` value, or None if absent or malformed.

    Accepts delay-seconds (also with a fraction, as some servers send) and
    HTTP dates; a date in the past means 0.
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    if text[0].isdigit():
        try:
            return _finite_hint(float(text))
        except ValueError:
            pass  # e.g. an RFC 850 date starting with a digit? Try it as a date.
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    delta = (when - (now or datetime.now(UTC))).total_seconds()
    return _finite_hint(max(0.0, delta))


def parse_rate_limit_reset(headers: Mapping[str, str], *, now: float | None = None) -> float | None:
    """Seconds to pause when ``X-RateLimit-Remaining`` says the window is spent.

    ``X-RateLimit-Reset`` may be seconds from now or a Unix time; both are read.
    Returns None when there is room left or the headers are absent or malformed.
    """
    remaining = headers.get("X-RateLimit-Remaining")
    reset = headers.get("X-RateLimit-Reset")
    if remaining is None or reset is None:
        return None
    try:
        if float(remaining) > 0:
            return None
        seconds = float(reset)
    except ValueError:
        return None
    if seconds > 1_000_000_000:  # a Unix timestamp, not a delay
        seconds -= now if now is not None else datetime.now(UTC).timestamp()
    return _finite_hint(max(0.0, seconds))


def ratelimit_budget(headers: Mapping[str, str], *, now: float | None = None) -> Budget | None:
    """The budget announced by ``X-RateLimit-Remaining`` and ``X-RateLimit-Reset``.

    The default ``VendorSpec.read_budget``; ``X-RateLimit-Reset`` may be
    seconds from now or a Unix time. None when either header is absent or
    malformed.
    """
    remaining = headers.get("X-RateLimit-Remaining")
    if remaining is None:
        return None
    reset = headers.get("X-RateLimit-Reset")
    if reset is None:
        return None
    try:
        left = int(float(remaining))
        seconds = float(reset)
    except ValueError:
        return None
    if seconds > 1_000_000_000:  # a Unix timestamp, not a delay
        seconds -= now if now is not None else datetime.now(UTC).timestamp()
    hint = _finite_hint(max(0.0, seconds))
    if hint is None or left < 0:
        return None
    return Budget(left, hint)
