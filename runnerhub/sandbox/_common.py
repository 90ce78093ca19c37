"""What the vendor emulators, the fault layer and the app share."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

import attrs
from aiohttp import web

from ._window import Limiter, RetryAfterStyle, retry_after_value

Vendor = Literal["soda", "kubiya", "github"]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@attrs.define
class Exchange:
    """What the sandbox learns about one request while serving it."""

    vendor: Vendor
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


EXCHANGE = web.RequestKey("runnerhub_sandbox_exchange", Exchange)


@attrs.frozen
class Settings:
    """Knobs shared by both vendor emulators."""

    time_scale: float = 1.0
    enforce_limits: bool = True
    retry_after: RetryAfterStyle | None = "decimal"
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
    """What a client needs to talk to one emulated account."""

    vendor: str
    name: str
    # Provider constructor keyword -> value; secrets, so never in a repr.
    credentials: Mapping[str, str] = attrs.field(repr=False)
    # Vendor options, e.g. {"org": "acme"} or {"region": "eu"}; may be {}.
    options: Mapping[str, str]


class Service(Protocol):
    """One emulated vendor: its routes, credentials, limits and error bodies."""

    vendor: Vendor
    prefix: str

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
