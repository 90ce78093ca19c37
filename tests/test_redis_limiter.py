"""RedisLimiter against a real redis-server and the sandbox: shared windows, cooldowns, outages."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import redis.asyncio as aioredis

import runnerhub
from benchmarks.redis_limits import hammer, run_case
from runnerhub import RateLimit, SodaProvider, errors, limits
from runnerhub.limits import Bucket, Limiter, RedisLimiter
from runnerhub.sandbox import Sandbox, SodaOrg
from tests._redis_server import RedisServer, redis_server_binary

LIMIT = 10
PERIOD = 0.5


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() not in ("", "0", "false", "no")


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    """A fresh redis-server of our own on a free loopback port."""
    binary = redis_server_binary()
    if binary is None:
        if _in_ci():
            pytest.fail("redis-server is not installed; CI must run the Redis tests (.ci/run)")
        pytest.skip("redis-server is not on PATH (apt-get install redis-server to run these)")
    with RedisServer(binary) as server:
        yield server


@pytest.fixture
async def admin(redis_server: RedisServer) -> AsyncIterator[aioredis.Redis]:
    """A plain client for inspecting the server."""
    client = aioredis.Redis.from_url(redis_server.url)
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
async def sandbox() -> AsyncIterator[Sandbox]:
    """A sandbox enforcing LIMIT get_runner calls per PERIOD per credential."""
    box = Sandbox(3, vendor_options={"soda": {"limits": {"get_runner": (LIMIT, PERIOD)}}})
    box.add_org("soda", "acme", runners=2)
    async with box.serve():
        yield box


def _org(sandbox: Sandbox) -> SodaOrg:
    org: SodaOrg = sandbox.service("soda").orgs["acme"]
    return org


def _runner_id(sandbox: Sandbox) -> str:
    return next(iter(_org(sandbox).runners))


def _provider(sandbox: Sandbox, limiter: Limiter, limit: RateLimit | None = None) -> SodaProvider:
    org = _org(sandbox)
    assert sandbox.base_url is not None
    return SodaProvider(
        org.api_key_id,
        org.api_key_secret,
        base_url=sandbox.base_url,
        limiter=limiter,
        rate_limits={"get_runner": limit or RateLimit(LIMIT, PERIOD)},
        max_retries=0,
    )


def _unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


BUCKET = Bucket("test:0123456789abcdef:op", (RateLimit(2, 1.0),))


# -- without a server ---------------------------------------------------------


def test_import_runnerhub_does_not_import_redis() -> None:
    """``import runnerhub`` (and ``runnerhub.limits``) leaves the optional redis package alone."""
    code = "import runnerhub, runnerhub.limits, sys; assert 'redis' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)  # noqa: S603


def test_redis_limiter_resolves_lazily_and_is_a_limiter() -> None:
    """``runnerhub.limits.RedisLimiter`` is the _redis class and satisfies the Limiter protocol."""
    from runnerhub import _redis

    assert limits.RedisLimiter is _redis.RedisLimiter
    assert "RedisLimiter" in limits.__all__
    assert isinstance(RedisLimiter.from_url("redis://127.0.0.1:1/0"), Limiter)
    with pytest.raises(AttributeError):
        _ = limits.NoSuchLimiter
    assert runnerhub.limits is limits


@pytest.mark.parametrize(
    "options",
    [{"fallback": "maybe"}, {"timeout": 0}, {"lease_seconds": -1}, {"retry_interval": 0}],
)
def test_bad_options_are_usage_errors(options: dict[str, Any]) -> None:
    """An unknown fallback or a non-positive duration is refused up front."""
    with pytest.raises(errors.UsageError):
        RedisLimiter.from_url("redis://127.0.0.1:1/0", **options)


async def test_password_never_shown_in_repr_logs_or_errors(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A password in the URL stays out of repr, the outage warning and the TransportError."""
    url = f"redis://admin:hunter2-secret@127.0.0.1:{_unused_port()}/0"
    caplog.set_level(logging.DEBUG, logger="runnerhub")
    async with (
        RedisLimiter.from_url(url, fallback="fail") as failing,
        RedisLimiter.from_url(url) as local,
    ):
        assert "hunter2" not in repr(failing)
        assert "***@127.0.0.1" in repr(failing)
        with pytest.raises(errors.TransportError) as raised:
            async with failing.slot(BUCKET):
                pass
        async with local.slot(BUCKET):
            pass
        await local.pause(BUCKET, 0.01)
    assert "hunter2" not in str(raised.value)
    assert "hunter2" not in caplog.text
    assert any(r.levelno == logging.WARNING for r in caplog.records)


