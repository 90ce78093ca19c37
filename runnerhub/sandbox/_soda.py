"""Soda Cloud REST v1 runners, as ``soda-runners.openapi.json`` and the notes describe them."""

from __future__ import annotations

import base64
import binascii
import os
import random
import uuid
from collections.abc import Mapping
from datetime import datetime, timedelta
from itertools import islice
from typing import Any

import attrs
from aiohttp import web

from ._common import (
    Exchange,
    Handler,
    SandboxAccount,
    Settings,
    check_new_org,
    credential_id,
    exception_response,
    is_int32,
    reason,
    rfc3339,
    utcnow,
)

SODA_LIMITS: dict[str, tuple[int, float]] = {
    "list_runners": (60, 60.0),
    "create_runner": (10, 60.0),
    "get_runner": (1000, 60.0),
    "delete_runner": (10, 60.0),
    "test_login": (10, 10.0),
}

# runner version -> soda-library version shipped with it; the first is current.
_VERSIONS = {"1.4.2": "4.1.0", "1.4.1": "4.0.3", "1.3.9": "3.5.7"}
_LABELS = (
    "Kubernetes (EKS)",
    "Kubernetes (AKS)",
    "Kubernetes (GKE)",
    "analytics",
    "finance-dw",
    "ml-platform",
    "staging",
    "on-prem",
)
_ERROR_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    429: "too_many_requests",
    500: "internal_server_error",
    502: "bad_gateway",
    503: "service_unavailable",
    504: "gateway_timeout",
}


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _secret(rng: random.Random, nbytes: int) -> str:
    return base64.urlsafe_b64encode(rng.randbytes(nbytes)).rstrip(b"=").decode()


