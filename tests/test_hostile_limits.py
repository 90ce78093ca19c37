"""The core's limits and retry rules held against hostile vendors on 127.0.0.1.

Each server here is written to break a promise the sandbox keeps by
construction: it freezes its event loop, redirects elsewhere, announces
budgets, or asks for long pauses. The client under test is the bare
:class:`~runnerhub._http.HTTPCore` with a vendor declared in the test.
"""

from __future__ import annotations

import asyncio
import itertools
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
            time.sleep(1.6)  # noqa: ASYNC251 - freezing the server's event loop is the point
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
    measured = f"{worst} max in a 1.0 s window, {total} requests for {calls} calls"
    assert worst <= n + 1, measured
    assert total <= calls + n, measured
    assert not failures


# -- 2. one key, one bucket, however the base URL is spelled ----------------------


async def test_spellings_of_one_base_url_share_buckets() -> None:
    """Upper-case scheme and host, a default port and a trailing slash are one bucket."""

    async def handler(request: web.Request) -> web.StreamResponse:
        return _ok(request)

    async with serve(handler) as (url, seen):
        port = url.rsplit(":", 1)[1]
        limiter = LocalLimiter()
        limits = {"get_runner": (RateLimit(2, 60.0),)}
        spellings = [url, f"HTTP://127.0.0.1:{port}/", f"http://127.0.0.1:{port}//"]
        cores = [core(u, limits, limiter=limiter) for u in spellings]
        try:
            await cores[0].request(GET, {"id": "1"})
            await cores[1].request(GET, {"id": "2"})
            assert len({c.buckets(GET) for c in cores}) == 1
            # The shared window is full: the third spelling must wait too.
            assert limiter.try_enter(cores[2].buckets(GET)[0]) is None
        finally:
            for c in cores:
                await c.aclose()
    assert len(seen) == 2
    assert (
        core("https://HOST.example").bucket_prefix
        == core("https://host.example:443/").bucket_prefix
    )
    assert (
        core("https://host.example:8443").bucket_prefix
        != core("https://host.example").bucket_prefix
    )


# -- 3, 4. long pauses and Retry-After ----------------------------------------------


async def test_a_long_pause_fails_later_calls_at_once_and_warns_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """After a 429 with Retry-After: 3600, calls that cannot wait that long raise at once."""

    async def handler(request: web.Request) -> web.StreamResponse:
        return web.json_response({}, status=429, headers={"Retry-After": "3600"})

    policy = RetryPolicy(base_delay=0.01, max_delay=0.05, max_total=5)
    async with serve(handler) as (url, seen):
        http = core(url, {"get_runner": (RateLimit(100, 60.0),)}, retry=policy)
        try:
            with caplog.at_level(logging.WARNING, logger="runnerhub"):
                for _ in range(3):
                    async with asyncio.timeout(2):  # a regression would sleep the hour
                        with pytest.raises(errors.RateLimitError) as info:
                            await http.request(GET, {"id": "1"})
                    assert info.value.retry_after is not None
                    assert 3500 < info.value.retry_after <= 3600
        finally:
            await http.aclose()
    assert len(seen) == 1  # the later calls never reached the vendor
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "3600" in warnings[0].getMessage()


@pytest.mark.parametrize(
    ("status", "retry_after", "error"),
    [(503, "5", errors.ServerError), (429, "100000", errors.RateLimitError)],
)
async def test_retry_after_beyond_the_budget_raises_instead_of_retrying_early(
    status: int, retry_after: str, error: type[errors.APIError]
) -> None:
    """A stated wait past max_total (503 too; over a day too) raises at once with retry_after."""

    async def handler(request: web.Request) -> web.StreamResponse:
        return web.json_response({}, status=status, headers={"Retry-After": retry_after})

    policy = RetryPolicy(base_delay=0.01, max_delay=0.05, max_total=2)
    async with serve(handler) as (url, seen):
        http = core(url, retry=policy)
        try:
            async with asyncio.timeout(1.5):
                with pytest.raises(error) as info:
                    await http.request(GET, {"id": "1"})
        finally:
            await http.aclose()
    assert len(seen) == 1
    assert getattr(info.value, "retry_after", None) == float(retry_after)