# -- with a real redis-server -------------------------------------------------


@pytest.mark.redis
async def test_two_limiters_share_one_window(redis_server: RedisServer, sandbox: Sandbox) -> None:
    """Two limiters (as two processes) on one Redis stay within one window: no 429s."""
    async with (
        RedisLimiter.from_url(redis_server.url) as first,
        RedisLimiter.from_url(redis_server.url) as second,
        _provider(sandbox, first) as a,
        _provider(sandbox, second) as b,
    ):
        counts = await asyncio.gather(
            hammer(a, _runner_id(sandbox), 1.2, 6), hammer(b, _runner_id(sandbox), 1.2, 6)
        )
    assert sandbox.count(status=429) == 0
    assert sandbox.max_in_window("soda", "get_runner", PERIOD) <= LIMIT
    assert sum(c.ok for c in counts) >= LIMIT * 2  # at least two full windows together
    assert all(c.errors == 0 and c.rate_limited == 0 for c in counts)


@pytest.mark.redis
async def test_keys_hash_the_credential_and_expire(
    redis_server: RedisServer, sandbox: Sandbox, admin: aioredis.Redis
) -> None:
    """Keys are runnerhub:{soda:<hash>:get_runner}:0, carry a TTL and hold no credential."""
    org = _org(sandbox)
    async with (
        RedisLimiter.from_url(redis_server.url, lease_seconds=5) as limiter,
        _provider(sandbox, limiter) as soda,
    ):
        await soda.get_runner(_runner_id(sandbox))
    keys = [key.decode() async for key in admin.scan_iter("*")]
    assert len(keys) == 1
    (key,) = keys
    assert key.startswith("runnerhub:{soda:")
    assert key.endswith(":get_runner}:0")
    assert org.api_key_id not in key
    assert org.api_key_secret not in key
    assert 0 < await admin.pttl(key) <= (5 + PERIOD) * 1000


@pytest.mark.redis
async def test_a_long_pause_elsewhere_fails_fast_and_the_fast_path_defers(
    redis_server: RedisServer,
) -> None:
    """Another process's hour-long pause makes enter(max_wait=) raise at once; try_enter is None."""
    async with (
        RedisLimiter.from_url(redis_server.url) as first,
        RedisLimiter.from_url(redis_server.url) as second,
    ):
        assert second.try_enter(BUCKET) is None  # admission always takes a round trip
        await first.pause(BUCKET, 3600)
        async with asyncio.timeout(2):
            with pytest.raises(limits.BucketPaused) as info:
                await second.enter(BUCKET, max_wait=5)
        assert 3500 < info.value.seconds <= 3600
        assert second._local.in_flight(BUCKET) == 0  # the local slot was given back


@pytest.mark.redis
async def test_pause_holds_every_limiter(redis_server: RedisServer, admin: aioredis.Redis) -> None:
    """A pause recorded by one limiter delays another limiter's next slot (shared cooldown)."""
    async with (
        RedisLimiter.from_url(redis_server.url) as first,
        RedisLimiter.from_url(redis_server.url) as second,
    ):
        await first.pause(BUCKET, 0.4)
        assert await admin.pttl("runnerhub:{" + BUCKET.key + "}:pause") > 0
        started = time.monotonic()
        async with second.slot(BUCKET):
            waited = time.monotonic() - started
    assert 0.3 <= waited < 1.5