@attrs.define(eq=False)
class SodaOrg:
    """One Soda Cloud organisation: its API credentials and runners.

    ``runners`` maps runner id to the wire payload (a ``PublicApiRunnerDTO``)
    in list order; edit it freely, the server reads it on every request.
    Deleting an id in ``in_use`` fails with 400. ``created`` holds the key ids
    minted by ``POST /api/v1/runners``; such a runner is listed only after
    :meth:`register`.
    """

    name: str
    api_key_id: str
    api_key_secret: str = attrs.field(repr=False)
    token: str = attrs.field(repr=False)
    runners: dict[str, dict[str, Any]] = attrs.field(factory=dict, repr=False)
    in_use: set[str] = attrs.field(factory=set, repr=False)
    created: list[str] = attrs.field(factory=list, repr=False)
    _rng: random.Random = attrs.field(factory=random.Random, repr=False)
    _seeded_at: datetime = attrs.field(factory=utcnow, repr=False)
    _serial: int = attrs.field(default=0, init=False, repr=False)
    _registered: set[str] = attrs.field(factory=set, init=False, repr=False)

    @classmethod
    def seeded(
        cls,
        name: str,
        seed: int,
        runners: int = 0,
        *,
        api_key_id: str | None = None,
        api_key_secret: str | None = None,
        token: str | None = None,
        reference_time: datetime | None = None,
    ) -> SodaOrg:
        """An org whose credentials and ``runners`` derive from ``seed`` and ``name``.

        With ``runners >= 1`` the first runner is the org's one ``SODA_HOSTED``
        runner. Timestamps are offsets from ``reference_time`` (default: now).
        """
        rng = random.Random(f"soda:{seed}:{name}")
        # Credentials are drawn even when given, so runner data never depends on them.
        drawn = (_uuid(rng), _secret(rng, 30), rng.randbytes(24).hex())
        org = cls(
            name,
            api_key_id or drawn[0],
            api_key_secret or drawn[1],
            token or drawn[2],
            rng=rng,
            seeded_at=reference_time or utcnow(),
        )
        if runners >= 1:
            org._add(org._soda_hosted())
        for _ in range(runners - 1):
            org._add(org._self_hosted(seeded=True))
        return org

    @property
    def tag(self) -> str:
        """The short region tag used in runner names: ``"eu"`` for ``"acme-eu"``."""
        return self.name.rsplit("-", 1)[-1]

    def add_runner(self, **overrides: Any) -> dict[str, Any]:
        """Add an online self-hosted runner; ``overrides`` replace its wire fields."""
        runner = self._self_hosted(seeded=False)
        runner.update(overrides)
        return self._add(runner)

    def remove_runner(self, runner_id: str) -> None:
        """Forget a runner, as if it had been deleted; ``KeyError`` if unknown."""
        del self.runners[runner_id]
        self.in_use.discard(runner_id)

    def register(self, api_key_id: str, name: str, **overrides: Any) -> dict[str, Any]:
        """Simulate the runner deployed with ``api_key_id`` connecting to Soda Cloud.

        Raises:
            KeyError: ``api_key_id`` was not minted by ``POST /api/v1/runners``.
            ValueError: it already registered.
        """
        if api_key_id not in self.created:
            raise KeyError(api_key_id)
        if api_key_id in self._registered:
            raise ValueError(f"API key {api_key_id} already registered a runner")
        self._registered.add(api_key_id)
        current = next(iter(_VERSIONS))
        runner: dict[str, Any] = {
            "id": _uuid(self._rng),
            "name": name,
            "label": name,
            "type": "SELF_HOSTED",
            "isOnline": True,
            "lastSeenTimestamp": rfc3339(utcnow()),
            "versions": {"agent": current, "library": _VERSIONS[current], "runner": current},
        }
        runner.update(overrides)
        return self._add(runner)

    def mint(self) -> tuple[str, str]:
        """New runner credentials ``(apiKeyId, apiKeySecret)``, recorded in ``created``."""
        key_id, secret = _uuid(self._rng), _secret(self._rng, 30)
        self.created.append(key_id)
        return key_id, secret

    def _add(self, runner: dict[str, Any]) -> dict[str, Any]:
        self.runners[runner["id"]] = runner
        return runner

    def _soda_hosted(self) -> dict[str, Any]:
        current = next(iter(_VERSIONS))
        return {
            "id": _uuid(self._rng),
            "name": "soda-hosted-runner",
            "label": "Soda-hosted runner",
            "type": "SODA_HOSTED",
            "isOnline": True,
            "lastSeenTimestamp": rfc3339(self._seeded_at - timedelta(seconds=3)),
            "versions": {"agent": current, "library": _VERSIONS[current], "runner": current},
        }

    def _self_hosted(self, *, seeded: bool) -> dict[str, Any]:
        rng = self._rng
        self._serial += 1
        n = self._serial
        roll = rng.random()
        version = "1.4.2" if roll < 0.75 else "1.4.1" if roll < 0.9 else "1.3.9"
        online = not seeded or rng.random() >= 0.1
        if online:
            seen = self._seeded_at - timedelta(seconds=rng.randint(2, 90))
        else:
            seen = self._seeded_at - timedelta(minutes=rng.randint(15, 60 * 24 * 30))
        runner: dict[str, Any] = {
            "id": _uuid(rng),
            "name": f"runner-{self.tag}-{n:04d}",
            "label": rng.choice(_LABELS),
            "type": "SELF_HOSTED",
            "isOnline": online,
            "lastSeenTimestamp": rfc3339(seen),
            "versions": {"agent": version, "library": _VERSIONS[version], "runner": version},
        }
        if seeded:
            # Fixed strides keep every quirk present in any org of 50+ runners.
            if n % 50 == 7:
                # Registered but never seen: no timestamp at all.
                del runner["lastSeenTimestamp"]
                runner["isOnline"] = False
            if n % 40 == 3:
                # Older agents report only the deprecated ``agent`` version.
                del runner["versions"]["runner"]
            if n % 33 == 5:
                self.in_use.add(runner["id"])
        return runner


