"""Retry policy as a value, and the pure functions that read a vendor's wait hints."""

from __future__ import annotations

import math
import random
from collections.abc import Generator, Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import attrs

__all__ = ["RetryPolicy", "parse_rate_limit_reset", "parse_retry_after"]

# Hints beyond a day are nonsense or hostile; they are treated as absent.
_MAX_HINT_SECONDS = 86_400.0


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

    Which requests are retried is decided per request (see ``runnerhub._http``):
    GET, PUT and DELETE on connection errors, timeouts, 429 and the statuses in
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
        """A ``backoff`` wait generator: it is sent each failure, and yields the delay.

        A failure's ``hint`` attribute (a Retry-After in seconds) wins over a
        shorter jittered delay.
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


def _finite_hint(seconds: float) -> float | None:
    if math.isnan(seconds) or seconds < 0 or seconds > _MAX_HINT_SECONDS:
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