@pytest.mark.redis
async def test_a_429_seen_by_one_process_pauses_the_other(
    redis_server: RedisServer, admin: aioredis.Redis
) -> None:
    """After one provider's 429 with Retry-After, the other provider waits out the cooldown."""
    box = Sandbox(5, vendor_options={"soda": {"limits": {"get_runner": (2, 1.0)}}})
    box.add_org("soda", "acme", runners=1)
    generous = RateLimit(100, 1.0)  # looser than the vendor, so the vendor answers 429
    async with (
        box.serve(),
        RedisLimiter.from_url(redis_server.url) as first,
        RedisLimiter.from_url(redis_server.url) as second,
        _provider(box, first, generous) as a,
        _provider(box, second, generous) as b,
    ):
        runner_id = _runner_id(box)
        await a.get_runner(runner_id)
        await a.get_runner(runner_id)
        with pytest.raises(errors.RateLimitError):
            await a.get_runner(runner_id)
        assert await admin.exists("runnerhub:{" + a._http.bucket_prefix + "get_runner}:pause")
        started = time.monotonic()
        await b.get_runner(runner_id)
        waited = time.monotonic() - started
    assert box.count(status=429) == 1
    assert waited >= 0.5


@pytest.mark.redis
async def test_cancelled_requests_release_their_slots(
    redis_server: RedisServer, admin: aioredis.Redis
) -> None:
    """A request cancelled in flight is stamped released; one cancelled while waiting takes none."""
    key = "runnerhub:{" + BUCKET.key + "}:0"
    entered = asyncio.Event()

    async def in_flight(limiter: RedisLimiter) -> None:
        async with limiter.slot(BUCKET):
            entered.set()
            await asyncio.sleep(30)

    async def waiting(limiter: RedisLimiter) -> None:
        async with limiter.slot(BUCKET):
            pass  # pragma: no cover - never admitted

    async with (
        RedisLimiter.from_url(redis_server.url, lease_seconds=60) as limiter,
        limiter.slot(BUCKET),
    ):
        task = asyncio.create_task(in_flight(limiter))
        await entered.wait()
        waiter = asyncio.create_task(waiting(limiter))
        await asyncio.sleep(0.1)
        assert await admin.zcard(key) == 2
        for pending in (waiter, task):
            pending.cancel()
            with pytest.raises(asyncio.CancelledError):
                await pending
    server_time: tuple[int, int] = await admin.time()
    now_ms = server_time[0] * 1000 + server_time[1] / 1000
    members: Any = await admin.zrange(key, 0, -1, withscores=True)
    scores = [score for _, score in members]
    assert len(scores) == 2  # the waiter's token was never added, or withdrawn
    assert all(score <= now_ms + 1000 for score in scores)  # released: ends + 1 s, not + lease


@pytest.mark.redis
async def test_limiter_ownership(redis_server: RedisServer, sandbox: Sandbox) -> None:
    """Providers never close a limiter; from_url's client closes with it; a borrowed one stays."""
    admin = aioredis.Redis.from_url(redis_server.url)
    borrowed = aioredis.Redis.from_url(redis_server.url)
    try:
        limiter = RedisLimiter.from_url(redis_server.url)
        async with limiter:
            async with _provider(sandbox, limiter) as soda:
                await soda.get_runner(_runner_id(sandbox))
            async with _provider(sandbox, limiter) as again:
                await again.get_runner(_runner_id(sandbox))  # still usable after a provider closed
            assert len(await admin.client_list()) == 2
        assert len(await admin.client_list()) == 1  # only the admin connection is left
        async with RedisLimiter(borrowed) as on_loan, on_loan.slot(BUCKET):
            pass
        assert await borrowed.ping()
    finally:
        await borrowed.aclose()
        await admin.aclose()


