"""The sandbox: vendor state, the aiohttp application serving it, and its request log."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

import attrs
from aiohttp import web

from . import _faults
from ._common import EXCHANGE, Exchange, Handler, Service, Settings, Vendor
from ._faults import FaultSet
from ._github import GitHubService
from ._kubiya import KUBIYA_LIMITS, ErrorStyle, HelmchartFormat, KubiyaOrg, KubiyaService
from ._soda import SODA_LIMITS, SodaOrg, SodaService
from ._window import RetryAfterStyle


@attrs.frozen
class RequestRecord:
    """One request the sandbox received.

    Attributes:
        t: ``time.monotonic()`` at arrival.
        vendor: ``"soda"`` or ``"kubiya"``.
        credential: Short SHA-256 tag of the credential presented ("" if none);
            never the credential itself.
        operation: The vendor operation, e.g. ``"list_runners"``; ``"unknown"`` off-route.
        method: HTTP method.
        path: Decoded request path.
        status: Status sent; 0 if the connection was dropped before one was.
        org: Name of the org the credential selected, if any.
        fault: The ``FaultKind`` value that hit the request, if any.
    """

    t: float
    vendor: Vendor
    credential: str
    operation: str
    method: str
    path: str
    status: int
    org: str | None = None
    fault: str | None = None


class Sandbox:
    """An emulator of the Soda Cloud v1, Kubiya v3 and GitHub runner APIs on one aiohttp app.

    Orgs may be added, and their runners edited, while serving.

    Args:
        seed: Seeds every generated credential, runner and fault draw.
        time_scale: Divides every rate-limit period: 10 turns 60 s windows into 6 s.
        enforce_limits: Answer 429 past a limit; if false, only record.
        retry_after: ``Retry-After`` style on limit 429s: ``"decimal"`` seconds
            (``"0.275"``), ``"int"`` (whole seconds, rounded up), ``"date"``
            (IMF-fixdate) or ``None`` (no header).
        soda_limits: Per-operation ``(max_requests, period_seconds)`` replacing
            Soda's published ones, e.g. ``{"get_runner": (5, 0.5)}``.
        kubiya_limits: Kubiya's windows over all endpoints per key; the first is
            reported as ``X-RateLimit-*``, the second as ``X-RateLimit-Burst-*``.
        kubiya_error_style: ``"code_error"``, ``"nested"``, ``"message"``,
            ``"detail"`` or ``"html"`` (see the package docs).
        kubiya_helmchart_format: ``"json"`` Helm values (what clients decode) or
            ``"tgz"`` (what the docs claim).
        reference_time: Instant that seeded timestamps are relative to (default: now).
        vendor_options: Per-vendor service options, e.g. ``{"github": {"path_prefix":
            "/api/v3", "primary_limit": 100}}`` (see ``GitHubService``).
    """

    def __init__(
        self,
        seed: int = 0,
        *,
        time_scale: float = 1.0,
        enforce_limits: bool = True,
        retry_after: RetryAfterStyle | None = "decimal",
        soda_limits: Mapping[str, tuple[int, float]] | None = None,
        kubiya_limits: Sequence[tuple[int, float]] | None = None,
        kubiya_error_style: ErrorStyle = "code_error",
        kubiya_helmchart_format: HelmchartFormat = "json",
        reference_time: datetime | None = None,
        vendor_options: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> None:
        if time_scale <= 0:
            raise ValueError("time_scale must be positive")
        unknown = set(soda_limits or ()) - set(SODA_LIMITS)
        if unknown:
            raise ValueError(f"unknown Soda operations in soda_limits: {sorted(unknown)}")
        self.seed = seed
        self.reference_time = reference_time
        self.soda_orgs: dict[str, SodaOrg] = {}
        self.kubiya_orgs: dict[str, KubiyaOrg] = {}
        self.faults = FaultSet(seed)
        self.requests: list[RequestRecord] = []
        self.base_url: str | None = None
        self._settings = Settings(time_scale, enforce_limits, retry_after)
        self._soda = SodaService(
            self.soda_orgs, self._settings, {**SODA_LIMITS, **(soda_limits or {})}
        )
        self._kubiya = KubiyaService(
            self.kubiya_orgs,
            self._settings,
            tuple(kubiya_limits) if kubiya_limits is not None else KUBIYA_LIMITS,
            error_style=kubiya_error_style,
            helmchart_format=kubiya_helmchart_format,
        )
        # Local registration of the GitHub service until Sandbox is generic over vendors.
        github_options = dict((vendor_options or {}).get("github", {}))
        github_options.setdefault("seed", seed)
        self._github = GitHubService(self._settings, **github_options)
        self._services: dict[Vendor, Service] = {
            "soda": self._soda,
            "kubiya": self._kubiya,
            "github": self._github,
        }

    def __repr__(self) -> str:
        return (
            f"Sandbox(seed={self.seed}, soda_orgs={list(self.soda_orgs)}, "
            f"kubiya_orgs={list(self.kubiya_orgs)}, base_url={self.base_url!r})"
        )

    @classmethod
    def demo(cls, seed: int = 0, **options: Any) -> Sandbox:
        """A seeded demo fleet.

        Soda orgs ``soda-eu`` (3000 runners) and ``soda-us`` (1500), and Kubiya
        org ``kubiya-prod`` (40 runners, 8 of them degraded, non-responsive or
        not reporting). ``options`` go to the constructor.
        """
        sandbox = cls(seed, **options)
        sandbox.add_soda_org("soda-eu", runners=3000)
        sandbox.add_soda_org("soda-us", runners=1500)
        sandbox.add_kubiya_org("kubiya-prod", runners=40, unhealthy=8)
        return sandbox

    def add_soda_org(
        self,
        name: str,
        runners: int = 0,
        *,
        api_key_id: str | None = None,
        api_key_secret: str | None = None,
        token: str | None = None,
    ) -> SodaOrg:
        """Add a Soda org with ``runners`` seeded runners (the first ``SODA_HOSTED``).

        Credentials not given are derived from the seed and ``name``.
        """
        self._check_new(name, self.soda_orgs)
        org = SodaOrg.seeded(
            name,
            self.seed,
            runners,
            api_key_id=api_key_id,
            api_key_secret=api_key_secret,
            token=token,
            reference_time=self.reference_time,
        )
        self.soda_orgs[name] = org
        return org

    def add_kubiya_org(
        self,
        name: str,
        runners: int = 0,
        *,
        unhealthy: int = 0,
        api_key: str | None = None,
    ) -> KubiyaOrg:
        """Add a Kubiya org with ``runners`` seeded runners, ``unhealthy`` of them not ``ok``.

        The key, if not given, is derived from the seed and ``name``.
        """
        self._check_new(name, self.kubiya_orgs)
        org = KubiyaOrg.seeded(name, self.seed, runners, unhealthy=unhealthy, api_key=api_key)
        self.kubiya_orgs[name] = org
        return org

    def service(self, vendor: str) -> Any:
        """The service emulating ``vendor``; ``KeyError`` if none does."""
        return self._services[vendor]  # type: ignore[index]  # Vendor narrows str

    def add_org(self, vendor: str, name: str, runners: int = 0, **options: Any) -> Any:
        """Add an org to ``vendor``'s service; returns the vendor's org object."""
        return self.service(vendor).add_org(name, runners, **options)

    @staticmethod
    def _check_new(name: str, orgs: Mapping[str, object]) -> None:
        if name in orgs:
            raise ValueError(f"org {name!r} already exists")

    def make_app(self) -> web.Application:
        """A new application serving this sandbox's state; every call shares it."""
        app = web.Application(middlewares=[self._middleware])
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
            yield self.base_url
        finally:
            self.base_url = None
            await runner.cleanup()

    def count(
        self,
        *,
        status: int | None = None,
        vendor: Vendor | None = None,
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

    def max_in_window(self, vendor: Vendor, operation: str, period_seconds: float) -> int:
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
        self._settings.limiter.clear()

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        path = request.path
        route_name = request.match_info.route.name or ""
        vendor_name, _, operation = route_name.partition(".")
        # A matched route names its vendor; a miss goes to the service owning the
        # prefix (GitHub's root paths share none, so its misses are plain 404s).
        service = self._services.get(vendor_name)  # type: ignore[call-overload]  # str key, Vendor dict
        if service is None:
            service = next(
                (
                    s
                    for s in self._services.values()
                    if s.prefix != "/" and path.startswith(s.prefix)
                ),
                None,
            )
        if service is None:
            return await handler(request)
        exchange = Exchange(
            vendor=service.vendor,
            arrival=time.monotonic(),
            method=request.method,
            path=path,
            operation=operation if vendor_name == service.vendor else "unknown",
            credential=service.credential_id(request),
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