async def test_a_short_retry_after_is_waited_out_before_the_retry() -> None:
    """A 503 with Retry-After: 0.3 is retried, and never sooner than the vendor said."""
    arrivals: list[float] = []

    async def handler(request: web.Request) -> web.StreamResponse:
        arrivals.append(time.monotonic())
        if len(arrivals) == 1:
            return web.json_response({}, status=503, headers={"Retry-After": "0.3"})
        return _ok(request)

    async with serve(handler) as (url, _):
        http = core(url, retry=RetryPolicy(base_delay=0.0, max_delay=0.0))
        try:
            await http.request(GET, {"id": "1"})
        finally:
            await http.aclose()
    assert len(arrivals) == 2
    assert arrivals[1] - arrivals[0] >= 0.3


# -- 9. a route limit narrows the key's budget -----------------------------------------


async def test_a_route_override_still_draws_from_the_key_wide_bucket() -> None:
    """Overriding get_runner's limit keeps the "*" budget: the 4th call of 3 allowed waits."""

    async def handler(request: web.Request) -> web.StreamResponse:
        return _ok(request)

    async with serve(handler) as (url, seen):
        http = core(
            url,
            {"*": (RateLimit(3, 60.0),)},
            rate_limits={"get_runner": RateLimit(100, 60.0)},
            deadline=0.3,
        )
        try:
            for i in range(3):
                await http.request(GET, {"id": str(i)})
            with pytest.raises(errors.TransportError, match="deadline"):
                await http.request(GET, {"id": "4"})
        finally:
            await http.aclose()
    assert len(seen) == 3
    assert [b.key.rsplit(":", 1)[1] for b in http.buckets(GET)] == ["get_runner", "*"]


# -- 10. waiting for a pooled connection is not a timeout ----------------------------------


async def test_waiting_for_a_pooled_connection_does_not_count_against_the_timeout() -> None:
    """40 calls over 2 connections, 0.2 s timeout, 50 ms answers: none times out."""

    async def handler(request: web.Request) -> web.StreamResponse:
        await asyncio.sleep(0.05)
        return _ok(request)

    async with serve(handler) as (url, seen):
        http = core(url, connector_limit=2, timeout=0.2, max_retries=0)
        try:
            results = await asyncio.gather(
                *(http.request(GET, {"id": str(i)}) for i in range(40)), return_exceptions=True
            )
        finally:
            await http.aclose()
    assert [r for r in results if isinstance(r, BaseException)] == []
    assert len(seen) == 40


async def test_a_timeout_says_what_timed_out() -> None:
    """A response that never comes is reported as such, not as a connection failure."""

    async def handler(request: web.Request) -> web.StreamResponse:
        await asyncio.sleep(1)
        return _ok(request)

    async with serve(handler) as (url, _):
        http = core(url, timeout=0.1, max_retries=0)
        try:
            with pytest.raises(errors.TransportError, match=r"no response within the 0\.1 s"):
                await http.request(GET, {"id": "1"})
        finally:
            await http.aclose()


# -- 13. limit_key chooses the bucket scope -----------------------------------------------


async def test_limit_key_shares_buckets_across_credentials() -> None:
    """Two credentials with one limit_key share a window; without it each has its own."""

    async def handler(request: web.Request) -> web.StreamResponse:
        return _ok(request)

    limits = {"get_runner": (RateLimit(1, 60.0),)}
    async with serve(handler) as (url, seen):
        limiter = LocalLimiter()
        first = core(url, limits, credential="key-1", limit_key="org:acme", limiter=limiter)
        second = core(url, limits, credential="key-2", limit_key="org:acme", limiter=limiter)
        alone = core(url, limits, credential="key-3", limiter=limiter)
        try:
            await first.request(GET, {"id": "1"})
            assert limiter.try_enter(second.buckets(GET)[0]) is None
            await alone.request(GET, {"id": "2"})
        finally:
            for http in (first, second, alone):
                await http.aclose()
    assert len(seen) == 2
    assert first.bucket_prefix == second.bucket_prefix != alone.bucket_prefix
    assert "org:acme" not in first.bucket_prefix
    with pytest.raises(errors.UsageError):
        core(url, limit_key="")


# -- brief 4. a lazily built, borrowed session ------------------------------------------


