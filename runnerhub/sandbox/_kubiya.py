"""Kubiya REST v3 runner routes, auth and limits; the org state is in ``_kubiya_state.py``."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any, Literal

from aiohttp import web

from ._common import (
    EXCHANGE,
    Exchange,
    Handler,
    SandboxAccount,
    Settings,
    check_new_org,
    credential_id,
    exception_response,
    html_page,
    rfc3339,
    utcnow,
)
from ._kubiya_state import HealthState, KubiyaOrg
from ._window import format_seconds

__all__ = ["KUBIYA_LIMITS", "HealthState", "KubiyaOrg", "KubiyaService"]

ErrorStyle = Literal["code_error", "nested", "message", "detail", "html"]
HelmchartFormat = Literal["json", "tgz"]

# 100 per minute per key, with a burst window of 20 per 10 s (notes §4).
KUBIYA_LIMITS: tuple[tuple[int, float], ...] = ((100, 60.0), (20, 10.0))

# With ``strict=True`` only: neither rule is in Kubiya's docs. The operations
# are the docs' examples (notes §3.9); the name rule is a DNS label's.
STRICT_OPERATIONS = frozenset({"restart", "stop", "start"})
_STRICT_NAME = re.compile(r"[a-z0-9-]{1,63}")
_KEY_SEGMENT = re.compile(r"[0-9a-f]{40}\.yaml")
_ERROR_CODES = {
    400: "invalid_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    429: "rate_limited",
    500: "internal_error",
    502: "bad_gateway",
    503: "unavailable",
    504: "gateway_timeout",
}

KUBIYA_ORG = web.RequestKey("runnerhub_sandbox_kubiya_org", KubiyaOrg)


class KubiyaService:
    """Routes, auth and limits of ``/api/v3/runners``, and the orgs behind them.

    By default the service enforces only what Kubiya documents; ``strict=True``
    adds two rules the docs do not state (runner names of 1-63 ``a-z0-9-``,
    operations limited to the docs' examples ``restart``, ``stop``, ``start``).

    Args:
        settings: What every vendor of the sandbox shares.
        limits: Windows over all endpoints per key, replacing ``KUBIYA_LIMITS``;
            the first is reported as ``X-RateLimit-*``, the second as
            ``X-RateLimit-Burst-*``.
        error_style: Error body shape: ``"code_error"`` ``{"code": 404, "error":
            "..."}``; ``"nested"`` ``{"error": {"code": "not_found", "message":
            "..."}}``; ``"message"`` ``{"message": "..."}``; ``"detail"``
            ``{"detail": "..."}``; ``"html"`` a ``text/html`` proxy page.
        helmchart_format: ``"json"`` Helm values (what clients decode) or
            ``"tgz"`` (what the docs claim).
        strict: Also enforce the undocumented name and operation rules.

    Raises:
        ValueError: ``limits`` is empty.
    """

    vendor = "kubiya"
    prefix = "/api/v3/"

    def __init__(
        self,
        settings: Settings,
        *,
        limits: Sequence[tuple[int, float]] | None = None,
        error_style: ErrorStyle = "code_error",
        helmchart_format: HelmchartFormat = "json",
        strict: bool = False,
    ) -> None:
        windows = KUBIYA_LIMITS if limits is None else tuple(limits)
        if not windows:
            raise ValueError("limits needs at least one window")
        self._orgs: dict[str, KubiyaOrg] = {}
        self._settings = settings
        self._limits = [settings.scaled(*spec) for spec in windows]
        self._error_style = error_style
        self._helmchart_format = helmchart_format
        self._strict = strict

    @property
    def orgs(self) -> dict[str, KubiyaOrg]:
        """Org name -> org, in the order they were added; remove one with ``del``."""
        return self._orgs

    def add_org(
        self,
        name: str,
        runners: int = 0,
        *,
        unhealthy: int = 0,
        api_key: str | None = None,
    ) -> KubiyaOrg:
        """Add a Kubiya org with ``runners`` seeded runners, ``unhealthy`` of them not ``ok``.

        The key, if not given, is derived from the seed and ``name``.

        Raises:
            ValueError: an org called ``name`` exists, or ``unhealthy`` is too many.
        """
        check_new_org(name, self._orgs)
        org = KubiyaOrg.seeded(
            name, self._settings.seed, runners, unhealthy=unhealthy, api_key=api_key
        )
        self._orgs[name] = org
        return org

    def account(self, org_name: str) -> SandboxAccount:
        """The API key of ``org_name`` (``KeyError`` if unknown)."""
        org = self._orgs[org_name]
        return SandboxAccount(self.vendor, org.name, {"api_key": org.api_key}, {})

    def demo(self) -> None:
        """Org ``kubiya-prod``: 40 runners, 8 degraded, non-responsive or not reporting."""
        self.add_org("kubiya-prod", runners=40, unhealthy=8)

    def routes(self) -> list[web.RouteDef]:
        base = "/api/v3/runners"
        # Fixed segments first: ``helm/x`` is a manifest, not runner "helm".
        return [
            web.get(base, self._list, name="kubiya.list_runners", allow_head=False),
            web.put(
                f"{base}/description/{{runner}}",
                self._describe_update,
                name="kubiya.update_description",
            ),
            web.get(
                f"{base}/helmchart/{{runner}}",
                self._helmchart,
                name="kubiya.get_helmchart",
                allow_head=False,
            ),
            web.get(
                f"{base}/helm/{{runner}}",
                self._manifest,
                name="kubiya.get_manifest",
                allow_head=False,
            ),
            web.get(
                f"{base}/{{runner}}/describe",
                self._describe,
                name="kubiya.describe_runner",
                allow_head=False,
            ),
            web.get(
                f"{base}/{{runner}}/health",
                self._health,
                name="kubiya.runner_health",
                allow_head=False,
            ),
            web.post(f"{base}/{{runner}}/ops", self._ops, name="kubiya.runner_ops"),
            # The legacy v1 describe Kubiya's SDK and CLI fall back to (notes §3.2).
            # At the root it sits beside Soda's /api/v1/; under /kubiya it is alone.
            web.get(
                "/api/v1/runners/{runner}/describe",
                self._describe_v1,
                name="kubiya.describe_runner_v1",
                allow_head=False,
            ),
            web.post(f"{base}/{{runner}}", self._create, name="kubiya.create_runner"),
            web.delete(f"{base}/{{runner}}", self._delete, name="kubiya.delete_runner"),
        ]

    @staticmethod
    def _presented(request: web.Request) -> str | None:
        header = request.headers.get("Authorization")
        if header is None:
            return None
        scheme, _, value = header.partition(" ")
        # An API key goes with ``UserKey``; the docs call ``Bearer <key>`` incorrect
        # (notes §1), so a Bearer key is an unknown credential.
        if scheme.lower() == "userkey" and value.strip():
            return value.strip()
        return header

    def credential_id(self, request: web.Request) -> str:
        presented = self._presented(request)
        return "" if presented is None else credential_id(presented)

    def _authenticate(self, request: web.Request) -> KubiyaOrg | None:
        presented = self._presented(request)
        for org in list(self._orgs.values()):
            if presented == org.api_key:
                return org
        return None

    def _org_for_key(self, segment: str) -> KubiyaOrg | None:
        key = segment.removesuffix(".yaml")
        for org in list(self._orgs.values()):
            if org.runner_for_key(key) is not None:
                return org
        return None

    async def gate(
        self, request: web.Request, exchange: Exchange, handler: Handler
    ) -> web.StreamResponse:
        segment = request.match_info.get("runner", "")
        if exchange.operation == "get_manifest" and _KEY_SEGMENT.fullmatch(segment):
            # The manifest URL from create is a capability: ``kubectl apply -f`` sends no auth.
            keyed = self._org_for_key(segment)
            if keyed is None:
                return self.error(404, "manifest not found")
            exchange.org = keyed.name
            request[KUBIYA_ORG] = keyed
            return await handler(request)
        org = self._authenticate(request)
        if org is None:
            return self.error(401, "invalid or missing API key")
        exchange.org = org.name
        request[KUBIYA_ORG] = org
        wait = self._settings.limiter.acquire(
            ("kubiya", exchange.credential),
            self._limits,
            exchange.arrival,
            enforce=self._settings.enforce_limits,
        )
        if wait:
            response = self.error(429, "rate limit exceeded")
            response.headers.update(self._settings.retry_after_header(wait))
            return response
        try:
            return await handler(request)
        except web.HTTPException as exc:
            return exception_response(self, exc, exc.reason.lower())

    def error(self, status: int, message: str) -> web.Response:
        style = self._error_style
        if style == "html":
            return web.Response(status=status, text=html_page(status), content_type="text/html")
        body: dict[str, Any]
        if style == "code_error":
            body = {"code": status, "error": message}
        elif style == "nested":
            body = {"error": {"code": _ERROR_CODES.get(status, "error"), "message": message}}
        elif style == "message":
            body = {"message": message}
        else:
            body = {"detail": message}
        return web.json_response(body, status=status)

    def decorate(self, response: web.StreamResponse, exchange: Exchange) -> None:
        # Windows belong to a key; a keyless capability GET has none to report.
        if not exchange.credential:
            return
        windows = self._settings.limiter.windows(("kubiya", exchange.credential), self._limits)
        now = exchange.arrival
        main = windows[0]
        headers = response.headers
        headers["X-RateLimit-Limit"] = str(main.limit)
        headers["X-RateLimit-Remaining"] = str(main.remaining(now))
        headers["X-RateLimit-Reset"] = format_seconds(main.reset(now)) if main.count(now) else "0"
        if len(windows) > 1:
            burst = windows[1]
            headers["X-RateLimit-Burst-Limit"] = str(burst.limit)
            headers["X-RateLimit-Burst-Remaining"] = str(burst.remaining(now))

    def wrong_shape(self, operation: str) -> Any:
        if operation == "list_runners":
            return {"runners": "nope"}
        return [{"unexpected": True}]

    def unknown_enum(self, payload: Any) -> Any:
        if isinstance(payload, list):
            return [self.unknown_enum(item) for item in payload]
        if not isinstance(payload, dict):
            return payload
        if "runner_type" in payload:
            return {**payload, "runner_type": "quantum_operator"}
        if "checks" in payload:
            return {**payload, "status": "rebooting"}
        return payload

    def _runner(self, request: web.Request) -> tuple[KubiyaOrg, str]:
        org = request[KUBIYA_ORG]
        name = request.match_info["runner"]
        if name not in org.runners:
            raise web.HTTPNotFound(reason="runner not found")
        return org, name

    async def _list(self, request: web.Request) -> web.StreamResponse:
        return web.json_response(list(request[KUBIYA_ORG].runners.values()))

    async def _describe(self, request: web.Request) -> web.StreamResponse:
        org, name = self._runner(request)
        return web.json_response(org.runners[name])

    async def _describe_v1(self, request: web.Request) -> web.StreamResponse:
        org, name = self._runner(request)
        runner = org.runners[name]
        # DOCS-REST shows the version already mapped: 0 -> "v1", 2 -> "v2" (notes §2).
        version = runner.get("version")
        return web.json_response(
            {
                "name": name,
                "version": f"v{version or 1}" if isinstance(version, int) else version,
                "namespace": runner.get("namespace", ""),
                "kubernetes_namespace": runner.get("kubernetes_namespace", ""),
            }
        )

    async def _health(self, request: web.Request) -> web.StreamResponse:
        org, name = self._runner(request)
        if org.health.get(name) == "missing":
            return self.error(503, f"runner {name} is not reporting health")
        return web.json_response(org.health_report(name))

    async def _create(self, request: web.Request) -> web.StreamResponse:
        org = request[KUBIYA_ORG]
        name = request.match_info["runner"]
        if self._strict and not _STRICT_NAME.fullmatch(name):
            return self.error(400, "runner name must be 1-63 characters of a-z, 0-9 and '-'")
        body = await _json_body(request)
        if body is _INVALID:
            return self.error(400, "invalid request body")
        if name not in org.runners:
            fields = body if isinstance(body, dict) else {}
            extra = {
                key: fields[key]
                for key in ("managed_by", "task_id", "description")
                if isinstance(fields.get(key), str)
            }
            org.add_runner(name, health="missing", **extra)
        # Re-creating returns the same URL: ``kubiya runner manifest`` relies on it (notes §3.4).
        key = org.manifest_key(name)
        return web.json_response(
            {
                "url": f"{request.scheme}://{request.host}{request[EXCHANGE].mount}"
                f"/api/v3/runners/helm/{key}.yaml"
            }
        )

    async def _delete(self, request: web.Request) -> web.StreamResponse:
        org, name = self._runner(request)
        org.remove_runner(name)
        return web.Response(status=200)

    async def _describe_update(self, request: web.Request) -> web.StreamResponse:
        org, name = self._runner(request)
        body = await _json_body(request)
        if not isinstance(body, dict) or not isinstance(body.get("description"), str):
            return self.error(400, "description is required and must be a string")
        org.runners[name]["description"] = body["description"]
        return web.json_response(org.runners[name])

    async def _helmchart(self, request: web.Request) -> web.StreamResponse:
        org, name = self._runner(request)
        if self._helmchart_format == "tgz":
            return web.Response(
                body=org.helm_chart(name),
                content_type="application/gzip",
                headers={"Content-Disposition": f'attachment; filename="{name}.tgz"'},
            )
        return web.json_response(org.helm_values(name))

    async def _manifest(self, request: web.Request) -> web.StreamResponse:
        org = request[KUBIYA_ORG]
        segment = request.match_info["runner"]
        keyed = _KEY_SEGMENT.fullmatch(segment)
        name = org.runner_for_key(segment.removesuffix(".yaml")) if keyed else segment
        if name is None or name not in org.runners:
            return self.error(404, "runner not found")
        return web.Response(text=org.manifest(name), content_type="application/x-yaml")

    async def _ops(self, request: web.Request) -> web.StreamResponse:
        _, name = self._runner(request)
        body = await _json_body(request)
        if not isinstance(body, dict) or not isinstance(body.get("operation"), str):
            return self.error(400, "operation is required")
        operation = body["operation"]
        if self._strict and operation not in STRICT_OPERATIONS:
            return self.error(400, f"unsupported operation {operation!r}")
        if not isinstance(body.get("parameters", {}), dict):
            return self.error(400, "parameters must be an object")
        return web.json_response(
            {
                "operation": operation,
                "status": "success",
                "message": f"operation {operation} initiated for runner {name}",
                "timestamp": rfc3339(utcnow()),
            }
        )


_INVALID = object()


async def _json_body(request: web.Request) -> Any:
    """The parsed JSON body, ``None`` if empty, ``_INVALID`` if not JSON."""
    raw = await request.read()
    if not raw.strip():
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return _INVALID
