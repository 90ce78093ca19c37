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

A request we gave up on (a timeout) may still reach the vendor later, and we
cannot know when. The HTTP core therefore keeps such a request's slot until
its answer actually arrives (or its connection closes, or a hold of
``ABANDON_HOLD`` seconds ends): the stamp is the moment we last knew the
request could still arrive. See docs/design.md, "Rate limits", for what this
assumes of a vendor that stalls.

Vendor-announced budgets (:class:`Budget`) narrow a bucket further: after a
response says ``remaining`` requests are left until a reset, the bucket admits
at most ``remaining`` more, counting those already in flight, until then. When
the vendor also says how many a window holds (``limit``), the reset restores
that many, not an unbounded number: until an answer from the new window
announces it, the bucket admits at most ``limit`` (in flight included), for at
most as long as the longest window announced so far.

The seam: a :class:`Limiter` hands out :class:`Slot` values per
:class:`Bucket`; ``try_enter`` is the await-free fast path every limiter
offers (``None`` when it would have to wait), ``enter`` the waiting one.
:class:`LocalLimiter` (this module) works inside one process;
``runnerhub.limits.RedisLimiter`` shares the same invariant across processes.
"""

from __future__ import annotations

import asyncio
import collections
import hashlib
import math
import time
import weakref
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, Protocol, Self, runtime_checkable
from urllib.parse import urlsplit

import attrs

if TYPE_CHECKING:
    from aiolimiter import AsyncLimiter

__all__ = [
    "ABANDON_HOLD",
    "Bucket",
    "BucketPaused",
    "Budget",
    "Limiter",
    "LocalLimiter",
    "RateLimit",
    "Slot",
    "WindowLog",
    "bucket_scope",
    "shared_local_limiter",
]

#: Seconds a request we stopped waiting for keeps its slot while its answer
#: may still come; after that its connection is closed and the slot stamped.
ABANDON_HOLD: Final = 60.0


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


@attrs.frozen
class Budget:
    """What a vendor announced in a response: ``remaining`` requests until ``reset_after`` s.

    ``limit``, when the vendor says it (GitHub's ``x-ratelimit-limit``), is what
    the reset restores.
    """

    remaining: int
    reset_after: float
    limit: int | None = None


@attrs.frozen(cache_hash=True)  # looked up by every request; hashing it once saves ~0.5 µs
class Bucket:
    """A named set of limits shared by every caller presenting the same key.

    ``key`` identifies vendor, base URL, limit scope (the credential by
    default) and bucket name; it holds a hash of the credential, never the
    credential. ``limits`` may be empty: a bucket that only obeys pauses and
    vendor-announced budgets.
    """

    key: str
    limits: tuple[RateLimit, ...]


def bucket_scope(vendor: str, base_url: str, key: str) -> str:
    """The prefix of every bucket key for one vendor origin and limit scope.

    The base URL is normalised first (scheme and host lower-case, default port
    dropped, no trailing slash), so spellings of one URL share buckets; ``key``
    (a credential id or a caller's ``limit_key``) is hashed, never shown.
    """
    parts = urlsplit(base_url)
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    port = parts.port
    if port is not None and port != {"https": 443, "http": 80}.get(scheme):
        host = f"{host}:{port}"
    origin = f"{scheme}://{host}{parts.path.rstrip('/')}"
    digest = hashlib.sha256(f"{origin}\0{key}".encode()).hexdigest()[:16]
    return f"{vendor}:{digest}:"


class BucketPaused(Exception):
    """The bucket is closed for ``seconds`` more, longer than the caller may wait.

    Raised by :meth:`Limiter.enter` instead of waiting past ``max_wait`` for a
    pause (a 429's Retry-After) or a spent vendor budget.
    """

    def __init__(self, seconds: float) -> None:
        super().__init__(f"bucket paused for {seconds:.1f} s")
        self.seconds = seconds


class Slot(Protocol):
    """One admitted request's place in a bucket."""

    def release(self) -> Awaitable[None] | None:
        """The request was sent and is over (answered, failed or given up): stamp it now.

        A limiter that stamps over the network returns an awaitable; the stamp
        happens whether or not it is awaited, and awaiting it paces the caller.
        """
        ...

    def withdraw(self) -> None:
        """The request was never sent: give the place back without a stamp."""
        ...


@runtime_checkable
class Limiter(Protocol):
    """Hands out request slots that keep every bucket within its limits."""

    def try_enter(self, bucket: Bucket) -> Slot | None:
        """Take a slot at once, without awaiting; None when that would mean waiting."""
        ...

    async def enter(self, bucket: Bucket, *, max_wait: float = math.inf) -> Slot:
        """Wait for room in ``bucket`` and take a slot.

        Raises:
            BucketPaused: when the bucket is paused (or its vendor budget spent)
                for longer than ``max_wait`` seconds; raised at once.
        """
        ...

    def slot(self, bucket: Bucket) -> AbstractAsyncContextManager[None]:
        """``async with``: enter, then release when the block ends."""
        ...

    async def pause(self, bucket: Bucket, seconds: float) -> None:
        """Send nothing more on ``bucket`` for ``seconds`` (e.g. after a 429), for every caller."""
        ...

    def set_budget(self, bucket: Bucket, budget: Budget) -> None:
        """Admit at most ``budget.remaining`` more (in flight included) until its reset."""
        ...

    async def aclose(self) -> None:
        """Release what the limiter holds (connections, tasks)."""
        ...


_STEP = 1e-6
# Two announced resets closer than this are the same vendor window (clock jitter).
_SAME_RESET = 1.0
# An answer announcing (up to clock jitter) the reset that has passed is a late
# answer from the window before it; vendors give resets in whole seconds, so the
# next window's reset is at least a second later.
_ENDED_RESET = 0.25


class WindowLog:
    """The sliding-window log of one bucket, without I/O or clocks of its own.

    ``try_acquire(now)`` either takes a slot (returns 0.0) or tells how long to
    wait before asking again (``math.inf``: until a slot in flight is
    released). ``release(now)`` stamps a finished request; ``withdraw()``
    returns an unused slot. ``closed_for(now)`` is the part of a wait the
    vendor imposed (a pause or a spent budget), which a caller may refuse.
    """

    __slots__ = (
        "_assumed",
        "_budget",
        "_budget_limit",
        "_budget_span",
        "_budget_until",
        "_done",
        "_in_flight",
        "_limits",
        "_paused_until",
        "_windows",
    )

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
        # Requests the vendor's last announced budget still allows, until _budget_until.
        self._budget = 0
        self._budget_until = -math.inf
        # What a reset restores (None: unknown, and nothing is assumed after a reset);
        # the longest window announced; and, while the window is assumed (its reset
        # passed, the next one not yet announced), the reset that passed, else -inf.
        self._budget_limit: int | None = None
        self._budget_span = 0.0
        self._assumed = -math.inf

    @property
    def in_flight(self) -> int:
        """Slots taken and not yet released."""
        return self._in_flight

    def closed_for(self, now: float) -> float:
        """Seconds until the vendor lets this bucket send again (0.0 when it does)."""
        until = self._paused_until
        if now >= self._budget_until:
            self._roll_over(now)
        # An assumed window with requests in flight opens again at their answers.
        spent = self._budget <= 0 and not (self._assumed > -math.inf and self._in_flight)
        if now < self._budget_until and spent:
            until = max(until, self._budget_until)
        return max(0.0, until - now)

    def _roll_over(self, now: float) -> None:
        # The announced window has ended: the vendor restores its whole budget.
        # Assume that much (minus what is still in flight and may land in the new
        # window) until an answer from the new window says more, at most for the
        # longest window announced.
        if self._budget_limit is None or self._budget_until == -math.inf:
            return
        if self._assumed == -math.inf:
            self._assumed = self._budget_until
        self._budget = self._budget_limit - self._in_flight
        self._budget_until = now + self._budget_span

    def try_acquire(self, now: float) -> float:
        """Take a slot at ``now`` if every limit allows it; else return the wait in seconds."""
        if now < self._paused_until:
            return self._paused_until - now + _STEP
        if self._budget_limit is not None and now >= self._budget_until:
            self._roll_over(now)
        budgeted = now < self._budget_until
        if budgeted and self._budget <= 0:
            if self._assumed > -math.inf and self._in_flight:
                return math.inf  # an answer from the new window will say more
            return self._budget_until - now + _STEP
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
            if budgeted:
                self._budget -= 1
        return wait

    def release(self, now: float) -> None:
        """Mark one slot's request finished at ``now``."""
        self._in_flight -= 1
        for done in self._done:
            done.append(now)

    def withdraw(self) -> None:
        """Give back a slot whose request was never sent."""
        self._in_flight -= 1
        if self._budget_until > -math.inf:
            self._budget += 1

    def pause_until(self, until: float) -> None:
        """Refuse every slot until ``until``."""
        self._paused_until = max(self._paused_until, until)

    def set_budget(
        self,
        remaining: int,
        until: float,
        *,
        limit: int | None = None,
        now: float = -math.inf,
    ) -> None:
        """At most ``remaining`` more slots, counting those in flight, until ``until``.

        Within one announced window the smaller count wins (answers may arrive
        out of order); a later reset starts a new window. With ``limit`` (what a
        reset restores) and ``now``, the reset is followed by an assumed window
        of ``limit`` (see :meth:`try_acquire`); an answer whose reset has passed
        by ``now``, or from the window before an assumed one, is ignored.
        """
        if until <= now:
            return
        if limit is not None:
            self._budget_limit = limit
        if now > -math.inf:
            self._budget_span = max(self._budget_span, until - now)
        left = remaining - self._in_flight
        if self._assumed > -math.inf:
            if until <= self._assumed + _ENDED_RESET:
                return  # answered in the window that has ended
            self._assumed = -math.inf
            self._budget = left
        elif until > self._budget_until + _SAME_RESET:
            self._budget = left
        else:
            self._budget = min(self._budget, left)
            until = max(until, self._budget_until)
        self._budget_until = until


class _LocalBucket:
    """A :class:`WindowLog` with FIFO waiting, bound to one event loop.

    It is its own slot: entering waits for room, ``release``/``withdraw`` give
    the place back. Slots hold no state of their own, so every request can
    share the bucket object instead of allocating one.
    """

    __slots__ = ("__weakref__", "_clock", "_lock", "_log", "_pacer", "_released")

    def __init__(self, limits: tuple[RateLimit, ...], clock: Callable[[], float]) -> None:
        self._log = WindowLog(limits)
        self._clock = clock
        self._lock = asyncio.Lock()
        self._released = asyncio.Event()
        self._pacer = _make_pacer(limits)

    def try_enter(self) -> _LocalBucket | None:
        """Take a slot at once if nobody queues, no pacer applies and there is room."""
        if (
            self._pacer is None
            and not self._lock.locked()
            and self._log.try_acquire(self._clock()) == 0.0
        ):
            return self
        return None

    def release(self) -> None:
        """Stamp one request finished now."""
        self._log.release(self._clock())
        self._wake()

    def withdraw(self) -> None:
        """Give back a slot that sent nothing."""
        self._log.withdraw()
        self._wake()

    def _wake(self) -> None:
        if self._lock.locked():  # only the lock's holder ever waits for a release
            self._released.set()

    def _check(self, max_wait: float) -> None:
        closed = self._log.closed_for(self._clock())
        if closed > max_wait:
            raise BucketPaused(closed)

    async def enter(self, max_wait: float = math.inf) -> _LocalBucket:
        """Wait for room (FIFO), then take a slot; see :meth:`Limiter.enter`."""
        self._check(max_wait)
        if self._pacer is not None:
            await self._pacer.acquire()
        # Fast path: nobody queued and room now.
        if not self._lock.locked() and self._log.try_acquire(self._clock()) == 0.0:
            return self
        async with self._lock:
            while (wait := self._log.try_acquire(self._clock())) > 0.0:
                self._check(max_wait)
                self._released.clear()
                if math.isinf(wait):
                    await self._released.wait()
                else:
                    await asyncio.sleep(wait)
        return self

    async def __aenter__(self) -> None:
        await self.enter()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # Released even when cancelled: the request may have reached the vendor.
        self.release()

    def pause(self, seconds: float) -> None:
        self._log.pause_until(self._clock() + seconds)

    def set_budget(self, budget: Budget) -> None:
        now = self._clock()
        self._log.set_budget(
            budget.remaining, now + budget.reset_after, limit=budget.limit, now=now
        )
        self._wake()


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

    def try_enter(self, bucket: Bucket) -> _LocalBucket | None:
        """Take a slot at once, without awaiting; None when that would mean waiting."""
        local = self._buckets.get(bucket)
        if local is None:
            local = self._bucket(bucket)
        return local.try_enter()

    async def enter(self, bucket: Bucket, *, max_wait: float = math.inf) -> _LocalBucket:
        """Wait for room in ``bucket`` (FIFO) and take a slot.

        Raises:
            BucketPaused: when the vendor closed the bucket for more than ``max_wait`` s.
        """
        return await self._bucket(bucket).enter(max_wait)

    def slot(self, bucket: Bucket) -> _LocalBucket:
        """``async with``: wait for room, release when the block ends."""
        return self._bucket(bucket)

    async def pause(self, bucket: Bucket, seconds: float) -> None:
        """Send nothing more on ``bucket`` for ``seconds``, for every caller."""
        self._bucket(bucket).pause(seconds)

    def set_budget(self, bucket: Bucket, budget: Budget) -> None:
        """Admit at most ``budget.remaining`` more (in flight included) until its reset."""
        self._bucket(bucket).set_budget(budget)

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
