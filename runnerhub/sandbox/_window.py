"""Server-side sliding-window log limiter.

A window of ``(limit, period)`` admits a request arriving at ``now`` only if fewer
than ``limit`` admitted requests arrived in ``(now - period, now]``. This is the
strictest reading of a vendor's "N requests / M seconds": it holds for every
window position, not just for aligned buckets.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Hashable, Sequence
from email.utils import formatdate
from typing import Literal

import attrs

RetryAfterStyle = Literal["decimal", "int", "date"]


@attrs.define
class Window:
    """The admitted arrival times of one key within one ``(limit, period)`` window."""

    limit: int
    period: float
    _log: deque[float] = attrs.field(factory=deque, init=False)

    def _expire(self, now: float) -> None:
        # An entry at exactly ``now - period`` has left the half-open window.
        horizon = now - self.period
        log = self._log
        while log and log[0] <= horizon:
            log.popleft()

    def count(self, now: float) -> int:
        """Admitted requests in the window ending at ``now``."""
        self._expire(now)
        return len(self._log)

    def remaining(self, now: float) -> int:
        """Requests that would still be admitted at ``now``."""
        return max(0, self.limit - self.count(now))

    def wait(self, now: float, cost: int = 1) -> float:
        """Seconds until ``cost`` more entries would fit (0.0 if they would now).

        ``cost`` above ``limit`` never fits: the wait is infinite.
        """
        n = self.count(now)
        if n + cost <= self.limit:
            return 0.0
        if cost > self.limit:
            return math.inf
        # The log may exceed the limit when enforcement is off; ``cost`` slots
        # free once all but ``limit - cost`` entries have expired.
        return self._log[n + cost - 1 - self.limit] + self.period - now

    def reset(self, now: float) -> float:
        """Seconds until the oldest admitted request leaves the window (0.0 if empty)."""
        if not self.count(now):
            return 0.0
        return self._log[0] + self.period - now

    def add(self, now: float) -> None:
        """Record an admitted request; arrivals must be non-decreasing."""
        self._log.append(now)


class Limiter:
    """Sliding windows per key; a request is admitted only if every window of its key has room."""

    def __init__(self) -> None:
        self._windows: dict[Hashable, list[Window]] = {}

    def windows(self, key: Hashable, specs: Sequence[tuple[int, float]]) -> list[Window]:
        """The windows of ``key``, created from ``specs`` on first use."""
        found = self._windows.get(key)
        if found is None:
            found = [Window(limit, period) for limit, period in specs]
            self._windows[key] = found
        return found

    def acquire(
        self,
        key: Hashable,
        specs: Sequence[tuple[int, float]],
        now: float,
        *,
        enforce: bool = True,
    ) -> float:
        """Admit one request for ``key`` at ``now``.

        Returns:
            0.0 if admitted, else the seconds until it would be. A rejected
            request is not recorded, so it never delays later ones.
        """
        windows = self.windows(key, specs)
        wait = max((w.wait(now) for w in windows), default=0.0)
        if wait > 0.0 and enforce:
            return wait
        for w in windows:
            w.add(now)
        return 0.0

    def clear(self) -> None:
        """Forget every key."""
        self._windows.clear()


def ceil_ms(seconds: float) -> float:
    """``seconds`` rounded up to whole milliseconds, never below 0.001.

    Rounding up means a client waiting the advertised time finds a free slot;
    the inner ``round`` keeps float noise (0.275 * 1000 = 275.00000000000006)
    from adding a millisecond.
    """
    return max(0.001, math.ceil(round(seconds * 1000, 6)) / 1000)


def format_seconds(seconds: float) -> str:
    """Decimal seconds with at most three decimals, rounded up: ``0.275``, ``12``."""
    text = f"{ceil_ms(seconds):.3f}".rstrip("0").rstrip(".")
    return text or "0"


def retry_after_value(seconds: float, style: RetryAfterStyle, wall_now: float) -> str:
    """A ``Retry-After`` value saying "wait ``seconds``" in ``style``.

    ``wall_now`` is the Unix time used for the ``date`` style (IMF-fixdate,
    rounded up to the next whole second).
    """
    if style == "decimal":
        return format_seconds(seconds)
    if style == "int":
        return str(max(1, math.ceil(seconds)))
    return formatdate(math.ceil(wall_now + seconds), usegmt=True)
