"""The sandbox: vendor state, the aiohttp application serving it, and its request log."""

from __future__ import annotations

import asyncio
import concurrent.futures
import importlib
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from datetime import datetime
from typing import Any, TypeVar

import attrs
from aiohttp import web

from runnerhub.vendors import VENDORS

from . import _faults
from ._common import EXCHANGE, Exchange, Handler, SandboxAccount, Service, Settings
from ._faults import FaultSet
from ._window import RetryAfterStyle

_T = TypeVar("_T")


@attrs.frozen
class RequestRecord:
    """One request the sandbox received.

    Attributes:
        t: ``time.monotonic()`` at arrival.
        vendor: The vendor's registry name, e.g. ``"soda"``.
        credential: Short SHA-256 tag of the credential presented ("" if none);
            never the credential itself.
        operation: The vendor operation, e.g. ``"list_runners"``; ``"unknown"`` off-route.
        method: HTTP method.
        path: Decoded request path, without a ``/{vendor}`` mount prefix.
        status: Status sent; 0 if the connection was dropped before one was.
        org: Name of the org the credential selected, if any.
        fault: The ``FaultKind`` value that hit the request, if any.
    """

    t: float
    vendor: str
    credential: str
    operation: str
    method: str
    path: str
    status: int
    org: str | None = None
    fault: str | None = None


def _service_class(path: str) -> Any:
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


