"""The vendor-neutral HTTP core: session, auth, limits, retries, error mapping.

A vendor module declares a :class:`VendorSpec` and :class:`Route` values and
maps payloads; everything that touches the network happens here, once.
Foreign exceptions (aiohttp, asyncio timeouts, JSON) become
``runnerhub.errors`` here and nowhere else.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import ipaddress
import json
import logging
import math
import re
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any, Final, NoReturn, TypedDict
from urllib.parse import quote, urlsplit

import aiohttp
import attrs
import backoff
from multidict import CIMultiDictProxy
from yarl import URL

from . import errors
from .limits import (
    Bucket,
    Limiter,
    RateLimit,
    _LocalBucket,  # the default limiter's slot, for its await-free path
    shared_local_limiter,
)
from .retry import RetryPolicy, parse_rate_limit_reset, parse_retry_after

_json_loads: Callable[[bytes], Any]
try:  # orjson is an optional speed-up; the stdlib parser gives the same values.
    import orjson

    _json_loads = orjson.loads
except ImportError:  # pragma: no cover - exercised when orjson is absent
    _json_loads = json.loads

__all__ = ["ClientOptions", "ClientStats", "HTTPCore", "Response", "Route", "VendorSpec"]

logger: Final = logging.getLogger("runnerhub")

DEFAULT_TIMEOUT: Final = 30.0
DEFAULT_MAX_RESPONSE_BYTES: Final = 16 * 1024 * 1024
DEFAULT_CONNECTOR_LIMIT: Final = 64
_USER_AGENT: Final = "runnerhub/0.1"

# Characters that would let a credential break out of its header line.
_HEADER_BREAKERS: Final = frozenset("\r\n\0")

RateLimitsOption = Mapping[str, RateLimit | Sequence[RateLimit] | None]


class ClientOptions(TypedDict, total=False):
    """Keywords every provider accepts (see the provider classes for meanings)."""

    base_url: str
    account: str
    session: aiohttp.ClientSession
    rate_limits: RateLimitsOption
    limiter: Limiter
    timeout: float
    deadline: float | None
    max_retries: int
    retry: RetryPolicy
    max_response_bytes: int
    connector_limit: int
    allow_insecure_http: bool


@attrs.frozen
class VendorSpec:
    """What the core needs to know of a vendor.

    Attributes:
        name: Vendor name used in models, errors and bucket keys.
        limits: Default limits by bucket name. A route uses the bucket named
            after its operation if there is one, else the ``"*"`` bucket, else
            none.
        trace_headers: Response headers that carry the vendor's trace id.
    """

    name: str
    limits: Mapping[str, tuple[RateLimit, ...]]
    trace_headers: tuple[str, ...] = ()


@attrs.frozen
class Route:
    """One endpoint: operation name (for limits and errors), method, path template.

    ``retry_server_errors=False`` keeps 5xx answers from being retried where a
    vendor uses them as a normal answer (a health probe of a silent runner).
    ``log_params=False`` logs the path template instead of the rendered path,
    for parameters that are themselves credentials (a capability URL's key).
    """

    operation: str
    method: str
    path: str
    retry_server_errors: bool = True
    log_params: bool = True

    @property
    def idempotent(self) -> bool:
        """GET, PUT and DELETE may be repeated; POST may not."""
        return self.method != "POST"

    def render(self, params: Mapping[str, str]) -> str:
        """The path with each parameter percent-encoded as exactly one segment."""
        one = _one_field(self.path)
        if one is not None and len(params) == 1 and one[1] in params:
            # The usual route, "/runners/{id}": what format_map gives, by concatenation.
            prefix, name, suffix = one
            return prefix + encode_segment(params[name]) + suffix
        return self.path.format_map({key: encode_segment(value) for key, value in params.items()})


@functools.cache
def _one_field(template: str) -> tuple[str, str, str] | None:
    """``(prefix, name, suffix)`` of a template "prefix{name}suffix" with no other braces."""
    start = template.find("{")
    end = template.find("}", start + 1)
    if start < 0 or end < 0:
        return None
    prefix, name, suffix = template[:start], template[start + 1 : end], template[end + 1 :]
    if not name.isidentifier() or "}" in prefix or "{" in suffix or "}" in suffix:
        return None  # a format spec, an escaped brace, or more fields: format_map's job
    return prefix, name, suffix


def encode_segment(value: str) -> str:
    """Percent-encode ``value`` so that it stays one path segment.

    ``/``, ``?``, ``#`` and ``%`` are encoded, and a segment of dots is
    encoded too so that no URL normalisation can turn it into a parent
    reference.

    Raises:
        UsageError: for an empty value or one that is not valid Unicode.
    """
    if not isinstance(value, str) or not value:
        raise errors.UsageError(f"a runner id must be a non-empty string, got {value!r}")
    # Ids are usually unreserved characters only, which quote() leaves as they are.
    try:
        encoded = value if _all_unreserved(value) else quote(value, safe="")
    except UnicodeEncodeError:  # lone surrogates, as json.loads makes from "\ud800"
        raise errors.UsageError("a runner id must be valid Unicode text") from None
    if not encoded.strip("."):
        encoded = encoded.replace(".", "%2E")
    return encoded


# RFC 3986 unreserved characters: exactly what quote(..., safe="") never encodes.
_all_unreserved: Final = re.compile(r"[A-Za-z0-9._~-]+").fullmatch


@attrs.frozen
class Response:
    """A complete response: status, headers and the whole body."""

    status: int
    headers: CIMultiDictProxy[str]
    body: bytes

    @property
    def content_type(self) -> str:
        """The media type without parameters, lower-case."""
        return self.headers.get("Content-Type", "").partition(";")[0].strip().lower()


def decode_json(body: bytes) -> Any:
    """Parse a JSON body; raise ``ValueError`` when it is not JSON."""
    try:
        return _json_loads(body)
    except ValueError as exc:  # orjson's and json's decode errors are ValueErrors
        raise ValueError(str(exc)) from None


def parse_error_body(body: bytes, content_type: str) -> tuple[str | None, str | None]:
    """Read ``(code, message)`` from any of the error shapes vendors send.

    Shapes: ``{code, message}`` (Soda), ``{code: int, error: str}``,
    ``{error: {code, message}}``, ``{message}``, ``{detail}`` (Kubiya and
    proxies). Non-JSON bodies (an HTML proxy page) give ``(None, None)``; the
    caller then describes the status. The body text itself is never copied.
    """
    if not body or "html" in content_type:
        return None, None
    try:
        data = decode_json(body)
    except ValueError:
        return None, None
    if not isinstance(data, dict):
        return None, None
    code = data.get("code")
    message: Any = data.get("message")
    error = data.get("error")
    if isinstance(error, dict):
        code = error.get("code", code)
        message = error.get("message", message)
    elif isinstance(error, str) and message is None:
        message = error
    if message is None:
        message = data.get("detail")
    if message is not None and not isinstance(message, str):
        message = json.dumps(message, default=str)[:500]
    if isinstance(code, bool) or not isinstance(code, (str, int, type(None))):
        code = None
    return (str(code) if code is not None else None), message


_STATUS_ERRORS: Final[Mapping[int, type[errors.APIError]]] = {
    400: errors.BadRequestError,
    401: errors.AuthenticationError,
    403: errors.PermissionDeniedError,
    404: errors.NotFoundError,
    429: errors.RateLimitError,
}


def error_from_response(
    response: Response,
    *,
    trace_headers: Sequence[str],
    provider: str,
    account: str,
    operation: str,
) -> errors.APIError:
    """The typed error for a non-2xx response (a pure function of status, headers, body)."""
    code, message = parse_error_body(response.body, response.content_type)
    status = response.status
    cls = _STATUS_ERRORS.get(status) or (errors.ServerError if status >= 500 else errors.APIError)
    if not message:
        reason = "non-JSON error body" if response.body else "empty error body"
        message = f"{_status_phrase(status)} ({reason})"
    trace_id = next((response.headers[h] for h in trace_headers if h in response.headers), None)
    error = cls(
        message[:1000],
        status=status,
        code=code,
        trace_id=trace_id,
        provider=provider,
        account=account,
        operation=operation,
    )
    if isinstance(error, errors.RateLimitError):
        error.retry_after = parse_retry_after(response.headers.get("Retry-After"))
    return error


def _status_phrase(status: int) -> str:
    try:
        from http import HTTPStatus  # noqa: PLC0415 - error path only

        return HTTPStatus(status).phrase
    except ValueError:
        return f"HTTP {status}"


def _credential_fingerprint(*parts: str) -> str:
    # Identifies the credential in bucket keys and logs without revealing it.
    digest = hashlib.sha256("\0".join(parts).encode()).hexdigest()
    return digest[:16]


def check_header_value(name: str, value: str) -> str:
    """Refuse a credential that could break its header line (CR, LF, NUL)."""
    if not isinstance(value, str) or not value:
        raise errors.UsageError(f"{name} must be a non-empty string")
    if _HEADER_BREAKERS.intersection(value) or not value.isprintable():
        raise errors.UsageError(f"{name} contains a control character")
    return value


def check_base_url(base_url: str, *, allow_insecure_http: bool) -> str:
    """Normalise ``base_url``; refuse plain http to a non-loopback host unless allowed."""
    if not isinstance(base_url, str) or not base_url.isprintable() or any(
        c.isspace() for c in base_url
    ):
        raise errors.UsageError("base_url must be a URL without spaces or control characters")
    try:
        parts = urlsplit(base_url)
        parts.port  # noqa: B018 - reading it validates the port (range, digits)
    except ValueError as exc:
        raise errors.UsageError(f"base_url is not a valid URL: {exc}") from None
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise errors.UsageError(f"base_url must be an http(s) URL, got {base_url!r}")
    if parts.username or parts.password or parts.query or parts.fragment:
        raise errors.UsageError("base_url must not carry credentials, a query or a fragment")
    if parts.scheme == "http" and not allow_insecure_http and not _is_loopback(parts.hostname):
        raise errors.UsageError(
            f"refusing plain http to {parts.hostname}: credentials would travel unencrypted; "
            "use https or pass allow_insecure_http=True"
        )
    return base_url.rstrip("/")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class _Retry(Exception):
    """A failed attempt worth another one; carries the error to raise if none is left."""

    def __init__(self, error: errors.RunnerHubError, hint: float | None) -> None:
        super().__init__(error.message)
        self.error = error
        self.hint = hint


@attrs.define
class ClientStats:
    """Counters of one provider's traffic, for progress displays.

    Attributes:
        requests: Attempts sent (retries included).
        retries: Attempts that were retries.
        throttled: 429 answers received.
        waiting: Requests waiting for a rate-limit slot right now.
    """

    requests: int = 0
    retries: int = 0
    throttled: int = 0
    waiting: int = 0


class HTTPCore:
    """One provider's HTTP client: it owns (or borrows) a session and sends every request.

    Args:
        vendor: The vendor's declaration.
        auth_headers: Headers that authenticate every request; kept out of
            ``repr`` and logs.
        credential_id: A non-secret string that identifies the credential
            (hashed into bucket keys).
        default_base_url: Used when the options carry no ``base_url``.
        default_account: Used when the options carry no ``account``.
        options: The common provider keywords (:class:`ClientOptions`).
    """

    def __init__(
        self,
        vendor: VendorSpec,
        *,
        auth_headers: Mapping[str, str],
        credential_id: str,
        default_base_url: str,
        default_account: str,
        options: ClientOptions,
    ) -> None:
        self.vendor = vendor
        self.base_url = check_base_url(
            options.get("base_url") or default_base_url,
            allow_insecure_http=options.get("allow_insecure_http", False),
        )
        self.account = options.get("account") or default_account
        for name, value in auth_headers.items():
            check_header_value(name, value)
        self._headers = {"Accept": "application/json", "User-Agent": _USER_AGENT, **auth_headers}
        self._session: aiohttp.ClientSession | None = options.get("session")
        self._owns_session = self._session is None
        self._limiter = options.get("limiter")
        unknown = set(options) - ClientOptions.__optional_keys__
        if unknown:
            raise errors.UsageError(f"unknown option(s): {', '.join(sorted(unknown))}")
        timeout = float(options.get("timeout", DEFAULT_TIMEOUT))
        if not timeout > 0:
            raise errors.UsageError(f"timeout must be > 0 seconds, got {timeout!r}")
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._deadline = options.get("deadline")
        if self._deadline is not None and not 0 < self._deadline < math.inf:
            raise errors.UsageError(f"deadline must be > 0 seconds, got {self._deadline!r}")
        self._max_body = int(options.get("max_response_bytes", DEFAULT_MAX_RESPONSE_BYTES))
        if self._max_body < 1:
            raise errors.UsageError("max_response_bytes must be at least 1")
        self._connector_limit = int(options.get("connector_limit", DEFAULT_CONNECTOR_LIMIT))
        policy = options.get("retry") or RetryPolicy()
        if "max_retries" in options:
            policy = attrs.evolve(policy, max_retries=options["max_retries"])
        self.retry_policy = policy
        self.stats = ClientStats()
        self._buckets = self._make_buckets(credential_id, options.get("rate_limits") or {})

    def __repr__(self) -> str:
        return f"<HTTPCore {self.vendor.name} {self.account} {self.base_url}>"

    # -- limits ------------------------------------------------------------

    def _make_buckets(
        self, credential_id: str, overrides: RateLimitsOption
    ) -> dict[str, Bucket | None]:
        limits: dict[str, tuple[RateLimit, ...]] = dict(self.vendor.limits)
        for name, value in overrides.items():
            if value is None:
                limits.pop(name, None)
            elif isinstance(value, RateLimit):
                limits[name] = (value,)
            else:
                limits[name] = tuple(value)
                if not all(isinstance(v, RateLimit) for v in limits[name]):
                    raise errors.UsageError(f"rate_limits[{name!r}] must hold RateLimit values")
        self._limits = limits
        fingerprint = _credential_fingerprint(self.base_url, credential_id)
        self.bucket_prefix = f"{self.vendor.name}:{fingerprint}:"
        return {
            name: Bucket(self.bucket_prefix + name, value) for name, value in limits.items()
        }

    def bucket(self, operation: str) -> Bucket | None:
        """The bucket a route's operation draws from, or None if unlimited."""
        bucket = self._buckets.get(operation)
        return bucket if bucket is not None else self._buckets.get("*")

    @property
    def limiter(self) -> Limiter:
        """The limiter in use (the event loop's shared one unless one was given)."""
        if self._limiter is None:
            self._limiter = shared_local_limiter()
        return self._limiter

    # -- session -----------------------------------------------------------

    def _open(self) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(limit=self._connector_limit, ttl_dns_cache=300)
        self._session = aiohttp.ClientSession(
            connector=connector,
            # Sent with every request without merging per-request headers each time.
            headers=self._headers,
            cookie_jar=aiohttp.DummyCookieJar(),  # never keep a vendor's session cookie
            raise_for_status=False,
        )
        self._owns_session = True
        return self._session

    async def aclose(self) -> None:
        """Close the session if this core opened it; a borrowed one stays open."""
        session, self._session = self._session, None
        if session is not None and self._owns_session and not session.closed:
            await session.close()
        if not self._owns_session:
            self._session = session

    # -- requests ----------------------------------------------------------

    async def request(
        self,
        route: Route,
        params: Mapping[str, str] | None = None,
        *,
        query: Mapping[str, str | int] | None = None,
        json_body: Any = None,
    ) -> Response:
        """Send ``route`` with retries and limits; return a 2xx response or raise.

        Raises:
            APIError: (a subclass by status) for non-2xx answers.
            TransportError: when the request could not complete.
            ResponseTooLargeError: when the body exceeds the bound.
        """
        path = route.render(params) if params else route.path
        url = URL(self.base_url + path, encoded=True)
        data = None if json_body is None else json.dumps(json_body).encode()
        try:
            if self._deadline is not None:
                async with asyncio.timeout(self._deadline):
                    return await self._send(route, url, query, data)
            # _send inlined: one coroutine less on the path every request takes.
            started = time.monotonic()
            try:
                return await self._attempt(route, url, query, data)
            except _Retry as failure:
                first = failure
            return await self._retry(first, started, route=route, url=url, query=query, data=data)
        except _Retry as failed:
            raise failed.error from None
        except TimeoutError:
            message = f"no answer within the {self._deadline} s deadline"
            raise self._transport(route, message) from None

    async def request_json(
        self,
        route: Route,
        params: Mapping[str, str] | None = None,
        *,
        query: Mapping[str, str | int] | None = None,
        json_body: Any = None,
    ) -> Any:
        """Like :meth:`request`, returning the decoded JSON (None for an empty body)."""
        response = await self.request(route, params, query=query, json_body=json_body)
        return self.decode(route, response)

    def decode(self, route: Route, response: Response) -> Any:
        """Decode a JSON body or raise ``ResponseFormatError`` (None for an empty body)."""
        body = response.body
        if not body.strip():
            return None
        try:
            return _json_loads(body)  # decode_json's parser, minus a call per response
        except ValueError:
            message = "the response body is not valid JSON"
            raise self.format_error(route.operation, message) from None

    def format_error(self, operation: str, message: str) -> errors.ResponseFormatError:
        """A ``ResponseFormatError`` carrying this provider's context."""
        return errors.ResponseFormatError(
            message, provider=self.vendor.name, account=self.account, operation=operation
        )

    def _transport(self, route: Route, message: str) -> errors.TransportError:
        return errors.TransportError(
            message, provider=self.vendor.name, account=self.account, operation=route.operation
        )

    async def _send(
        self, route: Route, url: URL, query: Mapping[str, str | int] | None, data: bytes | None
    ) -> Response:
        """The first attempt, then backoff's retry loop if it failed.

        The first attempt goes out directly, because backoff's bookkeeping (clock
        reads, a wait generator, handler coroutines) would cost every request a
        few microseconds and most requests succeed. After a failure, backoff runs
        its usual loop, whose first "attempt" replays that failure: tries, waits
        and handlers are those of a loop run from the start, and the time budget
        is what is left of ``max_total`` since the first send.
        """
        started = time.monotonic()
        try:
            return await self._attempt(route, url, query, data)
        except _Retry as failure:
            first = failure
        return await self._retry(first, started, route=route, url=url, query=query, data=data)

    async def _retry(
        self,
        failed: _Retry,
        started: float,
        *,
        route: Route,
        url: URL,
        query: Mapping[str, str | int] | None,
        data: bytes | None,
    ) -> Response:
        """Backoff's loop after a first attempt that began at ``started`` failed."""
        policy = self.retry_policy
        if policy.max_retries == 0:
            raise failed
        first: _Retry | None = failed

        async def attempt(
            route: Route, url: URL, query: Mapping[str, str | int] | None, data: bytes | None
        ) -> Response:
            nonlocal first
            if first is not None:
                failure, first = first, None
                raise failure
            return await self._attempt(route, url, query, data)

        retrying = backoff.on_exception(
            policy.waits,
            _Retry,
            max_tries=policy.max_retries + 1,
            max_time=policy.max_total - (time.monotonic() - started),
            jitter=None,
            on_backoff=self._log_backoff,
            logger=None,  # backoff's own logger would print call arguments
        )(attempt)
        response: Response = await retrying(route, url, query, data)
        return response

    async def _attempt(
        self, route: Route, url: URL, query: Mapping[str, str | int] | None, data: bytes | None
    ) -> Response:
        session = self._session
        if session is None or session.closed:
            session = self._open()
        bucket = self.bucket(route.operation)
        # A session of our own carries our headers already (see _open); a borrowed one not.
        headers = None if self._owns_session else self._headers
        if data is not None:
            headers = {**(headers or {}), "Content-Type": "application/json"}
        started = time.monotonic()
        self.stats.requests += 1
        # The slot is entered and left by hand rather than with ``async with``: the
        # waiters count needs no wrapper, and the in-process limiter's slot is taken
        # and given back without a coroutine when it has room (the usual case).
        slot: AbstractAsyncContextManager[None] | None = None
        local: _LocalBucket | None = None
        if bucket is not None:
            slot = self.limiter.slot(bucket)
            if type(slot) is _LocalBucket and slot.enter_now():
                local = slot
            else:
                await self._wait_for(slot)
        try:
            try:
                async with session.request(
                    route.method,
                    url,
                    params=query,
                    data=data,
                    headers=headers,
                    timeout=self._timeout,
                    allow_redirects=False,
                ) as raw:
                    length = raw.content_length
                    body = (
                        await raw.read()  # what _read does first, without its coroutine
                        if length is not None
                        and length <= self._max_body
                        and "Content-Encoding" not in raw.headers
                        else await self._read(route, raw)
                    )
                    response = Response(raw.status, raw.headers, body)
            except BaseException as exc:
                # Released even when cancelled: the request may have reached the vendor.
                if local is not None:
                    local.leave()
                elif slot is not None:
                    await slot.__aexit__(type(exc), exc, exc.__traceback__)
                raise
            if local is not None:
                local.leave()
            elif slot is not None:
                await slot.__aexit__(None, None, None)
        except aiohttp.ClientConnectorCertificateError:
            raise self._transport(route, "TLS certificate verification failed") from None
        except aiohttp.ClientConnectorError as exc:
            # The connection was never made, so nothing was sent: safe to retry any method.
            error = self._transport(route, f"cannot connect: {_describe(exc)}")
            raise _Retry(error, None) from None
        except (aiohttp.ClientError, TimeoutError) as exc:
            error = self._transport(route, _describe(exc))
            if route.idempotent:
                raise _Retry(error, None) from None
            raise error from None
        if logger.isEnabledFor(logging.DEBUG):
            self._log_response(route, url, response, started)
        if response.status < 300:
            if bucket is not None and (pause := parse_rate_limit_reset(response.headers)):
                await self.limiter.pause(bucket, pause)
            return response
        await self._fail(route, response, bucket)

    async def _wait_for(self, slot: AbstractAsyncContextManager[None]) -> None:
        # Enter a limiter slot that may make us wait, counted in the stats meanwhile.
        self.stats.waiting += 1
        try:
            await slot.__aenter__()
        finally:
            self.stats.waiting -= 1

    def _log_response(self, route: Route, url: URL, response: Response, started: float) -> None:
        logger.debug(
            "%s %s -> %d (%.1f ms) [%s]",
            route.method,
            url.path if route.log_params else route.path,
            response.status,
            (time.monotonic() - started) * 1000,
            self.account,
        )

    async def _fail(self, route: Route, response: Response, bucket: Bucket | None) -> NoReturn:
        error = error_from_response(
            response,
            trace_headers=self.vendor.trace_headers,
            provider=self.vendor.name,
            account=self.account,
            operation=route.operation,
        )
        status = response.status
        if isinstance(error, errors.RateLimitError):
            self.stats.throttled += 1
            # The vendor refused before acting, so even POST may be retried. The
            # pause applies to every caller of the bucket; the retry then waits in it.
            if bucket is None:
                raise _Retry(error, error.retry_after)
            pause = error.retry_after
            if pause is None:
                pause = self.retry_policy.backoff(1)
            await self.limiter.pause(bucket, pause)
            if pause > self.retry_policy.max_total:
                raise error  # the vendor asks for longer than this call may take
            raise _Retry(error, None)
        if (
            route.idempotent
            and route.retry_server_errors
            and status in self.retry_policy.retry_statuses
        ):
            raise _Retry(error, parse_retry_after(response.headers.get("Retry-After")))
        raise error

    async def _read(self, route: Route, raw: aiohttp.ClientResponse) -> bytes:
        length = raw.content_length
        if length is not None:
            if length > self._max_body:
                raise self._too_large(route)
            # Content-Length bounds the body only when it is not compressed: a
            # compressed body is counted below as aiohttp inflates it.
            if "Content-Encoding" not in raw.headers:
                return await raw.read()
        chunks: list[bytes] = []
        size = 0
        async for chunk in raw.content.iter_any():
            size += len(chunk)
            if size > self._max_body:
                raise self._too_large(route)
            chunks.append(chunk)
        return b"".join(chunks)

    def _too_large(self, route: Route) -> errors.ResponseTooLargeError:
        return errors.ResponseTooLargeError(
            f"response larger than max_response_bytes={self._max_body}",
            provider=self.vendor.name,
            account=self.account,
            operation=route.operation,
        )

    def _log_backoff(self, details: Any) -> None:
        self.stats.retries += 1
        failure = details["exception"]
        route: Route = details["args"][0]
        logger.debug(
            "retrying %s %s in %.2f s after %s (attempt %d) [%s]",
            route.method,
            route.path,
            details["wait"],
            type(failure.error).__name__,
            details["tries"],
            self.account,
        )


def _describe(exc: BaseException) -> str:
    # Connection errors name host and port only; never include request headers.
    if isinstance(exc, TimeoutError):
        return "timed out waiting for the response"
    if isinstance(exc, aiohttp.ClientConnectorError):
        return f"{exc.host}:{exc.port} ({exc.os_error.strerror or type(exc.os_error).__name__})"
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return "server disconnected"
    if isinstance(exc, aiohttp.ClientPayloadError):
        return "response body incomplete"
    return type(exc).__name__


def fail_unsupported(provider: str, account: str, capability: str) -> NoReturn:
    """Raise ``UnsupportedOperation`` for a capability the vendor lacks."""
    raise errors.UnsupportedOperation(
        f"{provider} has no {capability} operation",
        provider=provider,
        account=account,
        operation=capability,
    )