async def test_a_session_callable_is_called_lazily_and_never_closed() -> None:
    """session= may be a callable: called at the first request, its session left open."""

    async def handler(request: web.Request) -> web.StreamResponse:
        return web.json_response({"auth": request.headers.get("Authorization")})

    made: list[aiohttp.ClientSession] = []

    def factory() -> aiohttp.ClientSession:
        made.append(aiohttp.ClientSession())
        return made[-1]

    async with serve(handler) as (url, _):
        http = core(url, session=factory)
        assert made == []
        try:
            first = await http.request_json(GET, {"id": "1"})
            await http.request(GET, {"id": "2"})
        finally:
            await http.aclose()
        assert len(made) == 1
        assert not made[0].closed
        await made[0].close()
    assert first == {"auth": "Bearer key-1"}


# -- brief 6. announced budgets, redirects, pacing ------------------------------------------


async def test_an_announced_budget_is_never_exceeded() -> None:
    """After the vendor says 3 remain until a reset, 10 concurrent calls send only 3 before it.

    The rest wait for the reset (when the budget is no longer known).
    """
    window = 0.5
    reset = time.monotonic() + window
    arrivals: list[float] = []

    async def handler(request: web.Request) -> web.StreamResponse:
        arrivals.append(time.monotonic())
        left = max(0, 4 - len(arrivals))
        headers = {"Budget-Left": str(left), "Budget-Reset": f"{reset - arrivals[-1]:.3f}"}
        return web.json_response({}, headers=headers)

    def read_budget(headers: Mapping[str, str]) -> Budget | None:
        return Budget(int(headers["Budget-Left"]), float(headers["Budget-Reset"]))

    async with serve(handler) as (url, _):
        http = core(url, {"*": (RateLimit(1000, 60.0),)}, read_budget=read_budget)
        try:
            await http.request(GET, {"id": "0"})
            await asyncio.gather(*(http.request(GET, {"id": str(i)}) for i in range(10)))
        finally:
            await http.aclose()
    assert len(arrivals) == 11
    assert len([t for t in arrivals if t < reset]) == 4


async def test_same_origin_redirects_are_followed() -> None:
    """A 301 and a 307 to the same origin are followed, the credential kept."""

    async def handler(request: web.Request) -> web.StreamResponse:
        if request.path == "/runners/1":
            raise web.HTTPMovedPermanently("/moved/1")
        if request.path == "/moved/1":
            raise web.HTTPTemporaryRedirect("/final/1")
        return web.json_response({"auth": request.headers.get("Authorization")})

    async with serve(handler) as (url, seen):
        http = core(url)
        try:
            data = await http.request_json(GET, {"id": "1"})
        finally:
            await http.aclose()
    assert data == {"auth": "Bearer key-1"}
    assert [r.path for r in seen] == ["/runners/1", "/moved/1", "/final/1"]


async def test_a_redirect_to_another_host_is_refused_and_gets_no_credential() -> None:
    """A redirect to a second server (another port) raises; that server sees no request."""

    async def elsewhere(request: web.Request) -> web.StreamResponse:
        return web.json_response({})

    async with serve(elsewhere) as (other, other_seen):

        async def handler(request: web.Request) -> web.StreamResponse:
            raise web.HTTPFound(f"{other}/runners/1")

        async with serve(handler) as (url, seen):
            http = core(url, max_retries=2)
            try:
                with pytest.raises(errors.APIError, match="another origin") as info:
                    await http.request(GET, {"id": "1"})
            finally:
                await http.aclose()
    assert info.value.status == 302
    assert other not in str(info.value)
    assert len(seen) == 1
    assert [r.headers.get("Authorization") for r in other_seen] == []


async def test_redirect_loops_and_method_changes_are_not_followed() -> None:
    """More than three hops, or a 302 answering a POST, raise instead of following."""

    async def handler(request: web.Request) -> web.StreamResponse:
        raise web.HTTPFound(f"/loop/{len(seen)}")

    async with serve(handler) as (url, seen):
        http = core(url)
        try:
            with pytest.raises(errors.APIError, match="more than 3"):
                await http.request(GET, {"id": "1"})
            with pytest.raises(errors.APIError, match="POST into GET"):
                await http.request(CREATE, json_body={})
        finally:
            await http.aclose()
    assert len(seen) == 4 + 1


