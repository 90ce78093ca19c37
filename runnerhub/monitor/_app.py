"""The monitor's HTTP face: ``/metrics``, ``/healthz``, ``/readyz``, ``/api/inventory``, ``/``."""

from __future__ import annotations

import json
import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Final

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from .._serialize import error_to_json, inventory_to_json
from ._monitor import FleetMonitor
from ._page import CSP, Filters, render_page
from ._state import AccountStatus

__all__ = ["make_app", "serve"]

MONITOR: Final = web.AppKey("runnerhub_monitor", FleetMonitor)
_HEADERS: Final = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
_INVENTORY_CACHE: Final = web.AppKey("runnerhub_inventory_cache", dict)


def _time(value: Any) -> str | None:
    return None if value is None else str(value.isoformat())


def _seconds(value: float) -> float | None:
    return None if math.isinf(value) else round(value, 3)


def _account_json(status: AccountStatus) -> dict[str, Any]:
    return {
        "provider": status.provider,
        "state": status.state.value,
        "up": status.up,
        "stale": status.stale,
        "runners": len(status.runners),
        "last_success": _time(status.last_success),
        "last_attempt": _time(status.last_attempt),
        "health_checked_at": _time(status.health_checked_at),
        "list_seconds": _seconds(status.list_seconds),
        "health_seconds": _seconds(status.health_seconds),
        "error": None if status.error is None else error_to_json(status.error),
    }


def inventory_document(monitor: FleetMonitor) -> dict[str, Any]:
    """The ``ls -o json`` document of the monitor's last data, with a ``monitor`` section."""
    return {
        "monitor": {
            "ready": monitor.ready,
            "interval": monitor.interval,
            "budget_share": monitor.budget_share,
            "accounts": {
                label: _account_json(status) for label, status in monitor.accounts().items()
            },
        },
        **inventory_to_json(monitor.inventory()),
    }


async def _metrics(request: web.Request) -> web.Response:
    body = request.app[MONITOR].metrics.exposition()
    return web.Response(body=body, headers={**_HEADERS, "Content-Type": CONTENT_TYPE_LATEST})


async def _healthz(request: web.Request) -> web.Response:
    return web.Response(text="ok\n", headers=_HEADERS)


async def _readyz(request: web.Request) -> web.Response:
    monitor = request.app[MONITOR]
    if monitor.ready:
        return web.Response(text="ready\n", headers=_HEADERS)
    waiting = sum(1 for s in monitor.accounts().values() if not s.tried)
    return web.Response(status=503, text=f"{waiting} account(s) not tried yet\n", headers=_HEADERS)


async def _inventory(request: web.Request) -> web.Response:
    monitor = request.app[MONITOR]
    cache = request.app[_INVENTORY_CACHE]
    if cache.get("version") != monitor.version:
        cache["body"] = json.dumps(inventory_document(monitor), ensure_ascii=False).encode()
        cache["version"] = monitor.version
    return web.Response(
        body=cache["body"],
        headers={**_HEADERS, "Content-Type": "application/json; charset=utf-8"},
    )


async def _page(request: web.Request) -> web.Response:
    monitor = request.app[MONITOR]
    text = render_page(
        list(monitor.accounts().values()),
        monitor.version_drift(),
        Filters.from_query(request.query),
        ready=monitor.ready,
        interval=monitor.interval,
        refresh_seconds=max(5, min(30, round(monitor.interval))),
    )
    return web.Response(
        text=text,
        content_type="text/html",
        headers={**_HEADERS, "Content-Security-Policy": CSP},
    )


def make_app(monitor: FleetMonitor) -> web.Application:
    """An :class:`aiohttp.web.Application` serving ``monitor`` (it does not run the monitor)."""
    app = web.Application()
    app[MONITOR] = monitor
    app[_INVENTORY_CACHE] = {}
    app.router.add_get("/metrics", _metrics)
    app.router.add_get("/healthz", _healthz)
    app.router.add_get("/readyz", _readyz)
    app.router.add_get("/api/inventory", _inventory)
    app.router.add_get("/", _page)
    return app


@asynccontextmanager
async def serve(
    monitor: FleetMonitor, host: str = "127.0.0.1", port: int = 9464
) -> AsyncIterator[str]:
    """Serve ``monitor``'s app on ``host:port`` (0: any free port) for the ``async with`` body.

    Yields:
        The base URL, e.g. ``"http://127.0.0.1:9464"``.

    Raises:
        OSError: when the address cannot be bound.
    """
    runner = web.AppRunner(make_app(monitor), access_log=None, shutdown_timeout=0.5)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        bound_host, bound_port = runner.addresses[0][:2]
        shown = f"[{bound_host}]" if ":" in bound_host else bound_host
        yield f"http://{shown}:{bound_port}"
    finally:
        await runner.cleanup()