@pytest.mark.redis
async def test_redis_killed_mid_run_falls_back_to_local_limits(
    redis_server: RedisServer, sandbox: Sandbox, caplog: pytest.LogCaptureFixture
) -> None:
    """Killing Redis mid-run: one WARNING, requests continue within the limit, Redis resumes."""
    caplog.set_level(logging.INFO, logger="runnerhub")
    runner_id = _runner_id(sandbox)
    async with (
        RedisLimiter.from_url(redis_server.url, timeout=0.3, retry_interval=0.3) as limiter,
        _provider(sandbox, limiter) as soda,
    ):

        async def kill_later() -> float:
            await asyncio.sleep(0.7)
            redis_server.kill()
            return time.monotonic()

        started = time.monotonic()
        counts, killed_at = await asyncio.gather(hammer(soda, runner_id, 2.0, 4), kill_later())
        assert time.monotonic() - started < 4.0  # nothing hung on the dead server
        redis_server.restart()
        await hammer(soda, runner_id, 0.8, 4)
        admin = aioredis.Redis.from_url(redis_server.url)
        try:
            shared_again = [key async for key in admin.scan_iter("runnerhub:*")]
        finally:
            await admin.aclose()
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "unavailable" in warnings[0].getMessage()
    assert any("reachable again" in r.getMessage() for r in caplog.records)
    assert shared_again
    assert counts.errors == 0
    assert counts.rate_limited == 0
    assert sandbox.count(status=429) == 0
    assert sandbox.max_in_window("soda", "get_runner", PERIOD) <= LIMIT
    after_kill = [r for r in sandbox.requests if r.status == 200 and r.t > killed_at + 0.3]
    assert len(after_kill) >= LIMIT  # the job went on under local limits


@pytest.mark.redis
async def test_fail_mode_raises_a_typed_error_without_hanging(
    redis_server: RedisServer, sandbox: Sandbox
) -> None:
    """With fallback="fail", a dead Redis gives TransportError within the call timeout."""
    async with (
        RedisLimiter.from_url(redis_server.url, fallback="fail", timeout=0.3) as limiter,
        _provider(sandbox, limiter) as soda,
    ):
        await soda.get_runner(_runner_id(sandbox))
        redis_server.kill()
        for _ in range(2):  # the first finds the outage, the second fails without trying
            started = time.monotonic()
            with pytest.raises(errors.TransportError, match="rate-limit store"):
                await soda.get_runner(_runner_id(sandbox))
            assert time.monotonic() - started < 1.0


@pytest.mark.redis
async def test_slow_redis_falls_back_within_the_timeout(
    redis_server: RedisServer,
    sandbox: Sandbox,
    admin: aioredis.Redis,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A Redis that stops answering (CLIENT PAUSE) costs one timeout, then local limits apply."""
    async with (
        RedisLimiter.from_url(redis_server.url, timeout=0.2) as limiter,
        _provider(sandbox, limiter) as soda,
    ):
        await soda.get_runner(_runner_id(sandbox))
        await admin.client_pause(1500)
        started = time.monotonic()
        for _ in range(3):
            await soda.get_runner(_runner_id(sandbox))
        elapsed = time.monotonic() - started
    assert elapsed < 1.0
    assert [r.levelno for r in caplog.records].count(logging.WARNING) == 1


@pytest.mark.redis
@pytest.mark.slow
async def test_four_processes_share_the_vendor_window(redis_server: RedisServer) -> None:
    """Four worker processes on one credential: zero 429s and >= 85% of the allowed throughput."""
    result = await run_case(4, redis_server.url, limit=20, period=1.0, duration=4.0, concurrency=8)
    assert result.status_429 == 0
    assert result.max_in_window <= 20
    assert result.utilisation >= 0.85, result
    assert all(w.errors == 0 and w.rate_limited == 0 for w in result.workers)
