"""GitHub's primary budget and secondary limits (notes §6), on the caller's clock.

Keys are opaque: the service uses a token's credential tag, or one shared key
for requests without a valid token. Times are ``time.monotonic()``-style
seconds; periods are divided by ``Settings.time_scale``. All windows live in
the shared :class:`~._window.Limiter`, so ``Sandbox.reset_limits()`` forgets them.

- **Primary** (``x-ratelimit-*``): a fixed window per key. It opens with the
  first request after the previous one closed, lasts an hour and admits
  ``limit`` requests; when it closes the whole budget returns, as GitHub's
  ``x-ratelimit-reset`` promises.
- **Secondary**: sliding windows per key, the strictest reading of
  "N per minute": ``points_per_minute`` where a read costs 1 point and a
  mutation 5, and ``content_per_minute`` / ``content_per_hour`` over mutations
  (the notes treat every mutation as content-creating); plus at most
  ``concurrency`` requests in flight.

A refused request is charged to nothing.
"""

from __future__ import annotations

from collections.abc import Hashable

import attrs

from ._common import Settings
from ._window import Window

HOUR = 3600.0
MINUTE = 60.0
READ_POINTS = 1
MUTATION_POINTS = 5


@attrs.frozen
class GitHubLimits:
    """The limit knobs of one emulated GitHub (see ``GitHubService``)."""

    primary: int | None = 5000
    unauthenticated: int = 60
    status: int = 403
    concurrency: int = 100
    points_per_minute: int = 900
    content_per_minute: int = 80
    content_per_hour: int = 500

    def __attrs_post_init__(self) -> None:
        if self.status not in (403, 429):
            raise ValueError(f"rate_limit_status must be 403 or 429, got {self.status}")
        if self.points_per_minute < MUTATION_POINTS:
            raise ValueError("points_per_minute must be at least 5, the cost of a mutation")
        for name in ("unauthenticated", "concurrency", "content_per_minute", "content_per_hour"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        if self.primary is not None and self.primary < 1:
            raise ValueError("primary_limit must be at least 1 or None")


@attrs.frozen
class Budget:
    """A primary budget as the ``x-ratelimit-*`` headers report it."""

    limit: int
    used: int
    # Seconds until the window closes; a full period when none is open.
    reset_after: float

    @property
    def remaining(self) -> int:
        """Requests left in the window (never negative, even when not enforced)."""
        return max(0, self.limit - self.used)


class GitHubBudgets:
    """Per-key primary budgets, secondary windows and requests in flight."""

    def __init__(self, limits: GitHubLimits, settings: Settings) -> None:
        self.limits = limits
        self._settings = settings
        self._in_flight: dict[Hashable, int] = {}
        # Opening time of each key's primary window; valid while its log is non-empty.
        self._opened: dict[Hashable, float] = {}

    def _primary(self, key: Hashable, limit: int) -> Window:
        spec = self._settings.scaled(limit, HOUR)
        return self._settings.limiter.windows(("github", "primary", key, limit), [spec])[0]

    def budget(self, key: Hashable, limit: int, now: float) -> Budget:
        """``key``'s primary budget at ``now``, without charging it."""
        window = self._primary(key, limit)
        used = window.count(now)
        if not used:
            return Budget(limit, 0, window.period)
        return Budget(limit, used, self._opened[key] + window.period - now)

    def charge(self, key: Hashable, limit: int, now: float) -> None:
        """Count one request against ``key``'s primary budget."""
        # Every entry is logged at the window's opening time, so the sliding log
        # empties all at once one period later: a fixed window.
        window = self._primary(key, limit)
        if not window.count(now):
            self._opened[key] = now
        window.add(self._opened[key])

    def admit(self, key: Hashable, *, mutation: bool, now: float) -> float:
        """Charge a request to ``key``'s secondary windows if they all have room.

        Returns:
            0.0 if admitted (or if limits are not enforced), else the seconds
            until it would be. For the concurrency limit, which frees when some
            request ends, that is one scaled second.
        """
        limits = self.limits
        settings = self._settings
        limiter = settings.limiter
        cost = MUTATION_POINTS if mutation else READ_POINTS
        points = limiter.windows(
            ("github", "points", key), [settings.scaled(limits.points_per_minute, MINUTE)]
        )
        content = limiter.windows(
            ("github", "content", key),
            [
                settings.scaled(limits.content_per_minute, MINUTE),
                settings.scaled(limits.content_per_hour, HOUR),
            ],
        )
        waits = [w.wait(now, cost) for w in points]
        if mutation:
            waits += [w.wait(now) for w in content]
        if self._in_flight.get(key, 0) >= limits.concurrency:
            waits.append(1.0 / settings.time_scale)
        wait = max(waits)
        if wait > 0.0 and settings.enforce_limits:
            return wait
        for window in points:
            for _ in range(cost):
                window.add(now)
        if mutation:
            for window in content:
                window.add(now)
        return 0.0

    def enter(self, key: Hashable) -> None:
        """A request of ``key`` starts being served."""
        self._in_flight[key] = self._in_flight.get(key, 0) + 1

    def leave(self, key: Hashable) -> None:
        """A request of ``key`` has been served."""
        left = self._in_flight[key] - 1
        if left:
            self._in_flight[key] = left
        else:
            del self._in_flight[key]

    def in_flight(self, key: Hashable) -> int:
        """Requests of ``key`` being served now."""
        return self._in_flight.get(key, 0)
