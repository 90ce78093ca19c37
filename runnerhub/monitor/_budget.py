"""The monitor's share of each vendor budget, and the refresh cadence it allows.

The invariant: for every bucket an account's provider class declares
(``default_limits``, or the ``limits`` given to the monitor for that account),
with a limit of ``N`` requests per ``P`` seconds, the monitor admits at most
``max(1, floor(N * share))`` of its own calls in any window of ``P`` seconds.
It keeps that with its own :class:`runnerhub.limits.LocalLimiter` over buckets
whose limits are the scaled ones, so the sliding-window proof of
``runnerhub.limits`` applies unchanged. The providers' own limiters still hold
the full budget beneath, for every tool that shares them in this process.

A call is one slot: a listing spends one slot for all its pages and a call
that was retried spends one for all its attempts, so before the next call the
monitor pays for the extra requests it observed (:meth:`AccountBudget.charge`).
A call draws from its operation's bucket and from the key-wide ``"*"`` bucket
when the vendor declares one, slots always taken in that order.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Mapping
from contextlib import AsyncExitStack, asynccontextmanager

import attrs

from ..limits import Bucket, LocalLimiter, RateLimit

__all__ = ["AccountBudget", "Cadence", "Limits", "scaled_limits"]

_SHARED = "*"

Limits = RateLimit | tuple[RateLimit, ...] | None
"""One bucket's limits as ``rate_limits=`` accepts them."""


def scaled_limits(limits: tuple[RateLimit, ...], share: float) -> tuple[RateLimit, ...]:
    """``limits`` with each ``max_requests`` scaled by ``share`` (at least 1, pacing dropped)."""
    return tuple(
        RateLimit(max(1, math.floor(limit.max_requests * share)), limit.period_seconds)
        for limit in limits
    )


@attrs.frozen
class Cadence:
    """How often an account is listed and health-checked.

    Attributes:
        list_seconds: Seconds between listings.
        health_seconds: Seconds between health passes; ``math.inf`` when the
            budget leaves nothing for them.
    """

    list_seconds: float
    health_seconds: float


class AccountBudget:
    """One account's share of its vendor budget.

    Args:
        account: The account label (names the monitor's buckets).
        limits: The account's limits by bucket name, as the provider declares them or
            as ``rate_limits=`` gives them (a limit, a tuple of them, or None for none).
        share: Fraction of each limit the monitor may use, in (0, 1].
        limiter: The monitor's own limiter (shared by every account budget).
    """

    def __init__(
        self,
        account: str,
        limits: Mapping[str, Limits],
        share: float,
        limiter: LocalLimiter,
    ) -> None:
        self._limiter = limiter
        self._buckets: dict[str, Bucket] = {}
        for name, value in limits.items():
            if value is None:
                continue
            given = (value,) if isinstance(value, RateLimit) else tuple(value)
            if given:
                scaled = scaled_limits(given, share)
                self._buckets[name] = Bucket(f"monitor:{account}:{name}", scaled)

    def buckets(self, operation: str) -> tuple[Bucket, ...]:
        """The buckets a call of ``operation`` draws from, in the order slots are taken."""
        names = [operation] if operation != _SHARED else []
        names.append(_SHARED)
        return tuple(self._buckets[name] for name in names if name in self._buckets)

    def rate(self, operation: str) -> float:
        """Sustained calls per second the monitor may make of ``operation`` (inf if unlimited)."""
        return min(
            (
                limit.max_requests / limit.period_seconds
                for bucket in self.buckets(operation)
                for limit in bucket.limits
            ),
            default=math.inf,
        )

    def shares_bucket(self, first: str, second: str) -> bool:
        """Whether calls of the two operations draw from a common bucket."""
        return bool(set(self.buckets(first)) & set(self.buckets(second)))

    @asynccontextmanager
    async def spend(self, operation: str) -> AsyncIterator[None]:
        """Hold one slot of every bucket ``operation`` draws from for the ``async with`` body."""
        async with AsyncExitStack() as stack:
            for bucket in self.buckets(operation):
                await stack.enter_async_context(self._limiter.slot(bucket))
            yield

    async def charge(self, operation: str, requests: int) -> None:
        """Record ``requests`` more of ``operation`` already sent, waiting for room as needed."""
        for _ in range(requests):
            async with self.spend(operation):
                pass

    def cadence(
        self,
        interval: float,
        *,
        list_cost: int,
        health_cost: int,
        list_operation: str = "list_runners",
        health_operation: str = "runner_health",
    ) -> Cadence:
        """The fastest cadence, no faster than ``interval``, that fits the monitor's share.

        Args:
            interval: The wanted seconds between refreshes.
            list_cost: Requests one listing takes (its pages).
            health_cost: Requests one health pass takes (one per runner); 0 for none.
        """
        list_seconds = max(interval, list_cost / self.rate(list_operation))
        if health_cost == 0:
            return Cadence(list_seconds, math.inf)
        spare = self.rate(health_operation)
        if self.shares_bucket(list_operation, health_operation):
            spare -= list_cost / list_seconds
        if spare <= 0:
            return Cadence(list_seconds, math.inf)
        return Cadence(list_seconds, max(interval, health_cost / spare))
