"""The vendor-neutral HTTP core: session, auth, limits, retries, error mapping.

A vendor module declares a :class:`VendorSpec` and :class:`Route` values and
maps payloads; everything that touches the network happens here, once.
Foreign exceptions (aiohttp, asyncio timeouts, JSON) become
``runnerhub.errors`` here and nowhere else.
"""

from __future__ import annotations

import asyncio
import collections
import functools
import hashlib
import json
import logging
import math
import time
import weakref
from collections.abc import Callable, Coroutine, Mapping, Sequence
from typing import Any, Final, NoReturn, TypedDict

import aiohttp
import attrs
from yarl import URL

from . import errors
from ._limits import (
    ABANDON_HOLD,
    Bucket,
    BucketPaused,
    Budget,
    Limiter,
    RateLimit,
    Slot,
    bucket_scope,
    shared_local_limiter,
)
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
from .hooks import Hooks
from .retry import Failure, RetryPolicy, decide_retry, parse_retry_after, ratelimit_budget

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


SessionOption = aiohttp.ClientSession | Callable[[], aiohttp.ClientSession]


class ClientOptions(TypedDict, total=False):
    """Keywords every provider accepts (see the provider classes for meanings).

    ``session`` is borrowed, never closed by the provider: an
    ``aiohttp.ClientSession``, or a zero-argument callable returning one (such as
    :class:`runnerhub.SessionPool`), called at the first request and again
    whenever the session it returned has been closed.
    """

    base_url: str
    account: str
    session: SessionOption
    rate_limits: RateLimitsOption
    limit_key: str
    hooks: Hooks
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
        limits: Default limits by bucket name. A route draws from every
            bucket that applies: the one named after its operation, those
            named in ``Route.buckets``, and the key-wide ``"*"``.
        trace_headers: Response headers that carry the vendor's trace id.
        parse_error: Reads the vendor's error bodies
            (``(status, headers, body) -> ErrorInfo``); the core parses none.
        read_budget: Reads the budget a vendor announces in a response's
            headers (None: the vendor announces none); kept on the ``"*"``
            bucket, or on the route's own buckets when there is no ``"*"``.
    """

    name: str
    limits: Mapping[str, tuple[RateLimit, ...]]
    trace_headers: tuple[str, ...] = ()
    parse_error: ErrorParser = no_error_info
    read_budget: Callable[[Mapping[str, str]], Budget | None] | None = ratelimit_budget


def _credential_fingerprint(*parts: str) -> str:
    # Identifies the credential in bucket keys and logs without revealing it.
    digest = hashlib.sha256("\0".join(parts).encode()).hexdigest()
    return digest[:16]


class _Failed(Exception):
    """A failed attempt: the error to raise and what :func:`decide_retry` needs."""

    def __init__(
        self,
        error: errors.RunnerHubError,
        failure: Failure,
        *,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(error.message)
        self.error = error
        self.failure = failure
        self.status = status
        self.retry_after = retry_after


@attrs.define
class ClientStats:
    """Counters of one provider's traffic, for progress displays.

    Attributes:
        requests: Attempts sent (retries included).
        retries: Attempts that were retries.
        throttled: Rate-limit refusals received (429s).
        waiting: Requests waiting for a rate-limit slot right now.
    """

    requests: int = 0
    retries: int = 0
    throttled: int = 0
    waiting: int = 0


class _Gate:
    """The connection capacity of one session, waited for before the per-attempt clock starts.

    At most ``size`` requests hold a permit, so the session's connector (of
    that limit) always has a connection for a request that holds one.
    """

    __slots__ = ("__weakref__", "_free", "_waiters")

    def __init__(self, size: int) -> None:
        self._free = size
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()

    def try_take(self) -> bool:
        if self._free > 0 and not self._waiters:
            self._free -= 1
            return True
        return False

    async def take(self) -> None:
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.give()  # handed over just as we were cancelled: pass it on
            else:
                self._waiters.remove(waiter)
            raise

    def give(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self._free += 1


_gates: weakref.WeakKeyDictionary[aiohttp.ClientSession, _Gate | None] = weakref.WeakKeyDictionary()


def _gate(session: aiohttp.ClientSession) -> _Gate | None:
    # One gate per session, shared by every provider using it; None when unbounded.
    try:
        return _gates[session]
    except KeyError:
        pass
    connector = session.connector
    sizes = [n for n in (connector.limit, connector.limit_per_host) if n] if connector else []
    gate = _gates[session] = _Gate(min(sizes)) if sizes else None
    return gate


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


_REDIRECTS: Final = frozenset({301, 302, 307, 308})
_MAX_REDIRECTS: Final = 3
_DEFAULT_PORTS: Final = {"http": 80, "https": 443}


# Frozen values that providers with the same options share: 10,000 accounts, one copy.
_DEFAULT_RETRY: Final = RetryPolicy()


@functools.lru_cache(maxsize=16)
def _wire_timeout(timeout: float) -> aiohttp.ClientTimeout:
    return aiohttp.ClientTimeout(total=None, connect=None, sock_connect=timeout, sock_read=None)


class HTTPCore:
    """One provider's HTTP client: it owns (or borrows) a session and sends every request.

    Args:
        vendor: The vendor's declaration.
        auth_headers: Headers that authenticate every request; kept out of
            ``repr`` and logs.
        credential_id: A non-secret string that identifies the credential
            (hashed into bucket keys unless ``limit_key`` is given).
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
        unknown = set(options) - ClientOptions.__optional_keys__
        if unknown:
            raise errors.UsageError(f"unknown option(s): {', '.join(sorted(unknown))}")
        given = options.get("session")
        # A borrowed session (or the callable that makes one) is never closed here.
        self._session_factory: Callable[[], aiohttp.ClientSession] | None = None
        self._session: aiohttp.ClientSession | None = None
        if given is None:
            self._owns_session = True
        elif isinstance(given, aiohttp.ClientSession):
            self._session, self._owns_session = given, False
        elif callable(given):
            self._session_factory, self._owns_session = given, False
        else:
            raise errors.UsageError("session must be an aiohttp.ClientSession or a callable")
        self._limiter = options.get("limiter")
        timeout = float(options.get("timeout", DEFAULT_TIMEOUT))
        if not timeout > 0:
            raise errors.UsageError(f"timeout must be > 0 seconds, got {timeout!r}")
        self._timeout = timeout
        # Connecting is bounded by aiohttp; the answer by our own timer (see _attempt);
        # waiting for a pooled connection by neither (see _Gate).
        self._wire_timeout = _wire_timeout(timeout)
        self._deadline = options.get("deadline")
        if self._deadline is not None and not 0 < self._deadline < math.inf:
            raise errors.UsageError(f"deadline must be > 0 seconds, got {self._deadline!r}")
        self._max_body = int(options.get("max_response_bytes", DEFAULT_MAX_RESPONSE_BYTES))
        if self._max_body < 1:
            raise errors.UsageError("max_response_bytes must be at least 1")
        self._connector_limit = int(options.get("connector_limit", DEFAULT_CONNECTOR_LIMIT))
        if "connector_limit" in options and not self._owns_session:
            raise errors.UsageError(
                "connector_limit sizes a session the provider opens; a session given "
                "with session= keeps its own connector's limits"
            )
        policy = options.get("retry") or _DEFAULT_RETRY
        if "max_retries" in options:
            policy = attrs.evolve(policy, max_retries=options["max_retries"])
        self.retry_policy = policy
        self._hooks: Hooks | None = options.get("hooks")
        self.stats = ClientStats()
        limit_key = options.get("limit_key")
        if limit_key is not None and (not isinstance(limit_key, str) or not limit_key):
            raise errors.UsageError("limit_key must be a non-empty string")
        self._buckets = self._make_buckets(
            limit_key or credential_id, options.get("rate_limits") or {}
        )
        self._route_buckets: dict[tuple[str, tuple[str, ...]], tuple[Bucket, ...]] = {}
        self._abandoned: set[asyncio.Task[Response]] = set()
        self._gated: aiohttp.ClientSession | None = None  # the session _gate belongs to
        self._gate: _Gate | None = None
        self._pause_warned: dict[str, float] = {}

    def __repr__(self) -> str:
        return f"<HTTPCore {self.vendor.name} {self.account} {self.base_url}>"

    # -- limits ------------------------------------------------------------

    def _make_buckets(self, scope_key: str, overrides: RateLimitsOption) -> dict[str, Bucket]:
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
        self.bucket_prefix = bucket_scope(self.vendor.name, self.base_url, scope_key)
        return {name: Bucket(self.bucket_prefix + name, value) for name, value in limits.items()}

    @property
    def limits(self) -> Mapping[str, tuple[RateLimit, ...]]:
        """The limits in force by bucket name: vendor defaults with ``rate_limits`` applied."""
        return self._limits

    def bucket(self, operation: str) -> Bucket | None:
        """The operation's own bucket, else the key-wide ``"*"`` one, else None."""
        bucket = self._buckets.get(operation)
        return bucket if bucket is not None else self._buckets.get("*")

    def buckets(self, route: Route) -> tuple[Bucket, ...]:
        """Every bucket ``route`` draws from: its operation's, its extra ones, then ``"*"``.

        The order is the same for every route, so that requests holding one
        slot while waiting for the next can never wait on each other in a cycle.
        """
        cache_key = (route.operation, route.buckets)
        found = self._route_buckets.get(cache_key)
        if found is None:
            names = [route.operation, *sorted(set(route.buckets) - {route.operation, "*"}), "*"]
            found = tuple(self._buckets[name] for name in names if name in self._buckets)
            self._route_buckets[cache_key] = found
        return found

    @property
    def limiter(self) -> Limiter:
        """The limiter in use (the event loop's shared one unless one was given)."""
        if self._limiter is None:
            self._limiter = shared_local_limiter()
        return self._limiter

    # -- session -----------------------------------------------------------

    def _open(self) -> aiohttp.ClientSession:
        # Called when there is no usable session: ask the caller's callable, or open one.
        if self._session_factory is not None:
            session = self._session_factory()
            if not isinstance(session, aiohttp.ClientSession) or session.closed:
                raise errors.UsageError(
                    "the session callable must return an open aiohttp.ClientSession"
                )
            self._session = session
            return session
        if not self._owns_session:
            # The caller closed the session it gave: one opened here would never be closed.
            raise errors.UsageError("the session given to this provider is closed")
        connector = aiohttp.TCPConnector(limit=self._connector_limit, ttl_dns_cache=300)
        self._session = aiohttp.ClientSession(
            connector=connector,
            # Sent with every request without merging per-request headers each time.
            headers=self._headers,
            cookie_jar=aiohttp.DummyCookieJar(),  # never keep a vendor's session cookie
            raise_for_status=False,
        )
        return self._session

    async def aclose(self) -> None:
        """Stop requests still held after a timeout; close the session if this core opened it."""
        abandoned = list(self._abandoned)
        for task in abandoned:
            task.cancel()
        if abandoned:
            await asyncio.gather(*abandoned, return_exceptions=True)
        session, self._session = self._session, None
        if session is not None and self._owns_session and not session.closed:
            await session.close()
        if not self._owns_session and self._session_factory is None:
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
            APIError: (a subclass by status) for non-2xx answers; RateLimitError
                at once when the vendor closed the bucket for longer than this
                call's budget (``retry_after`` set).
            TransportError: when the request could not complete.
            ResponseTooLargeError: when the body exceeds the bound.
        """
        path = route.render(params) if params else route.path
        url = URL(self.base_url + path, encoded=True)
        data = None if json_body is None else json.dumps(json_body).encode()
        if self._deadline is None:
            return await self._call(route, url, query, data)
        phase = ["a rate-limit slot"]  # what the call waits for; updated as it goes
        try:
            async with asyncio.timeout(self._deadline):
                return await self._call(route, url, query, data, phase)
        except TimeoutError:
            message = f"no answer within the {self._deadline} s deadline (waiting for {phase[0]})"
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

    def _sent_failure(self, route: Route, message: str) -> errors.TransportError:
        # A request that went on the wire and got no (whole) answer. Repeatable ones are
        # retried; for the others (POST) the vendor may have acted: the outcome is unknown.
        if route.idempotent:
            return self._transport(route, message)
        return errors.OutcomeUnknownTransportError(
            f"{message}; the request was sent and may have taken effect",
            provider=self.vendor.name,
            account=self.account,
            operation=route.operation,
        )

    def _transport(self, route: Route, message: str) -> errors.TransportError:
        return errors.TransportError(
            message, provider=self.vendor.name, account=self.account, operation=route.operation
        )

    async def _call(
        self,
        route: Route,
        url: URL,
        query: Mapping[str, str | int] | None,
        data: bytes | None,
        phase: list[str] | None = None,
    ) -> Response:
        """Attempts until one succeeds or :func:`decide_retry` says raise; follows redirects."""
        started = time.monotonic()
        attempt = redirects = 0
        while True:
            attempt += 1
            try:
                response = await self._attempt(
                    route, url, query, data, started=started, phase=phase
                )
            except _Failed as failed:
                decision = decide_retry(
                    failed.failure,
                    idempotent=route.idempotent,
                    attempt=attempt,
                    elapsed=time.monotonic() - started,
                    policy=self.retry_policy,
                    status=failed.status,
                    retry_after=failed.retry_after,
                    budget=self._deadline,
                )
                if not decision.retry:
                    raise failed.error from None
                self._note_retry(route, failed, decision.wait, attempt)
                if phase is not None:
                    phase[0] = "a retry back-off"
                await asyncio.sleep(decision.wait)
                continue
            if response.status < 300:
                return response
            url = self._redirect(route, url, response, redirects)
            redirects += 1
            attempt -= 1  # a followed redirect is not a failed attempt

    def _budget_left(self, started: float) -> float:
        limit = self.retry_policy.max_total
        if self._deadline is not None:
            limit = min(limit, self._deadline)
        return limit - (time.monotonic() - started)

    async def _wait_for_connection(
        self, gate: _Gate, slots: list[Slot], phase: list[str] | None
    ) -> None:
        # Bounded by the deadline only: the attempt's clock has not started.
        if phase is not None:
            phase[0] = "a pooled connection"
        try:
            await gate.take()
        except BaseException:
            for slot in slots:
                slot.withdraw()
            raise

    async def _enter(
        self,
        route: Route,
        buckets: tuple[Bucket, ...],
        started: float,
        phase: list[str] | None = None,
    ) -> list[Slot]:
        # Slots of every bucket, in the buckets' fixed order; waiting ones counted in stats.
        if phase is not None:
            phase[0] = "a rate-limit slot"
        limiter = self.limiter
        slots: list[Slot] = []
        waited = 0.0
        try:
            for bucket in buckets:
                slot = limiter.try_enter(bucket)
                if slot is None:
                    began = time.monotonic()
                    self.stats.waiting += 1
                    try:
                        slot = await limiter.enter(bucket, max_wait=self._budget_left(started))
                    finally:
                        self.stats.waiting -= 1
                    waited += time.monotonic() - began
                slots.append(slot)
        except BucketPaused as paused:
            for slot in slots:
                slot.withdraw()
            raise self._paused_error(route, paused.seconds) from None
        except BaseException:
            for slot in slots:
                slot.withdraw()
            raise
        if self._hooks is not None:
            self._hooks.on_limiter_wait(self.vendor.name, self.account, route.operation, waited)
        return slots

    def _launch(
        self,
        loop: asyncio.AbstractEventLoop,
        exchange: Callable[[asyncio.Future[None]], Coroutine[Any, Any, Response]],
    ) -> tuple[asyncio.Task[Response], asyncio.Future[None], asyncio.TimerHandle]:
        # The exchange as a task, and a waiter it sets as its last act (a loop turn
        # sooner than a done-callback would), unless the timeout sets it first.
        waiter: asyncio.Future[None] = loop.create_future()
        task = loop.create_task(exchange(waiter))
        return task, waiter, loop.call_later(self._timeout, _wake, waiter)

    def _gate_for(self, session: aiohttp.ClientSession) -> _Gate | None:
        self._gated, self._gate = session, _gate(session)
        return self._gate

    def _paused_error(self, route: Route, seconds: float) -> errors.RateLimitError:
        error = errors.RateLimitError(
            f"the vendor closed this bucket for {seconds:.0f} s more, "
            "longer than this call may wait",
            status=429,
            provider=self.vendor.name,
            account=self.account,
            operation=route.operation,
        )
        error.retry_after = seconds
        return error

    async def _attempt(
        self,
        route: Route,
        url: URL,
        query: Mapping[str, str | int] | None,
        data: bytes | None,
        *,
        started: float,
        phase: list[str] | None,
    ) -> Response:
        """One attempt: slots, a connection, the exchange; a 2xx or 3xx response, or _Failed.

        ``phase[0]`` (when given) names what the attempt is waiting for.
        """
        session = self._session
        if session is None or session.closed:
            session = self._open()
        buckets = self.buckets(route)
        slots: list[Slot] = []
        if buckets:
            # The usual case inline: one bucket with room, no coroutine to await.
            slot = self.limiter.try_enter(buckets[0]) if len(buckets) == 1 else None
            if slot is None:
                slots = await self._enter(route, buckets, started, phase)
            else:
                slots.append(slot)
                if self._hooks is not None:
                    hooks, name = self._hooks, self.vendor.name
                    hooks.on_limiter_wait(name, self.account, route.operation, 0.0)
        gate = self._gate if session is self._gated else self._gate_for(session)
        if gate is not None and not gate.try_take():
            await self._wait_for_connection(gate, slots, phase)
        # A session of our own carries our headers already (see _open); a borrowed one not.
        headers = None if self._owns_session else self._headers
        if data is not None:
            headers = {**(headers or {}), "Content-Type": "application/json"}
        self.stats.requests += 1
        loop = asyncio.get_running_loop()
        sent = loop.time()
        # The exchange runs as its own task so that a timeout releases the caller while the
        # request keeps its slots (and connection) until the vendor answers: the vendor may
        # still count it, and only its answer tells when.
        exchange, waiter, timer = self._launch(
            loop,
            functools.partial(
                self._exchange,
                session=session,
                route=route,
                url=url,
                query=query,
                data=data,
                headers=headers,
                slots=slots,
                buckets=buckets,
                gate=gate,
            ),
        )
        if phase is not None:
            phase[0] = "the response"
        try:
            await waiter
        except asyncio.CancelledError:
            # The caller gave up: the request ends with it (its slots are stamped now).
            exchange.cancel()
            raise
        finally:
            timer.cancel()
        if not exchange.done():
            self._abandon(exchange, loop)
            self._note_attempt(route, "error", loop.time() - sent)
            message = f"no response within the {self._timeout:g} s timeout"
            raise _Failed(self._sent_failure(route, message), Failure.TRANSPORT) from None
        response = self._outcome(route, exchange, loop.time() - sent)
        if logger.isEnabledFor(logging.DEBUG):
            self._log_response(route, url, response, sent)
        if response.status < 300 or (
            response.status in _REDIRECTS and "Location" in response.headers
        ):
            return response
        await self._fail(route, response, buckets, started)

    def _outcome(self, route: Route, exchange: asyncio.Task[Response], seconds: float) -> Response:
        # The finished exchange's response, or its failure mapped to our errors.
        try:
            response = exchange.result()
        except aiohttp.ClientConnectorCertificateError:
            self._note_attempt(route, "error", seconds)
            raise self._transport(route, "TLS certificate verification failed") from None
        except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError) as exc:
            # The connection was never made, so nothing was sent: safe to retry any method.
            self._note_attempt(route, "error", seconds)
            reason = (
                f"no connection within the {self._timeout:g} s timeout"
                if isinstance(exc, aiohttp.ConnectionTimeoutError)
                else _describe(exc)
            )
            error = self._transport(route, f"cannot connect: {reason}")
            raise _Failed(error, Failure.CONNECT) from None
        except (aiohttp.ClientError, TimeoutError) as exc:
            self._note_attempt(route, "error", seconds)
            error = self._sent_failure(route, _describe(exc))
            raise _Failed(error, Failure.TRANSPORT) from None
        except errors.RunnerHubError:  # a body over max_response_bytes
            self._note_attempt(route, "error", seconds)
            raise
        if self._hooks is not None:
            self._note_attempt(route, str(response.status), seconds)
        return response

    async def _exchange(
        self,
        waiter: asyncio.Future[None],
        *,
        session: aiohttp.ClientSession,
        route: Route,
        url: URL,
        query: Mapping[str, str | int] | None,
        data: bytes | None,
        headers: Mapping[str, str] | None,
        slots: list[Slot],
        buckets: tuple[Bucket, ...],
        gate: _Gate | None,
    ) -> Response:
        """Send and read the whole answer; give back the slots and the connection permit.

        Sets ``waiter`` when it ends, however it ends.
        """
        try:
            return await self._exchange_once(
                session, route, url, query, data, headers=headers, slots=slots, buckets=buckets
            )
        finally:
            if gate is not None:
                gate.give()
            _wake(waiter)

    async def _exchange_once(
        self,
        session: aiohttp.ClientSession,
        route: Route,
        url: URL,
        query: Mapping[str, str | int] | None,
        data: bytes | None,
        *,
        headers: Mapping[str, str] | None,
        slots: list[Slot],
        buckets: tuple[Bucket, ...],
    ) -> Response:
        try:
            async with session.request(
                route.method,
                url,
                params=query,
                data=data,
                headers=headers,
                timeout=self._wire_timeout,
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
        except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError):
            for slot in slots:
                slot.withdraw()  # never sent
            raise
        except BaseException:
            # Stamped even when cancelled: the request may have reached the vendor.
            for slot in slots:
                slot.release()
            raise
        for slot in slots:
            if (stamping := slot.release()) is not None:
                await stamping
        read_budget = self.vendor.read_budget
        if read_budget is not None and buckets:
            budget = read_budget(response.headers)
            if budget is not None:
                self._set_budget(buckets, budget)
        return response

    def _set_budget(self, buckets: tuple[Bucket, ...], budget: Budget) -> None:
        # A vendor's budget is key-wide: kept on "*" when the vendor has that bucket,
        # else on the route's own buckets.
        key_wide = self._buckets.get("*")
        for bucket in (key_wide,) if key_wide is not None else buckets:
            self.limiter.set_budget(bucket, budget)

    def _abandon(self, exchange: asyncio.Task[Response], loop: asyncio.AbstractEventLoop) -> None:
        # Timed out: the exchange keeps its slots until the answer comes or the hold ends.
        self._abandoned.add(exchange)
        hold = loop.call_later(ABANDON_HOLD, exchange.cancel)

        def done(task: asyncio.Task[Response]) -> None:
            hold.cancel()
            self._abandoned.discard(task)
            if not task.cancelled():
                task.exception()  # retrieved: its caller has already been answered

        exchange.add_done_callback(done)

    def _note_attempt(self, route: Route, code: str, seconds: float) -> None:
        if self._hooks is not None:
            self._hooks.on_attempt(self.vendor.name, self.account, route.operation, code, seconds)

    def _note_retry(self, route: Route, failed: _Failed, wait: float, attempt: int) -> None:
        self.stats.retries += 1
        if self._hooks is not None:
            self._hooks.on_retry(self.vendor.name, self.account, route.operation)
        logger.debug(
            "retrying %s %s in %.2f s after %s (attempt %d) [%s]",
            route.method,
            route.path,
            wait,
            type(failed.error).__name__,
            attempt,
            self.account,
        )

    def _redirect(self, route: Route, url: URL, response: Response, redirects: int) -> URL:
        """The URL to follow a 3xx to: same origin, at most three hops; else raise."""
        target = url.join(URL(response.headers["Location"]))
        same_origin = (
            target.scheme == url.scheme
            and (target.host or "").lower() == (url.host or "").lower()
            and (target.port or _DEFAULT_PORTS.get(target.scheme))
            == (url.port or _DEFAULT_PORTS.get(url.scheme))
        )
        method_kept = route.method in ("GET", "HEAD") or response.status in (307, 308)
        if same_origin and method_kept and redirects < _MAX_REDIRECTS:
            return target
        if not same_origin:
            # Following would send the credential to another host; the target is not quoted.
            reason = "to another origin"
        elif not method_kept:
            reason = f"that would turn {route.method} into GET"
        else:
            reason = f"more than {_MAX_REDIRECTS} times"
        raise errors.APIError(
            f"redirected {reason}; not followed",
            status=response.status,
            provider=self.vendor.name,
            account=self.account,
            operation=route.operation,
        )

    def _log_response(self, route: Route, url: URL, response: Response, started: float) -> None:
        logger.debug(
            "%s %s -> %d (%.1f ms) [%s]",
            route.method,
            url.path if route.log_params else route.path,
            response.status,
            (asyncio.get_running_loop().time() - started) * 1000,
            self.account,
        )

    async def _fail(
        self, route: Route, response: Response, buckets: tuple[Bucket, ...], started: float
    ) -> NoReturn:
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
            if self._hooks is not None:
                self._hooks.on_rate_limited(self.vendor.name, self.account, route.operation)
            # The vendor refused before acting, so even POST may be retried. The pause
            # applies to every caller of the route's buckets; the retry waits it out too.
            pause = error.retry_after
            if pause is None:
                pause = self.retry_policy.backoff(1)
            await self._pause(route, buckets, pause, started)
            raise _Failed(error, Failure.RATE_LIMITED, status=status, retry_after=pause)
        if status >= 500 and route.retry_server_errors:
            hint = parse_retry_after(response.headers.get("Retry-After"))
            if hint is not None:
                if isinstance(error, errors.ServerError):
                    error.retry_after = hint
                await self._pause(route, buckets, hint, started)
            raise _Failed(error, Failure.SERVER, status=status, retry_after=hint)
        raise _Failed(error, Failure.FATAL, status=status)

    async def _pause(
        self, route: Route, buckets: tuple[Bucket, ...], seconds: float, started: float
    ) -> None:
        for bucket in buckets:
            await self.limiter.pause(bucket, seconds)
        if seconds <= self._budget_left(started):
            return
        # Calls on these buckets will now fail at once instead of waiting; say so once.
        now = time.monotonic()
        key = buckets[0].key if buckets else route.operation
        if self._pause_warned.get(key, -math.inf) > now:
            return
        self._pause_warned[key] = now + seconds
        logger.warning(
            "%s asked to pause %s for %.0f s; calls that cannot wait that long fail "
            "with RateLimitError meanwhile [%s]",
            self.vendor.name,
            route.operation,
            seconds,
            self.account,
        )

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
