"""Cancellation at any await point leaves nothing behind, and the provider stays usable.

The servers run in their own thread and event loop, so every task left in the
test's loop would be the client's. After each cancellation the tests check
(``_assert_quiet``):

- no task other than the test's own is pending;
- every limiter bucket the provider uses has no slot in flight and no waiter;
- the provider's own connector has no acquired connection (idle keep-alive
  connections in the pool are fine);
- the CancelledError reached the caller (nothing swallowed it);
- a later call on the same provider succeeds.

Warnings are errors (pyproject), and ``gc.collect()`` runs so that an
unclosed-resource warning would surface inside the test that caused it.
"""

from __future__ import annotations

import asyncio
import gc
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from runnerhub import (
    KubiyaProvider,
    RateLimit,
    RetryPolicy,
    Runner,
    RunnerHub,
    SodaProvider,
    errors,
)
from runnerhub.limits import shared_local_limiter
from runnerhub.sandbox import Fault, FaultKind, Sandbox

TIME_SCALE = 600.0
SODA_RUNNERS = 60
KUBIYA_RUNNERS = 10
OPERATIONS = ("list_runners", "get_runner", "runner_health", "*")
POLICY = RetryPolicy(base_delay=0.01, max_delay=0.05, max_total=10)

# Where to cancel: after N bare event-loop turns, then after growing delays.
TURNS = tuple(range(8))
DELAYS = (0.001, 0.002, 0.004, 0.007, 0.01, 0.015, 0.02, 0.03, 0.045, 0.06, 0.08, 0.1, 0.15)

Provider = SodaProvider | KubiyaProvider


class ThreadedApp:
    """Serve an aiohttp app built by ``factory`` from a thread with its own event loop."""

    def __init__(self, factory: Callable[[], web.Application]) -> None:
        self._factory = factory
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._main, daemon=True)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self.base_url = ""

    def _main(self) -> None:
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        # handler_cancellation: a handler stops when its client goes away.
        runner = web.AppRunner(
            self._factory(), access_log=None, handler_cancellation=True, shutdown_timeout=0.5
        )
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        host, port = runner.addresses[0][:2]
        self.base_url = f"http://{host}:{port}"
        self._ready.set()
        try:
            await self._stop.wait()
        finally:
            await runner.cleanup()

    def __enter__(self) -> str:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the threaded server did not start")
        return self.base_url

    def __exit__(self, *exc_info: object) -> None:
        assert self._loop is not None
        assert self._stop is not None
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)


@contextmanager
def _served(sandbox: Sandbox) -> Iterator[str]:
    with ThreadedApp(sandbox.make_app) as base_url:
        yield base_url


