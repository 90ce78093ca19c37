"""Client-side rate limits that hold the vendor's sliding-window invariant.

The invariant: for every bucket with limit ``N per P seconds``, no window of
``P`` seconds, placed anywhere in time, sees more than ``N`` of our requests
arrive at the vendor. A vendor counts a request when it *arrives*, somewhere
between when we send it and when its response comes back; so a request holds
its place in the window from send until ``response + P`` (a sliding-window
log whose entries are stamped when the response returns). Then, for any
window ``(t - P, t]`` at the vendor, every request that arrived in it is still
held by us at ``t``, and we never hold more than ``N``.

Why not a plain :class:`aiolimiter.AsyncLimiter` (a leaky bucket): with
capacity ``N`` draining at ``N/P`` it admits ``N`` at once and then ``N``
more over the next ``P`` seconds, about ``2N`` in its worst window (measured:
119 for 60 per 60 s). A bucket small enough to be safe cannot also burst and
sustain 90% for a limit like 10 per 60 s; the log does both. aiolimiter stays
as an optional pacer in front of the log (:attr:`RateLimit.burst`) for callers
who want to spread requests out rather than burst.

The seam: a :class:`Limiter` hands out slots per :class:`Bucket`.
:class:`LocalLimiter` (this module) works inside one process;
``runnerhub.limits.RedisLimiter`` shares the same invariant across processes.
"""

from __future__ import annotations

import asyncio
import collections
import math
import time
import weakref
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol, Self, runtime_checkable

import attrs

if TYPE_CHECKING:
    from aiolimiter import AsyncLimiter

    from ._redis import RedisLimiter

__all__ = [
    "Bucket",
    "Limiter",
    "LocalLimiter",
    "RateLimit",
    "RedisLimiter",
    "WindowLog",
    "shared_local_limiter",
]


def _positive(instance: object, attribute: attrs.Attribute[Any], value: float) -> None:
    if not value > 0:
        raise ValueError(f"{attribute.name} must be > 0, got {value!r}")


def _to_float(value: float) -> float:
    # ``converter=float`` would do the same, but attrs reads a converter's signature,
    # and for a builtin that means tokenizing its text signature: ~10 ms at import.
    return float(value)


@attrs.frozen
class RateLimit:
    """At most ``max_requests`` in any window of ``period_seconds``.

    Args:
        max_requests: Requests allowed per window.
        period_seconds: Window length in seconds.
        burst: Optional pacing: at most this many sent back to back, the rest
            spread evenly at ``max_requests / period_seconds`` (an aiolimiter
            bucket in front of the window). None sends as fast as the window
            allows.
    """

    max_requests: int = attrs.field(validator=_positive)
    period_seconds: float = attrs.field(converter=_to_float, validator=_positive)
    burst: int | None = attrs.field(default=None, kw_only=True)


@attrs.frozen(cache_hash=True)  # looked up by every request; hashing it once saves ~0.5 µs
class Bucket:
    """A named set of limits shared by every caller presenting the same key.

    ``key`` identifies vendor, base URL, credential and bucket name; it holds
    a hash of the credential, never the credential.
    """

    key: str
    limits: tuple[RateLimit, ...]


@runtime_checkable
class Limiter(Protocol):
    """Hands out request slots that keep every bucket within its limits."""

    def slot(self, bucket: Bucket) -> AbstractAsyncContextManager[None]:
        """Wait for room in ``bucket``; hold the slot from send until the response returns."""
        ...

    async def pause(self, bucket: Bucket, seconds: float) -> None:
        """Send nothing more on ``bucket`` for ``seconds`` (e.g. after a 429), for every caller."""
        ...

    async def aclose(self) -> None:
        """Release what the limiter holds (connections, tasks)."""
        ...


_STEP = 1e-6


class WindowLog:
    """The sliding-window log of one bucket, without I/O or clocks of its own.

    ``try_acquire(now)`` either takes a slot (returns 0.0) or tells how long to
    wait before asking again (``math.inf``: until a slot in flight is
    released). ``release(now)`` stamps a finished request.
    """

    __slots__ = ("_done", "_in_flight", "_limits", "_paused_until", "_windows")

    def __init__(self, limits: tuple[RateLimit, ...]) -> None:
        self._limits = limits
        self._done: list[collections.deque[float]] = [collections.deque() for _ in limits]
        # Each limit with its log, paired once rather than on every try_acquire.
        self._windows = tuple(
            (limit.period_seconds, limit.max_requests, done)
            for limit, done in zip(limits, self._done, strict=True)
        )
        self._in_flight = 0
        self._paused_until = -math.inf

    @property
    def in_flight(self) -> int:
        """Slots taken and not yet released."""
        return self._in_flight

    def try_acquire(self, now: float) -> float:
        """Take a slot at ``now`` if every limit allows it; else return the wait in seconds."""
        if now < self._paused_until:
            return self._paused_until - now + _STEP
        wait = 0.0
        for period, max_requests, done in self._windows:
            horizon = now - period
            while done and done[0] <= horizon:
                done.popleft()
            if self._in_flight + len(done) >= max_requests:
                # The oldest finished request frees its place when its window passes;
                # with none finished, only a release can change anything.
                # _STEP keeps float rounding from waking us a hair early, forever.
                wait = max(wait, done[0] - horizon + _STEP if done else math.inf)
        if wait == 0.0:
            self._in_flight += 1
        return wait

    def release(self, now: float) -> None:
        """Mark one slot's request finished at ``now``."""
        self._in_flight -= 1
        for done in self._done:
            done.append(now)

    def pause_until(self, until: float) -> None:
        """Refuse every slot until ``until``."""
        self._paused_until = max(self._paused_until, until)