SODA_ORG = web.RequestKey("runnerhub_sandbox_soda_org", SodaOrg)


class SodaService:
    """Routes, auth and limits of ``/api/v1/runners``, and the orgs behind them.

    Args:
        settings: What every vendor of the sandbox shares.
        limits: Per-operation ``(max_requests, period_seconds)`` replacing
            Soda's published ones, e.g. ``{"get_runner": (5, 0.5)}``.

    Raises:
        ValueError: ``limits`` names an operation Soda does not limit.
    """

    vendor = "soda"
    prefix = "/api/v1/"

    def __init__(
        self, settings: Settings, *, limits: Mapping[str, tuple[int, float]] | None = None
    ) -> None:
        unknown = set(limits or ()) - set(SODA_LIMITS)
        if unknown:
            raise ValueError(f"unknown Soda operations in limits: {sorted(unknown)}")
        self._orgs: dict[str, SodaOrg] = {}
        self._settings = settings
        merged = {**SODA_LIMITS, **(limits or {})}
        self._limits = {op: settings.scaled(*spec) for op, spec in merged.items()}

    @property
    def orgs(self) -> dict[str, SodaOrg]:
        """Org name -> org, in the order they were added; remove one with ``del``."""
        return self._orgs

    def add_org(
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

        Raises:
            ValueError: an org called ``name`` exists.
        """
        check_new_org(name, self._orgs)
        org = SodaOrg.seeded(
            name,
            self._settings.seed,
            runners,
            api_key_id=api_key_id,
            api_key_secret=api_key_secret,
            token=token,
            reference_time=self._settings.reference_time,
        )
        self._orgs[name] = org
        return org

    def account(self, org_name: str) -> SandboxAccount:
        """The API key pair of ``org_name`` (``KeyError`` if unknown)."""
        org = self._orgs[org_name]
        return SandboxAccount(
            self.vendor,
            org.name,
            {"api_key_id": org.api_key_id, "api_key_secret": org.api_key_secret},
            {},
        )

    def demo(self) -> None:
        """Orgs ``soda-eu`` (3000 runners) and ``soda-us`` (1500)."""
        self.add_org("soda-eu", runners=3000)
        self.add_org("soda-us", runners=1500)

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/api/v1/runners", self._list, name="soda.list_runners", allow_head=False),
            web.post("/api/v1/runners", self._create, name="soda.create_runner"),
            web.get(
                "/api/v1/runners/{runnerId}", self._get, name="soda.get_runner", allow_head=False
            ),
            web.delete("/api/v1/runners/{runnerId}", self._delete, name="soda.delete_runner"),
            web.get("/api/v1/test-login", self._test_login, name="soda.test_login"),
        ]

    @staticmethod
    def _presented(request: web.Request) -> tuple[str, str] | None:
        """``("basic", "id:secret")`` or ``("cookie", token)``; an Authorization header wins."""
        header = request.headers.get("Authorization")
        if header is None:
            token = request.cookies.get("token")
            return None if token is None else ("cookie", token)
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "basic":
            return ("header", header)
        try:
            return ("basic", base64.b64decode(value.strip(), validate=True).decode())
        except (binascii.Error, UnicodeDecodeError):
            return ("header", header)

    def credential_id(self, request: web.Request) -> str:
        presented = self._presented(request)
        return "" if presented is None else credential_id(presented[1])

    def _authenticate(self, request: web.Request) -> SodaOrg | None:
        presented = self._presented(request)
        for org in list(self._orgs.values()):
            if presented in (
                ("basic", f"{org.api_key_id}:{org.api_key_secret}"),
                ("cookie", org.token),
            ):
                return org
        return None

    async def gate(
        self, request: web.Request, exchange: Exchange, handler: Handler
    ) -> web.StreamResponse:
        org = self._authenticate(request)
        if org is None:
            return self.error(401, "Full authentication is required to access this resource")
        exchange.org = org.name
        request[SODA_ORG] = org
        spec = self._limits.get(exchange.operation)
        if spec is not None:
            wait = self._settings.limiter.acquire(
                ("soda", exchange.credential, exchange.operation),
                [spec],
                exchange.arrival,
                enforce=self._settings.enforce_limits,
            )
            if wait:
                response = self.error(429, f"Rate limit of {spec[0]} requests exceeded")
                response.headers.update(self._settings.retry_after_header(wait))
                return response
        try:
            return await handler(request)
        except web.HTTPException as exc:
            return exception_response(self, exc)

    def error(self, status: int, message: str) -> web.Response:
        code = _ERROR_CODES.get(status, reason(status).lower().replace(" ", "_"))
        return web.json_response({"code": code, "message": message}, status=status)

    def decorate(self, response: web.StreamResponse, exchange: Exchange) -> None:
        response.headers["X-Soda-Trace-Id"] = os.urandom(16).hex()

    def wrong_shape(self, operation: str) -> Any:
        if operation == "list_runners":
            return {"content": "nope"}
        return [{"unexpected": True}]

    def unknown_enum(self, payload: Any) -> Any:
        if isinstance(payload, dict):
            if isinstance(payload.get("type"), str) and "isOnline" in payload:
                return {**payload, "type": "VIRTUAL"}
            return {key: self.unknown_enum(value) for key, value in payload.items()}
        if isinstance(payload, list):
            return [self.unknown_enum(item) for item in payload]
        return payload

    async def _list(self, request: web.Request) -> web.StreamResponse:
        org = request[SODA_ORG]
        page = _int_param(request, "page", 0)
        size = _int_param(request, "size", 10)
        if page is None or page < 0:
            return self.error(400, "page must be an integer greater than or equal to 0")
        if size is None or not 10 <= size <= 1000:
            return self.error(400, "size must be an integer between 10 and 1000")
        total = len(org.runners)
        pages = -(-total // size)
        start = page * size
        content = list(islice(org.runners.values(), start, start + size)) if start < total else []
        return web.json_response(
            {
                "content": content,
                "first": page == 0,
                "last": page >= pages - 1,
                "number": page,
                "size": size,
                "totalElements": total,
                "totalPages": pages,
            }
        )

    async def _get(self, request: web.Request) -> web.StreamResponse:
        runner = request[SODA_ORG].runners.get(request.match_info["runnerId"])
        if runner is None:
            return self.error(404, "Runner not found")
        return web.json_response({"runner": runner})

    async def _test_login(self, request: web.Request) -> web.StreamResponse:
        # Connectivity check from Soda's public API docs (British spelling).
        return web.json_response({"organisationName": request[SODA_ORG].name})

    async def _create(self, request: web.Request) -> web.StreamResponse:
        # The spec declares no request body; Soda's CLI sends {"name": ...} anyway.
        key_id, secret = request[SODA_ORG].mint()
        return web.json_response({"apiKeyId": key_id, "apiKeySecret": secret})

    async def _delete(self, request: web.Request) -> web.StreamResponse:
        org = request[SODA_ORG]
        runner_id = request.match_info["runnerId"]
        runner = org.runners.get(runner_id)
        if runner is None:
            return self.error(404, "Runner not found")
        kind = runner.get("type")
        if kind == "SODA_HOSTED":
            return self.error(400, "Soda-hosted runners cannot be deleted")
        if kind != "SELF_HOSTED":
            return self.error(400, "Virtual runners cannot be deleted")
        if runner_id in org.in_use:
            return self.error(400, "runner is still in use")
        org.remove_runner(runner_id)
        return web.json_response({})


def _int_param(request: web.Request, name: str, default: int) -> int | None:
    """A query parameter as a Java ``int``: ``default`` if absent, ``None`` if malformed."""
    text = request.query.get(name)
    if text is None:
        return default
    return int(text) if is_int32(text) else None
