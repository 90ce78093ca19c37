"""The vendor-neutral HTTP core: session, auth, limits, retries, error mapping.

A vendor module declares a :class:`VendorSpec` and :class:`Route` values and
maps payloads; everything that touches the network happens here, once.
Foreign exceptions (aiohttp, asyncio timeouts, JSON) become
``runnerhub.errors`` here and nowhere else.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import math
import time
from collections.abc import Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any, Final, NoReturn, TypedDict

import aiohttp
import attrs
import backoff
from yarl import URL

from . import errors
from ._sansio import (
    ErrorInfo,
    ErrorParser,
    Redactor,
    Response,
    Route,
    check_base_url,
    check_header_value,
    decode_json,
    encode_segment,
    error_from_response,
    no_error_info,
)
from ._sansio import json_loads as _json_loads
from .limits import (
    Bucket,
    Limiter,
    RateLimit,
    _LocalBucket,  # the default limiter's slot, for its await-free path
    shared_local_limiter,
)
from .retry import RetryPolicy, parse_rate_limit_reset, parse_retry_after

__all__ = [
    "ClientOptions",
    "ClientStats",
    "ErrorInfo",
    "HTTPCore",
    "Response",
    "Route",
    "VendorSpec",
    "check_base_url",
    "check_header_value",
    "decode_json",
    "encode_segment",
    "error_from_response",
]

logger: Final = logging.getLogger("runnerhub")

DEFAULT_TIMEOUT: Final = 30.0
DEFAULT_MAX_RESPONSE_BYTES: Final = 16 * 1024 * 1024
DEFAULT_CONNECTOR_LIMIT: Final = 64
_USER_AGENT: Final = "runnerhub/0.1"

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
        parse_error: Reads the vendor's error bodies
            (``(status, headers, body) -> ErrorInfo``); the core parses none.
    """

    name: str
    limits: Mapping[str, tuple[RateLimit, ...]]
    trace_headers: tuple[str, ...] = ()
    parse_error: ErrorParser = no_error_info


def _credential_fingerprint(*parts: str) -> str:
    # Identifies the credential in bucket keys and logs without revealing it.
    digest = hashlib.sha256("\0".join(parts).encode()).hexdigest()
    return digest[:16]


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
        # Every form of the credentials, removed from any vendor text an error carries.
        self.redact = Redactor.for_headers(auth_headers)
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
            self.redact(message),
            provider=self.vendor.name,
            account=self.account,
            operation=operation,
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
            if route.idempotent:
                raise _Retry(self._transport(route, _describe(exc)), None) from None
            # Sent, perhaps acted upon, and never repeated: say that the outcome is unknown.
            raise errors.OutcomeUnknownTransportError(
                f"{_describe(exc)}; the request was sent and may have taken effect",
                provider=self.vendor.name,
                account=self.account,
                operation=route.operation,
            ) from None
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
            parse_error=self.vendor.parse_error,
            redact=self.redact,
            idempotent=route.idempotent,
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