async def test_burst_pacing_spreads_requests_through_the_core() -> None:
    """RateLimit(burst=1) sends one request at a time, a period/N apart."""
    arrivals: list[float] = []

    async def handler(request: web.Request) -> web.StreamResponse:
        arrivals.append(time.monotonic())
        return _ok(request)

    async with serve(handler) as (url, _):
        http = core(url, {"create_runner": (RateLimit(10, 1.0, burst=1),)})
        try:
            await asyncio.gather(*(http.request(CREATE, json_body={}) for _ in range(4)))
        finally:
            await http.aclose()
    gaps = [b - a for a, b in itertools.pairwise(arrivals)]
    assert len(arrivals) == 4
    assert min(gaps) >= 0.09


async def test_a_deadline_says_what_the_call_was_waiting_for() -> None:
    """With one pooled connection busy, a deadline names the pool; a slow answer, the response."""

    async def handler(request: web.Request) -> web.StreamResponse:
        await asyncio.sleep(0.6)
        return _ok(request)

    async with (
        serve(handler) as (url, _),
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1)) as session,
    ):
        busy = core(url, session=session, max_retries=0)
        hurried = core(url, session=session, deadline=0.2, max_retries=0)
        try:
            first = asyncio.ensure_future(busy.request(GET, {"id": "1"}))
            await asyncio.sleep(0.05)
            with pytest.raises(errors.TransportError, match="waiting for a pooled connection"):
                await hurried.request(GET, {"id": "2"})
            await first
            with pytest.raises(errors.TransportError, match="waiting for the response"):
                await hurried.request(GET, {"id": "3"})
        finally:
            await busy.aclose()
            await hurried.aclose()


async def test_a_timed_out_request_keeps_its_slot_until_its_answer_arrives() -> None:
    """The caller gets its timeout at once; the slot is stamped only when the late answer comes."""
    answered = asyncio.Event()

    async def handler(request: web.Request) -> web.StreamResponse:
        await asyncio.sleep(0.4)
        answered.set()
        return _ok(request)

    limiter = LocalLimiter()
    async with serve(handler) as (url, _):
        http = core(
            url, {"get_runner": (RateLimit(5, 60.0),)}, limiter=limiter, timeout=0.1, max_retries=0
        )
        bucket = http.buckets(GET)[0]
        try:
            with pytest.raises(errors.TransportError, match="no response"):
                await http.request(GET, {"id": "1"})
            assert limiter.in_flight(bucket) == 1  # still the vendor's, as far as we know
            assert not answered.is_set()
            await answered.wait()
            for _ in range(20):
                if limiter.in_flight(bucket) == 0:
                    break
                await asyncio.sleep(0.01)
            assert limiter.in_flight(bucket) == 0
        finally:
            await http.aclose()


async def test_a_request_never_answered_is_let_go_after_the_hold(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """After the hold, a silent request's connection is closed and its slot stamped."""
    monkeypatch.setattr("runnerhub._http.ABANDON_HOLD", 0.2)

    async def handler(request: web.Request) -> web.StreamResponse:
        await asyncio.sleep(1)
        return _ok(request)

    limiter = LocalLimiter()
    async with serve(handler) as (url, _):
        http = core(
            url, {"get_runner": (RateLimit(5, 60.0),)}, limiter=limiter, timeout=0.05, max_retries=0
        )
        bucket = http.buckets(GET)[0]
        try:
            with pytest.raises(errors.TransportError):
                await http.request(GET, {"id": "1"})
            assert limiter.in_flight(bucket) == 1
            (held,) = http._abandoned
            await asyncio.wait({held}, timeout=2)  # ended by the hold, not by an answer
            await asyncio.sleep(0)  # its done-callbacks run
            assert not http._abandoned
            assert limiter.in_flight(bucket) == 0
            session = http._session
            assert session is not None
            assert session.connector is not None
            assert not session.connector._acquired  # the connection was closed, not pooled
        finally:
            await http.aclose()


async def test_closing_the_core_stops_requests_it_still_holds() -> None:
    """aclose() ends timed-out requests still waiting for their answer."""

    async def handler(request: web.Request) -> web.StreamResponse:
        await asyncio.sleep(1)
        return _ok(request)

    limiter = LocalLimiter()
    async with serve(handler) as (url, _):
        http = core(
            url, {"get_runner": (RateLimit(5, 60.0),)}, limiter=limiter, timeout=0.05, max_retries=0
        )
        with pytest.raises(errors.TransportError):
            await http.request(GET, {"id": "1"})
        assert len(http._abandoned) == 1
        await http.aclose()
        assert not http._abandoned
        assert limiter.in_flight(http.buckets(GET)[0]) == 0
