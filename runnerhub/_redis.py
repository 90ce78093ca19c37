"""Rate limits shared by every process on one Redis: :class:`RedisLimiter`.

The invariant is the core's (see :mod:`runnerhub.limits`): for every bucket
with limit ``N per P``, no window of ``P`` seconds at the vendor sees more than
``N`` of our requests, now counted over every process and machine that shares
the Redis. Admission is one Lua script run atomically by the server, on the
server's clock (``TIME``), so skewed machine clocks cannot disagree about a
window.

The log. Each limit of a bucket is a sorted set whose members are request
tokens and whose score is the instant (server ms) the member stops counting:

* admitted (in flight): ``now + lease + P``, so that the slot of a process that
  dies mid-request expires on its own, yet only after any request it could
  still have sent has left the vendor's window (``lease`` must exceed the
  provider's per-attempt ``timeout`` plus the hold of a timed-out request,
  ``runnerhub._limits.ABANDON_HOLD``);
* released (the response came back): ``release_time + P``.

A request reaches the vendor between admission and release, so at any instant
every request that arrived at the vendor in the last ``P`` seconds is still a
member. Admission drops members whose score has passed and adds the token only
if every set holds fewer than ``N``; so no window ever holds more than ``N``.
When full, the script returns a wait that is a lower bound (the ``N``-th
youngest member's score, or ``now + P`` for one still in flight, which cannot
free earlier), and the client sleeps that long (at most ``_MAX_SLEEP``) before
asking again; one coroutine per process and bucket asks, the others queue
behind it in FIFO order, so Redis sees about one call per process per freed
slot. A cooldown key set by :meth:`RedisLimiter.pause` (``PX`` expiry) makes
the script return its remaining ``PTTL`` instead (negated, so that a caller
who cannot wait that long fails at once), for every process.

Why Lua and not a library: ``limits``' moving window (the best-kept candidate
with ``redis.asyncio`` support) stamps a hit once, when it is taken, and has no
release or shared cooldown; it cannot express "counts from send until the
response returns", which is what keeps jitter between processes from putting
``N + 1`` in a vendor window.

Each process also keeps its own in-process log (a :class:`LocalLimiter`) in
front of Redis, so one process never sends more than ``N`` per window even
while Redis is down, just restarted empty, or recovering.

Keys: ``runnerhub:{<bucket.key>}:<limit index>`` and
``runnerhub:{<bucket.key>}:pause``. ``bucket.key`` is
``vendor:<sha256 prefix of base URL and key id>:<bucket>``, never a secret; the
braces are a Redis Cluster hash tag keeping one bucket's keys in one slot. Every
key carries a TTL, so idle buckets disappear.

Redis unavailable or slow (an error, or no answer within ``timeout``):
``fallback="local"`` (default) logs one WARNING per outage on the ``runnerhub``
logger and lets each process enforce the limits alone, retrying Redis after
``retry_interval``; ``fallback="fail"`` raises
:class:`~runnerhub.errors.TransportError` instead. Neither waits longer than
``timeout`` per Redis call.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import math
import time
import uuid
from collections.abc import Awaitable
from typing import Any, Final, Literal, Self

import redis.asyncio as aioredis
from redis.asyncio.connection import SSLConnection, UnixDomainSocketConnection
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from . import errors
from ._limits import Bucket, BucketPaused, Budget, LocalLimiter, _LocalBucket

__all__ = ["Fallback", "RedisLimiter"]

logger: Final = logging.getLogger("runnerhub")

Fallback = Literal["local", "fail"]

# Longest sleep between two admission attempts: waits are exact lower bounds,
# this only bounds the damage if keys vanish (FLUSHALL) or clocks jump.
_MAX_SLEEP: Final = 0.5

# KEYS[1..n]: one sorted set per limit; KEYS[n+1]: the cooldown key.
# ARGV[1]: token; ARGV[2]: lease (ms); then max_requests and period (ms) per limit.
# Returns 0 when the token was admitted, else the milliseconds to wait (>= 1).
_ADMIT: Final = """
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local n = #KEYS - 1
local paused = redis.call('PTTL', KEYS[n + 1])
if paused > 0 then return -paused end
local lease = tonumber(ARGV[2])
local wait = 0
for i = 1, n do
  local limit = tonumber(ARGV[1 + 2 * i])
  local period = tonumber(ARGV[2 + 2 * i])
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now)
  local count = redis.call('ZCARD', KEYS[i])
  if count >= limit then
    -- The set must lose count - limit + 1 members; an in-flight member (score
    -- past now + period) frees no earlier than now + period.
    local nth = redis.call('ZRANGE', KEYS[i], count - limit, count - limit, 'WITHSCORES')
    local free = math.min(tonumber(nth[2]), now + period)
    wait = math.max(wait, free - now)
  end
