"""What the vendor emulators, the fault layer and the app share."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Protocol

import attrs
from aiohttp import web

from ._window import Limiter, RetryAfterStyle, retry_after_value

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@attrs.define
class Exchange:
    """What the sandbox learns about one request while serving it."""

    vendor: str
    arrival: float
    method: str
    path: str
    operation: str
    # Short hash of the credential the request presented, valid or not; "" if none.
    credential: str = ""
    org: str | None = None
    fault: str | None = None
    # Set when the status cannot be read off the returned response: 0 means
    # the connection was dropped before a status line was sent.
    status: int | None = None
    # The response poses as a proxy's page, so it carries no vendor headers.
    proxy: bool = False
    # Path prefix the vendor was reached under: "" at the root, "/kubiya" under its own.
    mount: str = ""


EXCHANGE = web.RequestKey("runnerhub_sandbox_exchange", Exchange)


@attrs.frozen
class Settings:
    """What every vendor emulator shares: the seed, the clock scale, limits and their answers.

    Attributes:
        seed: Seeds every generated credential and runner.
        time_scale: Divides every rate-limit period.
        enforce_limits: Answer 429 past a limit; if false, only record.
        retry_after: ``Retry-After`` style on limit 429s, or ``None`` for no header.
        reference_time: Instant seeded timestamps are relative to (``None``: now).
        limiter: The sliding windows of every vendor, keyed by vendor and credential.
    """

    seed: int = 0
    time_scale: float = 1.0
    enforce_limits: bool = True
    retry_after: RetryAfterStyle | None = "int"
    reference_time: datetime | None = None
    limiter: Limiter = attrs.field(factory=Limiter, eq=False)

    def scaled(self, limit: int, period: float) -> tuple[int, float]:
        """A vendor's ``(limit, period)`` with the period divided by ``time_scale``."""
        return limit, period / self.time_scale

    def retry_after_header(self, seconds: float) -> dict[str, str]:
        """The ``Retry-After`` header for a wait of ``seconds`` in the configured style."""
        if self.retry_after is None:
            return {}
        return {"Retry-After": retry_after_value(seconds, self.retry_after, time.time())}


@attrs.frozen
class SandboxAccount:
    """What a client needs to talk to one emulated account.

    Attributes:
        vendor: The vendor's registry name, e.g. ``"soda"``.
        name: The org's name in the sandbox, used as the account label.
        credentials: Provider constructor keyword -> value, e.g. ``{"api_key": ...}``.
        options: Vendor options, e.g. ``{"org": "acme"}``; may be empty.
    """

    vendor: str
    name: str
    credentials: Mapping[str, str] = attrs.field(repr=False)
    options: Mapping[str, str] = attrs.field(factory=dict)


class Service(Protocol):
    """One emulated vendor: its orgs, routes, credentials, limits and error bodies.

    A service is built as ``Service(settings, **vendor_options)``; the options
    are the vendor's own (limits, error styles, strictness).
    """

    vendor: str
    # Where the vendor's paths start when served at the root, e.g. "/api/v1/";
    # "" when they share none (the vendor then answers only its own routes there).
    prefix: str

    @property
    def orgs(self) -> Mapping[str, Any]:
        """Org name -> the vendor's org object, in the order they were added."""
        ...

    # Called as ``add_org(name, runners=0, **options)``, returning the vendor's org
    # object; declared as a callable so each vendor can type its own options.
    @property
    def add_org(self) -> Callable[..., Any]:
        """Add an org with ``runners`` seeded runners; raises ``ValueError`` if it exists."""
        ...

    def account(self, org_name: str) -> SandboxAccount:
        """The credentials and options a client uses for org ``org_name``."""
        ...

    def demo(self) -> None:
        """Add this vendor's orgs of the demo fleet."""
        ...

    def routes(self) -> list[web.RouteDef]:
        """The vendor's routes; each route's name is ``"<vendor>.<operation>"``."""
        ...

    def credential_id(self, request: web.Request) -> str:
        """Short hash of the credential ``request`` presents ("" if none)."""
        ...

    async def gate(
        self, request: web.Request, exchange: Exchange, handler: Handler
    ) -> web.StreamResponse:
        """Authenticate, apply limits, then call ``handler``; vendor errors for route misses."""
        ...

    def error(self, status: int, message: str) -> web.Response:
        """The vendor's error response."""
        ...

    def decorate(self, response: web.StreamResponse, exchange: Exchange) -> None:
        """Add the headers the vendor puts on every response."""
        ...

    def wrong_shape(self, operation: str) -> Any:
        """Valid JSON that does not have the shape ``operation`` returns."""
        ...

    def unknown_enum(self, payload: Any) -> Any:
        """``payload`` with enum values replaced by ones the spec does not list."""
        ...


def exception_response(
    service: Service, exc: web.HTTPException, message: str | None = None
) -> web.Response:
    """``exc`` (a route miss or a rejected method) as the vendor's error body.

    ``message`` defaults to the reason phrase. ``Allow`` survives, as RFC 9110
    requires on a 405.
    """
    response = service.error(exc.status, exc.reason if message is None else message)
    allow = exc.headers.get("Allow")
    if allow is not None:
        response.headers["Allow"] = allow
    return response


def check_new_org(name: str, orgs: Mapping[str, object]) -> None:
    """Raise ``ValueError`` if ``orgs`` already has an org called ``name``."""
    if name in orgs:
        raise ValueError(f"org {name!r} already exists")


def credential_id(secret: str) -> str:
    """A short, non-reversible tag for a credential, safe to log."""
    return hashlib.sha256(secret.encode()).hexdigest()[:12]


def rfc3339(moment: datetime) -> str:
    """``moment`` as RFC 3339 UTC with milliseconds and a ``Z`` suffix."""
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def utcnow() -> datetime:
    """The current wall-clock time, timezone-aware."""
    return datetime.now(UTC)


def html_page(status: int) -> str:
    """An nginx-style error page, as a proxy in front of the vendor would send."""
    title = f"{status} {_REASONS.get(status, 'Error')}"
    return (
        f"<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n"
        f"<center><h1>{title}</h1></center>\r\n<hr><center>nginx</center>\r\n"
        "</body>\r\n</html>\r\n"
    )


def reason(status: int) -> str:
    """The HTTP reason phrase of ``status``."""
    return _REASONS.get(status, "Error")


_REASONS = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


def is_int32(text: str) -> bool:
    """Whether ``text`` parses as a Java ``int`` the way ``Integer.parseInt`` does."""
    body = text[1:] if text[:1] in "+-" else text
    return body.isascii() and body.isdigit() and -(2**31) <= int(text) < 2**31