class Sandbox:
    """An emulator of every registered vendor's runner API on one aiohttp app.

    Each vendor is served twice: under its own prefix ``/{vendor}`` (see
    :meth:`url`), alone, and at the root, beside the others. At the root a
    request goes to the vendor whose route matches it (the first registered,
    if two do), else to the first whose ``prefix`` it starts with: Soda's
    ``/api/v1/`` and Kubiya's legacy ``/api/v1/`` routes meet only there.
    Orgs may be added, and their runners edited, while serving.

    Args:
        seed: Seeds every generated credential, runner and fault draw.
        time_scale: Divides every rate-limit period: 10 turns 60 s windows into 6 s.
        enforce_limits: Answer 429 past a limit; if false, only record.
        retry_after: ``Retry-After`` style on limit 429s: ``"int"`` (whole
            seconds, rounded up, as urllib3 and most clients parse it),
            ``"decimal"`` seconds (``"0.275"``), ``"date"`` (IMF-fixdate) or
            ``None`` (no header).
        reference_time: Instant that seeded timestamps are relative to (default: now).
        vendor_options: Vendor name -> keyword options of its service, e.g.
            ``{"soda": {"limits": {"get_runner": (5, 0.5)}}, "kubiya":
            {"error_style": "detail", "strict": True}}``.

    Raises:
        ValueError: ``time_scale`` is not positive, ``vendor_options`` names an
            unknown vendor, or a vendor rejects an option's value.
        TypeError: a vendor has no option of that name.
    """

    def __init__(
        self,
        seed: int = 0,
        *,
        time_scale: float = 1.0,
        enforce_limits: bool = True,
        retry_after: RetryAfterStyle | None = "int",
        reference_time: datetime | None = None,
        vendor_options: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> None:
        if time_scale <= 0:
            raise ValueError("time_scale must be positive")
        options = dict(vendor_options or {})
        unknown = set(options) - set(VENDORS)
        if unknown:
            raise ValueError(
                f"unknown vendors in vendor_options: {sorted(unknown)}; known: {sorted(VENDORS)}"
            )
        self.seed = seed
        self.faults = FaultSet(seed)
        self.requests: list[RequestRecord] = []
        self.base_url: str | None = None
        self._settings = Settings(seed, time_scale, enforce_limits, retry_after, reference_time)
        self._services: dict[str, Service] = {
            name: _service_class(entry.sandbox)(self._settings, **options.get(name, {}))
            for name, entry in VENDORS.items()
        }
        # The loop and thread serving, so that calls from other threads run there.
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: int | None = None

    def __repr__(self) -> str:
        orgs = {name: list(service.orgs) for name, service in self._services.items()}
        return f"Sandbox(seed={self.seed}, orgs={orgs}, base_url={self.base_url!r})"

    @classmethod
    def demo(cls, seed: int = 0, **options: Any) -> Sandbox:
        """A seeded demo fleet: every vendor's ``demo()`` orgs.

        ``options`` go to the constructor.
        """
        sandbox = cls(seed, **options)
        for service in sandbox._services.values():
            service.demo()
        return sandbox

    @property
    def vendors(self) -> tuple[str, ...]:
        """The emulated vendors' names, in registry order."""
        return tuple(self._services)

    def service(self, vendor: str) -> Service:
        """The service emulating ``vendor``; its ``orgs`` hold each org's state.

        Raises:
            KeyError: ``vendor`` is not registered.
        """
        try:
            return self._services[vendor]
        except KeyError:
            raise KeyError(f"unknown vendor {vendor!r}; known: {sorted(self._services)}") from None

    def add_org(self, vendor: str, name: str, runners: int = 0, **options: Any) -> Any:
        """Add an org of ``vendor`` with ``runners`` seeded runners; returns the org object.

        ``options`` are the vendor's own (e.g. Kubiya's ``unhealthy=3``, Soda's
        ``api_key_id=...``). Safe to call from any thread while serving.

        Raises:
            KeyError: ``vendor`` is not registered.
            ValueError: the org exists, or an option is invalid.
        """
        service = self.service(vendor)
        return self._on_server(lambda: service.add_org(name, runners, **options))

    def accounts(self) -> list[SandboxAccount]:
        """Every org's credentials and options, vendor by vendor in registry order."""
        return [
            service.account(org)
            for service in self._services.values()
            for org in list(service.orgs)
        ]

    def url(self, vendor: str) -> str:
        """The base URL serving ``vendor`` alone: ``f"{base_url}/{vendor}"``.

        Raises:
            KeyError: ``vendor`` is not registered.
            RuntimeError: the sandbox is not serving.
        """
        self.service(vendor)
        if self.base_url is None:
            raise RuntimeError("the sandbox is not serving; use serve() or serve_in_thread()")
        return f"{self.base_url}/{vendor}"

    def _on_server(self, call: Callable[[], _T]) -> _T:
        """``call()`` on the serving loop's thread, so state never changes under a handler."""
        loop = self._loop
        if loop is None or self._thread == threading.get_ident():
            return call()
        done: concurrent.futures.Future[_T] = concurrent.futures.Future()

        def run() -> None:
            try:
                done.set_result(call())
            except Exception as exc:
                done.set_exception(exc)

        loop.call_soon_threadsafe(run)
        return done.result()

    def make_app(self) -> web.Application:
        """A new application serving this sandbox's state; every call shares it."""
        app = web.Application(middlewares=[self._middleware])
        # Prefixes first, so that no vendor's root route can capture ``/{vendor}/...``.
        for name, service in self._services.items():
            mounted = web.Application()
            mounted.router.add_routes(service.routes())
            app.add_subapp(f"/{name}", mounted)
        for service in self._services.values():
            app.router.add_routes(service.routes())
        app.on_response_prepare.append(self._decorate)
        return app

    @asynccontextmanager
    async def serve(self, host: str = "127.0.0.1", port: int = 0) -> AsyncIterator[str]:
        """Serve on ``host:port`` (0 picks a free port) for the ``async with`` body.

        Yields:
            The base URL, e.g. ``"http://127.0.0.1:53127"``; also in ``base_url``.
        """
        if self.base_url is not None:
            raise RuntimeError(f"already serving at {self.base_url}")
        # Cancel a handler when its client goes away, so STALL ends with the client.
        runner = web.AppRunner(
            self.make_app(), access_log=None, handler_cancellation=True, shutdown_timeout=0.5
        )
        await runner.setup()
        try:
            site = web.TCPSite(runner, host, port)
            await site.start()
            bound_host, bound_port = runner.addresses[0][:2]
            shown = f"[{bound_host}]" if ":" in bound_host else bound_host
            self.base_url = f"http://{shown}:{bound_port}"
            self._loop, self._thread = asyncio.get_running_loop(), threading.get_ident()
            yield self.base_url
        finally:
            self.base_url = None
            self._loop = self._thread = None
            await runner.cleanup()

    @contextmanager
    def serve_in_thread(self, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
        """Serve from a thread with its own event loop for the ``with`` body.

        For synchronous code and for tests on any event loop (or none):
        clients reach it over loopback as usual. :meth:`add_org` and
        :meth:`reset_limits` may be called from any thread meanwhile.

        Yields:
            The base URL; also in ``base_url``.
        """
        ready = threading.Event()
        started: dict[str, Any] = {}

        async def main() -> None:
            stop = asyncio.Event()
            try:
                async with self.serve(host, port) as url:
                    started.update(url=url, stop=stop, loop=asyncio.get_running_loop())
                    ready.set()
                    await stop.wait()
            except Exception as exc:
                started["error"] = exc
                ready.set()

        thread = threading.Thread(
            target=asyncio.run, args=(main(),), name="runnerhub-sandbox", daemon=True
        )
        thread.start()
        ready.wait()
        if "error" in started:
            thread.join()
            raise started["error"]
        try:
            yield started["url"]
        finally:
            started["loop"].call_soon_threadsafe(started["stop"].set)
            thread.join()

    def count(
        self,
        *,
        status: int | None = None,
        vendor: str | None = None,
        operation: str | None = None,
        org: str | None = None,
        fault: str | None = None,
    ) -> int:
        """How many logged requests match every filter given."""
        given = {
            "status": status,
            "vendor": vendor,
            "operation": operation,
            "org": org,
            "fault": fault,
        }
        wanted = {field: value for field, value in given.items() if value is not None}
        return sum(1 for r in self.requests if all(getattr(r, f) == v for f, v in wanted.items()))

    def max_in_window(self, vendor: str, operation: str, period_seconds: float) -> int:
        """The most non-429 requests of one credential in any window of ``period_seconds``.

        Windows are half-open like the server's: requests ``period_seconds`` apart
        never share one. ``operation="*"`` counts every operation, as Kubiya's
        limit does. Periods are in real seconds; apply ``time_scale`` yourself.
        """
        arrivals: dict[str, list[float]] = {}
        for r in self.requests:
            if r.vendor == vendor and r.status != 429 and operation in ("*", r.operation):
                arrivals.setdefault(r.credential, []).append(r.t)
        best = 0
        for times in arrivals.values():
            times.sort()
            start = 0
            for end, t in enumerate(times):
                while times[start] <= t - period_seconds:
                    start += 1
                best = max(best, end - start + 1)
        return best

    def reset_limits(self) -> None:
        """Forget every rate-limit window, as if the sandbox had just started."""
        self._on_server(self._settings.limiter.clear)

    def _route(self, request: web.Request) -> tuple[Service, str, str, str] | None:
        """``(service, mount, path, operation)`` of a request, ``None`` if off every vendor."""
        path = request.path
        mount = ""
        service: Service | None = None
        first = path.split("/", 2)[1]
        if first in self._services and path[len(first) + 1 : len(first) + 2] in ("", "/"):
            mount, service = f"/{first}", self._services[first]
            path = path[len(mount) :] or "/"
        route_name = request.match_info.route.name or ""
        vendor_name, _, operation = route_name.partition(".")
        if service is None:
            service = self._services.get(vendor_name) if operation else None
        if service is None:
            service = next(
                (s for s in self._services.values() if s.prefix and path.startswith(s.prefix)),
                None,
            )
        if service is None:
            return None
        return service, mount, path, operation if vendor_name == service.vendor else "unknown"

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        routed = self._route(request)
        if routed is None:
            return await handler(request)
        service, mount, path, operation = routed
        exchange = Exchange(
            vendor=service.vendor,
            arrival=time.monotonic(),
            method=request.method,
            path=path,
            operation=operation,
            credential=service.credential_id(request),
            mount=mount,
        )
        request[EXCHANGE] = exchange
        fault = self.faults.pick(service.vendor, request.method, path)
        sent: web.StreamResponse | None = None
        try:
            sent = await _faults.apply(fault, request, exchange, service, handler)
            return sent
        finally:
            status = exchange.status
            if status is None:
                status = sent.status if sent is not None else 0
            self.requests.append(
                RequestRecord(
                    exchange.arrival,
                    exchange.vendor,
                    exchange.credential,
                    exchange.operation,
                    exchange.method,
                    exchange.path,
                    status,
                    org=exchange.org,
                    fault=exchange.fault,
                )
            )

    async def _decorate(self, request: web.Request, response: web.StreamResponse) -> None:
        exchange = request.get(EXCHANGE)
        if exchange is None or exchange.proxy:
            return
        self._services[exchange.vendor].decorate(response, exchange)


async def run_forever(
    sandbox: Sandbox,
    host: str = "127.0.0.1",
    port: int = 8080,
    *,
    on_ready: Callable[[str], None] | None = None,
) -> None:
    """Serve ``sandbox`` until cancelled; ``on_ready`` gets the base URL once listening."""
    async with sandbox.serve(host, port) as base_url:
        if on_ready is not None:
            on_ready(base_url)
        await asyncio.Event().wait()