end
if wait > 0 then return math.max(1, math.ceil(wait)) end
for i = 1, n do
  local period = tonumber(ARGV[2 + 2 * i])
  redis.call('ZADD', KEYS[i], now + lease + period, ARGV[1])
  redis.call('PEXPIRE', KEYS[i], math.ceil(lease + period))
end
return 0
"""

# KEYS: the limits' sorted sets. ARGV[1]: token; then period (ms) per limit.
# Re-adds a member that vanished: the vendor may have counted the request.
_RELEASE: Final = """
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
for i = 1, #KEYS do
  local period = tonumber(ARGV[1 + i])
  redis.call('ZADD', KEYS[i], now + period, ARGV[1])
  if redis.call('PTTL', KEYS[i]) < period then
    redis.call('PEXPIRE', KEYS[i], math.ceil(period))
  end
end
return 0
"""

# KEYS[1]: the cooldown key. ARGV[1]: milliseconds. Extends, never shortens.
_PAUSE: Final = """
local ms = tonumber(ARGV[1])
if redis.call('PTTL', KEYS[1]) < ms then
  redis.call('SET', KEYS[1], '1', 'PX', ms)
end
return 0
"""

# What "Redis is unavailable" looks like: refused, reset, timed out, or a
# server-side error (OOM, READONLY replica, a script that cannot run).
_UNAVAILABLE: Final = (RedisError, OSError, TimeoutError)


class RedisLimiter:
    """A :class:`~runnerhub.limits.Limiter` shared by every process using the same Redis.

    Build it with :meth:`from_url` (the limiter owns that client) or from an
    existing ``redis.asyncio.Redis`` (the caller keeps it). Use it from one
    event loop; pass it to any number of providers with ``limiter=``. They
    never close it: close it with ``async with`` or :meth:`aclose`.

    Args:
        client: A ``redis.asyncio.Redis``; not closed by :meth:`aclose`.
        fallback: When Redis fails or does not answer within ``timeout``:
            ``"local"`` enforces the limits in this process alone (one WARNING
            per outage) and retries Redis after ``retry_interval``; ``"fail"``
            raises :class:`~runnerhub.errors.TransportError`.
        timeout: Seconds allowed for one Redis call.
        lease_seconds: How long an admitted request may stay unreleased before
            its slot expires on its own (a crashed process); must exceed the
            providers' per-attempt ``timeout`` (default 30 s) plus the 60 s a
            timed-out request keeps its slot.
        retry_interval: Seconds between attempts to reach Redis during an outage.
        prefix: First component of every key.

    Raises:
        UsageError: for an unknown ``fallback`` or a non-positive duration.
    """

    def __init__(
        self,
        client: aioredis.Redis,
        *,
        fallback: Fallback = "local",
        timeout: float = 0.5,
        lease_seconds: float = 120.0,
        retry_interval: float = 5.0,
        prefix: str = "runnerhub",
    ) -> None:
        if fallback not in ("local", "fail"):
            raise errors.UsageError(f"fallback must be 'local' or 'fail', got {fallback!r}")
        for name, value in (
            ("timeout", timeout),
            ("lease_seconds", lease_seconds),
            ("retry_interval", retry_interval),
        ):
            if not value > 0:
                raise errors.UsageError(f"{name} must be > 0 seconds, got {value!r}")
        self._client = client
        self._owns_client = False
        self._fallback: Fallback = fallback
        self._timeout = float(timeout)
        self._lease_ms = float(lease_seconds) * 1000
        self._retry_interval = float(retry_interval)
        self._prefix = prefix
        self._label = _describe_client(client)
        self._admit = client.register_script(_ADMIT)
        self._release = client.register_script(_RELEASE)
        self._pause = client.register_script(_PAUSE)
        self._local = LocalLimiter()
        self._pollers: dict[Bucket, asyncio.Lock] = {}
        self._tokens = itertools.count()
        self._instance = uuid.uuid4().hex[:12]
        self._down_until: float | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        fallback: Fallback = "local",
        timeout: float = 0.5,
        lease_seconds: float = 120.0,
        retry_interval: float = 5.0,
        prefix: str = "runnerhub",
        **redis_options: Any,
    ) -> RedisLimiter:
        """A limiter on its own client for ``url`` (``redis://[:password@]host:port/db``).

        No connection is made until the first request. ``redis_options`` go
        to ``redis.asyncio.Redis.from_url``; by default every socket operation
        times out after ``timeout`` and redis-py retries once, at once, on a
        new connection (this class falls back rather than wait). Other
        arguments are as for the constructor.
        """
        options: dict[str, Any] = {
            "socket_timeout": timeout,
            "socket_connect_timeout": timeout,
            # One immediate retry on a fresh connection: a pooled one may be stale (a
            # restarted server). The whole call stays bounded by ``timeout``.
            "retry": Retry(NoBackoff(), 1),
            **redis_options,
        }
        client = aioredis.Redis.from_url(url, **options)
        limiter = cls(
            client,
            fallback=fallback,
            timeout=timeout,
            lease_seconds=lease_seconds,
            retry_interval=retry_interval,
            prefix=prefix,
        )
        limiter._owns_client = True
        return limiter

    def __repr__(self) -> str:
        return f"<RedisLimiter {self._label} fallback={self._fallback!r}>"

    # -- the Limiter protocol ------------------------------------------------

    def try_enter(self, bucket: Bucket) -> _RedisSlot | None:
        """Always None: admission needs a Redis round trip, so it goes through :meth:`enter`."""
        return None

    async def enter(self, bucket: Bucket, *, max_wait: float = math.inf) -> _RedisSlot:
        """Wait for room in ``bucket`` across every process, and take a slot.

        Raises:
            BucketPaused: when the bucket is paused for longer than ``max_wait`` s.
            TransportError: with ``fallback="fail"``, when Redis is unavailable.
        """
        local = await self._local.enter(bucket, max_wait=max_wait)
        try:
            token = await self._acquire(bucket, max_wait)
        except BaseException:
            local.withdraw()
            raise
        return _RedisSlot(self, bucket, local, token)

    def slot(self, bucket: Bucket) -> _SlotContext:
        """``async with``: :meth:`enter`, then release when the block ends."""
        return _SlotContext(self, bucket)

    def set_budget(self, bucket: Bucket, budget: Budget) -> None:
        """Admit at most ``budget.remaining`` more until its reset, in this process.

        Other processes learn the budget from their own responses.
        """
        self._local.set_budget(bucket, budget)

    async def pause(self, bucket: Bucket, seconds: float) -> None:
        """Send nothing more on ``bucket`` for ``seconds``, in every process sharing the Redis.

        Recorded in this process in any case; if Redis is unavailable the
        other processes learn of the cooldown from their own 429s. Never raises.
        """
        if not seconds > 0:
            return
        await self._local.pause(bucket, seconds)
        if self._redis_down():
            return
        try:
            await self._call(
                self._pause(keys=[self._key(bucket, "pause")], args=[math.ceil(seconds * 1000)])
            )
        except _UNAVAILABLE as exc:
            self._mark_down(exc)

    async def aclose(self) -> None:
        """Finish pending releases, then close the client if :meth:`from_url` made it."""
        if self._tasks:
            _, pending = await asyncio.wait(set(self._tasks), timeout=2 * self._timeout)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending)
        if self._owns_client:
            await self._client.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # -- Redis ---------------------------------------------------------------

    def _key(self, bucket: Bucket, suffix: str | int) -> str:
        return f"{self._prefix}:{{{bucket.key}}}:{suffix}"

    def _limit_keys(self, bucket: Bucket) -> list[str]:
        return [self._key(bucket, index) for index in range(len(bucket.limits))]

    async def _call(self, awaitable: Any) -> Any:
        # The client's socket timeouts may be generous (a borrowed client); this is the bound.
        async with asyncio.timeout(self._timeout):
            return await awaitable

    def _redis_down(self) -> bool:
        return self._down_until is not None and time.monotonic() < self._down_until

    def _mark_down(self, exc: BaseException) -> None:
        first = self._down_until is None
        self._down_until = time.monotonic() + self._retry_interval
        if first:
            # Idle pooled connections are likely dead too; drop them so that
            # recovery starts on fresh ones.
            self._spawn(self._drop_idle_connections())
            consequence = (
                "each process enforces the rate limits on its own"
                if self._fallback == "local"
                else "rate-limited requests fail"
            )
            logger.warning(
                "Redis rate-limit store %s unavailable (%s): %s; retrying Redis every %g s",
                self._label,
                _describe_error(exc),
                consequence,
                self._retry_interval,
            )
        else:
            logger.debug("Redis %s still unavailable (%s)", self._label, _describe_error(exc))

    async def _drop_idle_connections(self) -> None:
        try:
            await self._client.connection_pool.disconnect(inuse_connections=False)
        except _UNAVAILABLE as exc:
            logger.debug("dropping idle Redis connections failed (%s)", _describe_error(exc))

    def _mark_up(self) -> None:
        if self._down_until is not None:
            self._down_until = None
            logger.info("Redis rate-limit store %s reachable again; limits shared", self._label)

    def _unavailable(self, bucket: Bucket) -> None:
        if self._fallback == "local":
            return
        vendor, _, rest = bucket.key.partition(":")
        raise errors.TransportError(
            f"the Redis rate-limit store {self._label} is unavailable",
            provider=vendor or None,
            operation=rest.rpartition(":")[2] or None,
        )

    async def _acquire(self, bucket: Bucket, max_wait: float = math.inf) -> str | None:
        """Take a slot in Redis; None when Redis is down and the local log alone admits."""
        if self._redis_down():
            self._unavailable(bucket)
            return None
        poller = self._pollers.get(bucket)
        if poller is None:
            poller = self._pollers[bucket] = asyncio.Lock()
        token = f"{self._instance}:{next(self._tokens)}"
        args: list[float | str] = [token, self._lease_ms]
        for limit in bucket.limits:
            args += [limit.max_requests, limit.period_seconds * 1000]
        keys = [*self._limit_keys(bucket), self._key(bucket, "pause")]
        async with poller:
            while True:
                if self._redis_down():  # found down while this coroutine queued
                    self._unavailable(bucket)
                    return None
                try:
                    wait_ms = int(await self._call(self._admit(keys=keys, args=args)))
                except _UNAVAILABLE as exc:
                    self._forget(bucket, token)  # the script may have run before the timeout
                    self._mark_down(exc)
                    self._unavailable(bucket)
                    return None
                except asyncio.CancelledError:
                    self._forget(bucket, token)
                    raise
                self._mark_up()
                if wait_ms == 0:
                    return token
                if wait_ms < 0 and -wait_ms / 1000 > max_wait:
                    raise BucketPaused(-wait_ms / 1000)
                await asyncio.sleep(min(abs(wait_ms) / 1000, _MAX_SLEEP))

    def _spawn(self, coro: Any) -> asyncio.Task[None]:
        task: asyncio.Task[None] = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _forget(self, bucket: Bucket, token: str) -> None:
        # An admission interrupted mid-call may have taken a slot on the server; the
        # token was never used to send anything, so it is simply withdrawn.
        self._spawn(self._withdraw(bucket, token))

    async def _withdraw(self, bucket: Bucket, token: str) -> None:
        # Tried even during an outage (in the background, bounded): a slow Redis
        # may have run the script, and the slot would otherwise wait out its lease.
        try:
            async with asyncio.timeout(self._timeout):
                for key in self._limit_keys(bucket):
                    await self._client.zrem(key, token)
        except _UNAVAILABLE as exc:
            logger.debug("could not withdraw an unused slot (%s)", _describe_error(exc))

    def _release_slot(self, bucket: Bucket, token: str) -> asyncio.Future[None]:
        # A tracked task (aclose waits for it), shielded: a cancellation of the
        # caller must not leave the slot counted for a whole lease.
        return asyncio.shield(self._spawn(self._stamp(bucket, token)))

    async def _stamp(self, bucket: Bucket, token: str) -> None:
        if self._redis_down():
            return  # the lease expires it
        periods = [limit.period_seconds * 1000 for limit in bucket.limits]
        try:
            await self._call(self._release(keys=self._limit_keys(bucket), args=[token, *periods]))
        except _UNAVAILABLE as exc:
            self._mark_down(exc)


class _RedisSlot:
    """The in-process slot and the shared one; released together."""

    __slots__ = ("_bucket", "_limiter", "_local", "_token")

    def __init__(
        self, limiter: RedisLimiter, bucket: Bucket, local: _LocalBucket, token: str | None
    ) -> None:
        self._limiter = limiter
        self._bucket = bucket
        self._local = local
        self._token = token

    def release(self) -> Awaitable[None] | None:
        """Stamp the request finished, here and in Redis (awaitable; it runs regardless)."""
        self._local.release()
        token, self._token = self._token, None
        if token is not None:
            return self._limiter._release_slot(self._bucket, token)
        return None

    def withdraw(self) -> None:
        """Give the slot back unused, here and (in the background) in Redis."""
        self._local.withdraw()
        token, self._token = self._token, None
        if token is not None:
            self._limiter._forget(self._bucket, token)


class _SlotContext:
    """``async with limiter.slot(bucket)``: enter on entry, release on exit."""

    __slots__ = ("_bucket", "_limiter", "_slot")

    def __init__(self, limiter: RedisLimiter, bucket: Bucket) -> None:
        self._limiter = limiter
        self._bucket = bucket
        self._slot: _RedisSlot | None = None

    async def __aenter__(self) -> None:
        self._slot = await self._limiter.enter(self._bucket)

    async def __aexit__(self, *exc_info: object) -> None:
        # Released even when cancelled: the request may have reached the vendor.
        slot, self._slot = self._slot, None
        if slot is not None and (stamping := slot.release()) is not None:
            await stamping


def _describe_client(client: aioredis.Redis) -> str:
    # Built from the connection settings, never from the URL text: no password can leak.
    pool = client.connection_pool
    kwargs = pool.connection_kwargs
    auth = "***@" if kwargs.get("password") else ""
    if issubclass(pool.connection_class, UnixDomainSocketConnection):
        return f"unix://{auth}{kwargs.get('path', '')}?db={kwargs.get('db', 0)}"
    scheme = "rediss" if issubclass(pool.connection_class, SSLConnection) else "redis"
    host = kwargs.get("host", "localhost")
    shown = f"[{host}]" if ":" in str(host) else host
    return f"{scheme}://{auth}{shown}:{kwargs.get('port', 6379)}/{kwargs.get('db', 0)}"


def _describe_error(exc: BaseException) -> str:
    # redis-py's messages name host and port, never the password.
    if isinstance(exc, TimeoutError) and not isinstance(exc, RedisError):
        return "no answer in time"
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