def _sandbox(**options: Any) -> Sandbox:
    sandbox = Sandbox(seed=17, time_scale=TIME_SCALE, **options)
    sandbox.add_org("soda", "soda-eu", runners=SODA_RUNNERS)
    sandbox.add_org("soda", "soda-us", runners=SODA_RUNNERS // 2)
    sandbox.add_org("kubiya", "kubiya-prod", runners=KUBIYA_RUNNERS, unhealthy=2)
    return sandbox


SODA_LIMITS = {"list_runners": RateLimit(60, 60 / TIME_SCALE)}
KUBIYA_LIMITS = {"*": (RateLimit(100, 60 / TIME_SCALE), RateLimit(20, 10 / TIME_SCALE))}


class PagedSoda(SodaProvider):
    """Soda with pages of ten, so that a listing has many await points."""

    def list_runners(self, **options: Any) -> AsyncIterator[Runner]:
        """Soda's listing, ten runners per request unless told otherwise."""
        options.setdefault("page_size", 10)
        return super().list_runners(**options)


def _soda(sandbox: Sandbox, base_url: str, name: str = "soda-eu", **options: Any) -> PagedSoda:
    org = sandbox.service("soda").orgs[name]
    options.setdefault("rate_limits", SODA_LIMITS)
    options.setdefault("retry", POLICY)
    return PagedSoda(org.api_key_id, org.api_key_secret, base_url=base_url, account=name, **options)


def _kubiya(sandbox: Sandbox, base_url: str, **options: Any) -> KubiyaProvider:
    org = sandbox.service("kubiya").orgs["kubiya-prod"]
    options.setdefault("rate_limits", KUBIYA_LIMITS)
    options.setdefault("retry", POLICY)
    return KubiyaProvider(org.api_key, base_url=base_url, account="kubiya-prod", **options)


async def _assert_quiet(*providers: Provider) -> None:
    """Nothing pending, no limiter slot held or awaited, no connection checked out."""
    for _ in range(3):
        await asyncio.sleep(0)
    current = asyncio.current_task()
    pending = [t for t in asyncio.all_tasks() if t is not current and not t.done()]
    assert not pending, pending
    limiter = shared_local_limiter()
    for provider in providers:
        http = provider._http
        for operation in OPERATIONS:
            bucket = http.bucket(operation)
            if bucket is None:
                continue
            assert limiter.in_flight(bucket) == 0, (provider.account, operation)
            local = limiter._buckets.get(bucket)
            assert local is None or not local._lock.locked()
        assert provider.stats.waiting == 0
        session = http._session
        if session is not None:
            connector = session.connector
            assert connector is not None
            assert not connector._acquired, f"{provider.account}: connection still checked out"
    gc.collect()


async def _cancel_at(
    start: Callable[[], Awaitable[Any]], turns: int | None, delay: float | None
) -> bool:
    """Start ``start()``, cancel it after ``turns`` loop turns or ``delay`` seconds.

    Returns True when it was cancelled, False when it finished first.
    """
    task = asyncio.ensure_future(start())
    if turns is not None:
        for _ in range(turns):
            await asyncio.sleep(0)
    else:
        assert delay is not None
        await asyncio.sleep(delay)
    if task.done():
        task.result()  # a failure before the cancel point is a failure of the test
        return False
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert task.cancelled()
    return True


def _points() -> Iterator[tuple[int | None, float | None]]:
    for turns in TURNS:
        yield turns, None
    for delay in DELAYS:
        yield None, delay


async def test_cancelling_an_inventory_at_any_point_leaves_nothing_behind() -> None:
    """An inventory (with health calls) cancelled anywhere leaves no task, slot or connection."""
    sandbox = _sandbox()
    sandbox.faults.random(rate=0.5, seed=3, kinds=[FaultKind.LATENCY], delay=0.005)
    with _served(sandbox) as base_url:
        providers: list[Provider] = [
            _soda(sandbox, base_url, "soda-eu"),
            _soda(sandbox, base_url, "soda-us"),
            _kubiya(sandbox, base_url),
        ]
        async with RunnerHub(providers, health_concurrency=2) as hub:
            cancelled = 0
            for turns, delay in _points():
                if await _cancel_at(lambda: hub.inventory(health=True), turns, delay):
                    cancelled += 1
                await _assert_quiet(*providers)
            inventory = await hub.inventory(health=True)
            await _assert_quiet(*providers)
    assert cancelled >= len(TURNS) + 5
    assert inventory.complete
    assert len(inventory.runners) == SODA_RUNNERS + SODA_RUNNERS // 2 + KUBIYA_RUNNERS


async def test_cancelling_a_paginated_listing_at_any_point_leaves_nothing_behind() -> None:
    """A listing of pages of ten, cancelled anywhere, leaves nothing and lists in full after."""
    sandbox = _sandbox()
    sandbox.faults.add(Fault(FaultKind.LATENCY, delay=0.01, probability=0.5))
    with _served(sandbox) as base_url:
        async with _soda(sandbox, base_url) as provider:

            async def listing() -> list[Runner]:
                return [runner async for runner in provider.list_runners()]

            cancelled = 0
            for turns, delay in _points():
                cancelled += await _cancel_at(listing, turns, delay)
                await _assert_quiet(provider)
            runners = await listing()
            await _assert_quiet(provider)
    assert cancelled >= len(TURNS) + 5
    assert sorted(r.id for r in runners) == sorted(sandbox.service("soda").orgs["soda-eu"].runners)


async def test_leaving_a_listing_between_pages_leaves_nothing_behind() -> None:
    """Breaking out of a listing after any runner and closing it releases everything."""
    sandbox = _sandbox()
    with _served(sandbox) as base_url:
        async with _soda(sandbox, base_url) as provider:
            for stop_after in (1, 9, 10, 11, 25, 59):
                iterator = provider.list_runners()
                taken = [await anext(iterator) for _ in range(stop_after)]
                await iterator.aclose()  # type: ignore[attr-defined]
                assert len(taken) == stop_after
                await _assert_quiet(provider)
            requests = sandbox.count(operation="list_runners")
    # Lazy: only the pages needed were requested (1 + 1 + 1 + 2 + 3 + 6).
    assert requests == 14


async def test_cancelling_a_retry_back_off_stops_the_retry() -> None:
    """Cancelled while backing off after a 503, no retry is ever sent; the next call succeeds."""
    sandbox = _sandbox()
    sandbox.faults.add(Fault(FaultKind.STATUS, status=503, retry_after="0.5", times=1))
    runner_id = next(iter(sandbox.service("soda").orgs["soda-eu"].runners))
    with _served(sandbox) as base_url:
        async with _soda(sandbox, base_url) as provider:
            assert await _cancel_at(lambda: provider.get_runner(runner_id), None, 0.2)
            await _assert_quiet(provider)
            await asyncio.sleep(0.6)  # past the back-off: a leaked retry would have fired
            assert len(sandbox.requests) == 1
            assert provider.stats.retries == 1  # the back-off had started
            runner = await provider.get_runner(runner_id)
            await _assert_quiet(provider)
    assert runner.id == runner_id
    assert len(sandbox.requests) == 2


async def test_cancelling_during_a_429_pause_releases_the_slot() -> None:
    """Cancelled while the bucket is paused by a 429, the waiter leaves; the pause stays.

    The next call waits out the rest of the pause: by the sandbox's own arrival
    times it reaches the vendor no sooner than Retry-After after the 429's
    request did, whatever the machine's load.
    """
    sandbox = _sandbox()
    sandbox.faults.add(Fault(FaultKind.STATUS, status=429, retry_after="1", times=1))
    runner_id = next(iter(sandbox.service("soda").orgs["soda-eu"].runners))
    with _served(sandbox) as base_url:
        async with _soda(sandbox, base_url) as provider:
            task = asyncio.ensure_future(provider.get_runner(runner_id))
            bucket = provider._http.bucket("get_runner")
            assert bucket is not None
            log = shared_local_limiter()._bucket(bucket)._log
            # Cancel only once the 429 has paused the bucket: the call is waiting it out.
            while not log.closed_for(time.monotonic()) > 0:
                assert not task.done()
                await asyncio.sleep(0.005)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            await _assert_quiet(provider)
            runner = await provider.get_runner(runner_id)  # waits out the rest of the pause
            await _assert_quiet(provider)
    assert runner.id == runner_id
    throttled, served = sandbox.requests
    assert (throttled.status, served.status) == (429, 200)
    assert served.t - throttled.t >= 1.0


async def test_cancelling_while_waiting_for_a_limiter_slot() -> None:
    """A call queued behind a full window leaves the queue when cancelled; the window is intact."""
    sandbox = _sandbox()
    runner_id = next(iter(sandbox.service("soda").orgs["soda-eu"].runners))
    with _served(sandbox) as base_url:
        limits = {"get_runner": RateLimit(2, 0.5)}
        async with _soda(sandbox, base_url, rate_limits=limits) as provider:
            await provider.get_runner(runner_id)
            await provider.get_runner(runner_id)
            task = asyncio.ensure_future(provider.get_runner(runner_id))
            await asyncio.sleep(0.05)
            assert provider.stats.waiting == 1
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            await _assert_quiet(provider)
            runner = await provider.get_runner(runner_id)
    assert runner.id == runner_id
    assert len(sandbox.requests) == 3


def _slow_body_app() -> web.Application:
    async def handler(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        response.content_length = 100_000
        await response.prepare(request)
        await response.write(b'{"runner": {"id": "r-1", "pad": "')
        await asyncio.sleep(30)  # cancelled when the client goes away
        return response

    async def healthy(request: web.Request) -> web.Response:
        return web.json_response({"runner": {"id": "r-2"}})

    app = web.Application()
    app.router.add_get("/api/v1/runners/r-1", handler)
    app.router.add_get("/api/v1/runners/r-2", healthy)
    return app


async def test_cancelling_mid_body_closes_the_connection() -> None:
    """Cancelled while the body is arriving, the connection is closed, not pooled half-read."""
    with ThreadedApp(_slow_body_app) as base_url:
        async with SodaProvider("key", "secret", base_url=base_url) as provider:
            assert await _cancel_at(lambda: provider.get_runner("r-1"), None, 0.2)
            await _assert_quiet(provider)
            session = provider._http._session
            assert session is not None
            assert session.connector is not None
            assert not session.connector._conns  # nothing half-read went back to the pool
            runner = await provider.get_runner("r-2")
            await _assert_quiet(provider)
    assert runner.id == "r-2"


async def test_cancelling_an_injected_session_request_leaves_the_session_usable() -> None:
    """With a borrowed session, a cancelled call leaves the session open and working."""
    sandbox = _sandbox()
    sandbox.faults.add(Fault(FaultKind.LATENCY, delay=0.5, times=1))
    runner_id = next(iter(sandbox.service("soda").orgs["soda-eu"].runners))
    with _served(sandbox) as base_url:
        async with aiohttp.ClientSession() as session:
            async with _soda(sandbox, base_url, session=session) as provider:
                assert await _cancel_at(lambda: provider.get_runner(runner_id), None, 0.1)
                await _assert_quiet(provider)
            assert not session.closed
            async with _soda(sandbox, base_url, session=session) as again:
                runner = await again.get_runner(runner_id)
    assert runner.id == runner_id


async def test_leaving_a_stream_with_a_full_buffer_returns_promptly() -> None:
    """Breaking out of stream() while producers wait on a full buffer closes it at once."""
    sandbox = Sandbox(seed=5, time_scale=TIME_SCALE)
    names = ["soda-a", "soda-b", "soda-c"]
    for name in names:
        sandbox.add_org("soda", name, runners=1500)
    with _served(sandbox) as base_url:
        providers: list[Provider] = [
            SodaProvider(
                sandbox.service("soda").orgs[name].api_key_id,
                sandbox.service("soda").orgs[name].api_key_secret,
                base_url=base_url,
                account=name,
                rate_limits=SODA_LIMITS,
            )
            for name in names
        ]
        async with RunnerHub(providers) as hub:
            stream = hub.stream()
            async for _ in stream:
                break
            await asyncio.sleep(0.2)  # the producers fill the 1,000-runner buffer
            try:
                async with asyncio.timeout(1.0):
                    await stream.aclose()
            finally:
                await _assert_quiet(*providers)


async def test_a_cancelled_inventory_is_not_reported_as_an_account_error() -> None:
    """Cancellation propagates as CancelledError; it is never recorded as a failed account."""
    sandbox = _sandbox()
    sandbox.faults.add(Fault(FaultKind.STALL, delay=5.0, vendor="kubiya"))
    with _served(sandbox) as base_url:
        providers: list[Provider] = [
            _soda(sandbox, base_url),
            _kubiya(sandbox, base_url, timeout=10.0),
        ]
        progress: list[errors.RunnerHubError | None] = []
        async with RunnerHub(providers) as hub:
            task = asyncio.ensure_future(hub.inventory(progress=lambda p: progress.append(p.error)))
            await asyncio.sleep(0.3)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            await _assert_quiet(*providers)
    assert all(error is None for error in progress)
