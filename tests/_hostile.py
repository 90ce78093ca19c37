"""A tiny loopback server for hostile-vendor tests: one handler answers every path."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import attrs
from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@attrs.define
class Served:
    """A running server: its base URL and the requests it has seen."""

    base_url: str
    requests: list[web.Request] = attrs.Factory(list)


@asynccontextmanager
async def serve(handler: Handler) -> AsyncIterator[Served]:
    """Serve ``handler`` on every path of 127.0.0.1 (an ephemeral port) until the block ends."""
    served = Served("")

    async def recording(request: web.Request) -> web.StreamResponse:
        served.requests.append(request)
        return await handler(request)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", recording)
    runner = web.AppRunner(app, access_log=None, handler_cancellation=True, shutdown_timeout=0.2)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    served.base_url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        yield served
    finally:
        await runner.cleanup()
