"""A tiny loopback server for hostile-vendor tests: one handler answers every path."""

from __future__ import annotations

import ssl
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
async def serve(
    handler: Handler, *, host: str = "127.0.0.1", ssl_context: ssl.SSLContext | None = None
) -> AsyncIterator[Served]:
    """Serve ``handler`` on every path of ``host`` (an ephemeral port) until the block ends.

    ``handler_cancellation`` ends a handler with its client; ``ssl_context`` serves https.
    """
    served = Served("")

    async def recording(request: web.Request) -> web.StreamResponse:
        served.requests.append(request)
        return await handler(request)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", recording)
    runner = web.AppRunner(app, access_log=None, handler_cancellation=True, shutdown_timeout=0.2)
    await runner.setup()
    site = web.TCPSite(runner, host, 0, ssl_context=ssl_context)
    await site.start()
    scheme = "https" if ssl_context is not None else "http"
    served.base_url = f"{scheme}://{host}:{runner.addresses[0][1]}"
    try:
        yield served
    finally:
        await runner.cleanup()