class _LocalBucket:
    """A :class:`WindowLog` with FIFO waiting, bound to one event loop.

    It is its own slot (``async with bucket:``): entering waits for room,
    leaving releases. Slots hold no state of their own, so every request can
    share the bucket object instead of allocating one.
    """

    __slots__ = ("__weakref__", "_clock", "_lock", "_log", "_pacer", "_released")

    def __init__(self, limits: tuple[RateLimit, ...], clock: Callable[[], float]) -> None:
        self._log = WindowLog(limits)
        self._clock = clock
        self._lock = asyncio.Lock()
        self._released = asyncio.Event()
        self._pacer = _make_pacer(limits)

    def enter_now(self) -> bool:
        """Take a slot at once if nobody queues and there is room; False otherwise.

        What ``__aenter__`` does first, without the coroutine: the HTTP core calls
        it on every request and awaits ``__aenter__`` only when it returns False.
        """
        return (
            self._pacer is None
            and not self._lock.locked()
            and self._log.try_acquire(self._clock()) == 0.0
        )

    def leave(self) -> None:
        """Release a slot (``__aexit__`` without the coroutine)."""
        self._log.release(self._clock())
        if self._lock.locked():  # only the lock's holder ever waits for a release
            self._released.set()

    async def __aenter__(self) -> None:
        if self._pacer is not None:
            await self._pacer.acquire()
        # Fast path: nobody queued and room now.
        if not self._lock.locked() and self._log.try_acquire(self._clock()) == 0.0:
            return
        async with self._lock:
            while (wait := self._log.try_acquire(self._clock())) > 0.0:
                self._released.clear()
                if math.isinf(wait):
                    await self._released.wait()
                else:
                    await asyncio.sleep(wait)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # Released even when cancelled: the request may have reached the vendor.
        self.leave()

    def pause(self, seconds: float) -> None:
        self._log.pause_until(self._clock() + seconds)


def _make_pacer(limits: tuple[RateLimit, ...]) -> AsyncLimiter | None:
    paced = [limit for limit in limits if limit.burst is not None]
    if not paced:
        return None
    from aiolimiter import AsyncLimiter  # noqa: PLC0415 - only paced buckets pay for the import

    limit = min(paced, key=lambda lim: lim.max_requests / lim.period_seconds)
    burst = limit.burst or 1
    return AsyncLimiter(burst, burst * limit.period_seconds / limit.max_requests)


class LocalLimiter:
    """The in-process :class:`Limiter`: one sliding-window log per bucket.

    Args:
        clock: Monotonic clock in seconds (injectable for tests).
    """

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._buckets: dict[Bucket, _LocalBucket] = {}

    def _bucket(self, bucket: Bucket) -> _LocalBucket:
        local = self._buckets.get(bucket)
        if local is None:
            local = self._buckets[bucket] = _LocalBucket(bucket.limits, self._clock)
        return local

    def slot(self, bucket: Bucket) -> _LocalBucket:
        """Wait for room in ``bucket``; hold the slot from send until the response returns."""
        return self._bucket(bucket)

    async def pause(self, bucket: Bucket, seconds: float) -> None:
        """Send nothing more on ``bucket`` for ``seconds``, for every caller."""
        self._bucket(bucket).pause(seconds)

    def in_flight(self, bucket: Bucket) -> int:
        """Slots of ``bucket`` taken and not released (0 when idle)."""
        local = self._buckets.get(bucket)
        return local._log.in_flight if local is not None else 0

    async def aclose(self) -> None:
        """Nothing to release; present for the :class:`Limiter` protocol."""

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


_shared: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, LocalLimiter] = (
    weakref.WeakKeyDictionary()
)


def shared_local_limiter() -> LocalLimiter:
    """The running event loop's default limiter, shared by every provider in it.

    Vendors count requests per credential, not per client object, so two
    providers built with the same key must share buckets. This is the one
    piece of process state runnerhub keeps; it goes with its event loop.
    """
    loop = asyncio.get_running_loop()
    limiter = _shared.get(loop)
    if limiter is None:
        limiter = _shared[loop] = LocalLimiter()
    return limiter


def __getattr__(name: str) -> Any:
    # RedisLimiter needs the optional ``redis`` package; import it only when asked for.
    if name == "RedisLimiter":
        from ._redis import RedisLimiter  # noqa: PLC0415 - optional dependency, loaded on demand

        return RedisLimiter
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
