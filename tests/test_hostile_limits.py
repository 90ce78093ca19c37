"""The core's limits and retry rules held against hostile vendors on 127.0.0.1.

Each server here is written to break a promise the sandbox keeps by
construction: it freezes its event loop, redirects elsewhere, announces
budgets, or asks for long pauses. The client under test is the bare
:class:`~runnerhub._http.HTTPCore` with a vendor declared in the test.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from runnerhub import RateLimit, RetryPolicy, errors
from runnerhub._http import ClientOptions, HTTPCore, Route, VendorSpec
from runnerhub.hooks import Hooks
from runnerhub.limits import Budget, LocalLimiter

GET = Route("get_runner", "GET", "/runners/{id}")
LIST = Route("list_runners", "GET", "/runners")
CREATE = Route("create_runner", "POST", "/runners")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _ok(request: web.Request) -> web.Response:
    return web.json_response({"id": request.match_info.get("id", "")})


def max_in_window(times: list[float], period: float) -> int:
    """The most arrivals in any half-open window of ``period`` seconds."""
    times = sorted(times)
    best = start = 0
    for end, t in enumerate(times):
        while times[start] <= t - period:
            start += 1
        best = max(best, end - start + 1)
    return best


class ThreadServer:
    """An aiohttp app on its own event loop in a thread, so that it can freeze that loop."""

    def __init__(self, handler: Handler) -> None:
        self.arrivals: list[float] = []
        self._handler = handler
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def _record(self, request: web.Request) -> web.StreamResponse:
        self.arrivals.append(time.monotonic())
        return await self._handler(request)

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._record)
        self._runner = web.AppRunner(app, handler_cancellation=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._start())
        self._ready.set()
        self._loop.run_forever()

    @contextmanager
    def serving(self) -> Iterator[ThreadServer]:
        thread = threading.Thread(target=self._run, daemon=True)
        thread.start()
        self._ready.wait(10)
        try:
            yield self
        finally:
            assert self._runner is not None
            future = asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop)
            future.result(10)
            self._loop.call_soon_threadsafe(self._loop.stop)
            thread.join(10)
            self._loop.close()


@asynccontextmanager
async def serve(handler: Handler) -> AsyncIterator[tuple[str, list[web.Request]]]:
    """A server on the test's own loop; yields its URL and the requests it saw."""
    seen: list[web.Request] = []

    async def record(request: web.Request) -> web.StreamResponse:
        seen.append(request)
        return await handler(request)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", record)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}", seen
    finally:
        await runner.cleanup()


def core(
    base_url: str,
    limits: Mapping[str, tuple[RateLimit, ...]] | None = None,
    *,
    credential: str = "key-1",
    read_budget: Callable[[Mapping[str, str]], Budget | None] | None = None,
    **options: Any,
) -> HTTPCore:
    """An HTTPCore for a vendor named "hostile" with the given limits."""
    vendor = VendorSpec("hostile", limits or {}, read_budget=read_budget)
    opts: ClientOptions = {"base_url": base_url, "limiter": LocalLimiter(), **options}  # type: ignore[typeddict-item]
    return HTTPCore(
        vendor,
        auth_headers={"Authorization": f"Bearer {credential}"},
        credential_id=credential,
        default_base_url=base_url,
        default_account="acct",
        options=opts,
    )


# -- 1. a frozen vendor ----------------------------------------------------------


async def test_frozen_vendor_sees_at_most_n_plus_one_in_any_window() -> None:
    """A vendor that freezes 1.6 s with 20/1 s, timeout 0.3 s and 60 calls gets <= 21 per window.

    Requests sent before the freeze queue in the kernel and are handled at the
    thaw; retries of the timed-out ones must not join them in the same window,
    and no call makes more than one extra request per slot.
    """
    frozen = threading.Event()

    async def handler(request: web.Request) -> web.StreamResponse:
        if not frozen.is_set():
            frozen.set()
            time.sleep(1.6)  # blocks the server's event loop; the kernel queues the rest
        return _ok(request)

    calls, n = 60, 20
    with ThreadServer(handler).serving() as server:
        http = core(
            server.url,
            {"get_runner": (RateLimit(n, 1.0),)},
            timeout=0.3,
            retry=RetryPolicy(base_delay=0.05, max_delay=0.2, max_total=30),
        )
        try:
            results = await asyncio.gather(
                *(http.request(GET, {"id": str(i)}) for i in range(calls)),
                return_exceptions=True,
            )
        finally:
            await http.aclose()
    failures = [r for r in results if isinstance(r, BaseException)]
    worst = max_in_window(server.arrivals, 1.0)
    total = len(server.arrivals)
    print(f"frozen vendor: {worst} max in a 1.0 s window, {total} requests for {calls} calls")
    assert worst <= n + 1
    assert total <= calls + n
    assert not failures
