"""Hooks: what a provider reports of its traffic, over a loopback server."""

from __future__ import annotations

import asyncio

from aiohttp import web

from runnerhub import RateLimit, RetryPolicy, SodaProvider
from runnerhub.hooks import Hooks
from runnerhub.limits import LocalLimiter


class Recorder(Hooks):
    """Records every call as a tuple."""

    def __init__(self) -> None:
        self.calls: list[tuple[object, ...]] = []

    def on_attempt(
        self, provider: str, account: str, operation: str, code: str, seconds: float
    ) -> None:
        assert seconds >= 0
        self.calls.append(("attempt", provider, account, operation, code))

    def on_retry(self, provider: str, account: str, operation: str) -> None:
        self.calls.append(("retry", provider, account, operation))

    def on_rate_limited(self, provider: str, account: str, operation: str) -> None:
        self.calls.append(("rate_limited", provider, account, operation))

    def on_limiter_wait(self, provider: str, account: str, operation: str, seconds: float) -> None:
        assert seconds >= 0
        self.calls.append(("wait", operation))


def _app() -> web.Application:
    seen = 0

    async def runner(request: web.Request) -> web.Response:
        nonlocal seen
        seen += 1
        if seen == 1:
            return web.json_response({}, status=429, headers={"Retry-After": "0.05"})
        if seen == 2:
            await asyncio.sleep(1)  # longer than the timeout
        return web.json_response(
            {"runner": {"id": request.match_info["id"], "name": "r", "type": "agent"}}
        )

    app = web.Application()
    app.router.add_get("/api/v1/runners/{id}", runner)
    return app


async def test_hooks_see_attempts_retries_rate_limits_and_waits() -> None:
    """A 429, a timeout, then a 200: one on_attempt each, two retries, one rate-limited."""
    runner = web.AppRunner(_app())
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    hooks = Recorder()
    try:
        async with SodaProvider(
            "id",
            "secret",
            base_url=url,
            account="acct",
            hooks=hooks,
            timeout=0.2,
            limiter=LocalLimiter(),
            rate_limits={"get_runner": RateLimit(100, 1.0)},
            retry=RetryPolicy(base_delay=0.01, max_delay=0.02),
        ) as soda:
            await soda.get_runner("r-1")
    finally:
        await runner.cleanup()
    op = ("soda", "acct", "get_runner")
    assert hooks.calls == [
        ("wait", "get_runner"),
        ("attempt", *op, "429"),
        ("rate_limited", *op),
        ("retry", *op),
        ("wait", "get_runner"),
        ("attempt", *op, "error"),
        ("retry", *op),
        ("wait", "get_runner"),
        ("attempt", *op, "200"),
    ]


def test_the_base_hooks_do_nothing() -> None:
    """Every method of the base class accepts its arguments and does nothing."""
    hooks = Hooks()
    hooks.on_attempt("p", "a", "o", "200", 0.1)
    hooks.on_retry("p", "a", "o")
    hooks.on_rate_limited("p", "a", "o")
    hooks.on_limiter_wait("p", "a", "o", 0.0)
    assert vars(hooks) == {}
