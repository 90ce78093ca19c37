"""Named fault switches, applied before auth and limits."""

from __future__ import annotations

import asyncio
import enum
import json
import random
import re
from collections.abc import Iterable, Iterator, Sequence

import attrs
from aiohttp import web

from ._common import Exchange, Handler, Service, html_page

MALFORMED_BODY = b'{"content": ['


class FaultKind(enum.StrEnum):
    """What a fault does to the request it hits."""

    STATUS = "status"
    """Answer ``Fault.status`` with the vendor's error body."""
    LATENCY = "latency"
    """Sleep ``Fault.delay`` (default 0.1 s), then serve normally."""
    STALL = "stall"
    """Send nothing for ``Fault.delay`` (default 30 s), then drop the connection."""
    RESET = "reset"
    """Drop the connection without a response."""
    MALFORMED = "malformed"
    """200 ``application/json`` whose body is not JSON."""
    TRUNCATED = "truncated"
    """200 whose ``Content-Length`` promises more bytes than are sent."""
    WRONG_SHAPE = "wrong_shape"
    """200 with valid JSON of the wrong shape (or ``Fault.body``)."""
    UNKNOWN_ENUM = "unknown_enum"
    """Serve normally with enum values the spec does not list."""
    HTML = "html"
    """A proxy's 502 ``text/html`` page."""


_DEFAULT_DELAY = {FaultKind.LATENCY: 0.1, FaultKind.STALL: 30.0}
# Faults after which the request still reaches auth, limits and the handler.
_PASS_THROUGH = frozenset({FaultKind.LATENCY, FaultKind.UNKNOWN_ENUM})


def _check_probability(_: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{attribute.name} must be within [0, 1], got {value}")


@attrs.frozen
class Fault:
    """One fault rule: which requests it hits and what it does to them.

    Args:
        kind: What to do.
        method: Only this HTTP method (any case); ``None`` for all.
        path: Prefix of the decoded request path, or a compiled regex searched in it;
            the path is the vendor's own, without a ``/{vendor}`` mount prefix.
        vendor: Only requests to this vendor, e.g. ``"soda"``.
        times: Hit only the next ``times`` matching requests; ``None`` for every one.
        probability: Chance that a matching request is hit (seeded by the sandbox).
        status: Status code for ``STATUS``.
        retry_after: ``Retry-After`` header value for ``STATUS``, sent verbatim.
        delay: Seconds for ``LATENCY`` and ``STALL``; ``None`` for their defaults.
        body: JSON body replacing the default for ``STATUS`` and ``WRONG_SHAPE``.
    """

    kind: FaultKind
    method: str | None = attrs.field(default=None, kw_only=True)
    path: str | re.Pattern[str] | None = attrs.field(default=None, kw_only=True)
    vendor: str | None = attrs.field(default=None, kw_only=True)
    times: int | None = attrs.field(default=None, kw_only=True)
    probability: float = attrs.field(default=1.0, kw_only=True, validator=_check_probability)
    status: int = attrs.field(default=503, kw_only=True)
    retry_after: str | None = attrs.field(default=None, kw_only=True)
    delay: float | None = attrs.field(default=None, kw_only=True)
    body: object = attrs.field(default=None, kw_only=True)

    @times.validator
    def _check_times(self, attribute: attrs.Attribute[int | None], value: int | None) -> None:
        if value is not None and value < 1:
            raise ValueError(f"times must be at least 1 or None, got {value}")

    @property
    def seconds(self) -> float:
        """The effective ``delay``."""
        return self.delay if self.delay is not None else _DEFAULT_DELAY.get(self.kind, 0.0)

    def matches(self, vendor: str, method: str, path: str) -> bool:
        """Whether a request falls under this rule, ignoring ``times`` and ``probability``."""
        if self.vendor is not None and self.vendor != vendor:
            return False
        if self.method is not None and self.method.upper() != method:
            return False
        if self.path is None:
            return True
        if isinstance(self.path, str):
            return path.startswith(self.path)
        return self.path.search(path) is not None


@attrs.define(eq=False)
class RandomFaults:
    """Hits a ``rate`` fraction of matching requests with a fault drawn from ``kinds``."""

    rate: float = attrs.field(validator=_check_probability)
    kinds: tuple[FaultKind, ...]
    statuses: tuple[int, ...]
    delay: float
    stall: float
    vendor: str | None = None
    method: str | None = None
    path: str | re.Pattern[str] | None = None
    _rng: random.Random = attrs.field(factory=random.Random, repr=False)
    _scope: Fault = attrs.field(init=False, repr=False)

    def __attrs_post_init__(self) -> None:
        self._scope = Fault(
            FaultKind.STATUS, vendor=self.vendor, method=self.method, path=self.path
        )

    def draw(self, vendor: str, method: str, path: str) -> Fault | None:
        """A fault for this request, or ``None``; the rule's own RNG keeps runs repeatable."""
        if not self._scope.matches(vendor, method, path) or self._rng.random() >= self.rate:
            return None
        kind = self._rng.choice(self.kinds)
        if kind is FaultKind.STATUS:
            return Fault(kind, status=self._rng.choice(self.statuses))
        if kind is FaultKind.STALL:
            return Fault(kind, delay=self.stall)
        return Fault(kind, delay=self.delay)


class FaultSet:
    """The sandbox's active fault rules; the first rule that hits a request wins."""

    def __init__(self, seed: int = 0) -> None:
        self._rules: list[Fault] = []
        self._left: dict[int, int] = {}
        self._random: list[RandomFaults] = []
        self._rng = random.Random(f"faults:{seed}")

    def add(self, fault: Fault) -> Fault:
        """Activate ``fault``; returns it, for :meth:`remove`."""
        self._rules.append(fault)
        if fault.times is not None:
            self._left[id(fault)] = fault.times
        return fault

    def remove(self, fault: Fault | RandomFaults) -> None:
        """Deactivate a rule; ``ValueError`` if it is not active."""
        if isinstance(fault, RandomFaults):
            self._random.remove(fault)
            return
        for i, rule in enumerate(self._rules):
            if rule is fault:
                del self._rules[i]
                self._left.pop(id(fault), None)
                return
        raise ValueError("fault is not active")

    def clear(self) -> None:
        """Deactivate every rule, random ones included."""
        self._rules.clear()
        self._left.clear()
        self._random.clear()

    def random(
        self,
        rate: float = 0.05,
        *,
        seed: int = 7,
        kinds: Iterable[FaultKind] | None = None,
        statuses: Sequence[int] = (500, 502, 503, 504),
        delay: float = 0.05,
        stall: float = 1.0,
        vendor: str | None = None,
        method: str | None = None,
        path: str | re.Pattern[str] | None = None,
    ) -> RandomFaults:
        """Hit a ``rate`` fraction of requests with a random fault, repeatably for ``seed``.

        Args:
            rate: Fraction of matching requests hit, in [0, 1].
            seed: Seeds this rule's own RNG: same requests in the same order, same faults.
            kinds: Kinds to draw from; default ``STATUS``, ``LATENCY``, ``RESET``, ``HTML``
                (all transient, so a retrying client should still succeed).
            statuses: Status codes for ``STATUS``.
            delay: Seconds for ``LATENCY``.
            stall: Seconds for ``STALL``.
            vendor, method, path: Restrict the rule as in :class:`Fault`.

        Returns:
            The rule, for :meth:`remove`. Explicit rules are tried first.
        """
        chosen = (
            tuple(kinds)
            if kinds is not None
            else (
                FaultKind.STATUS,
                FaultKind.LATENCY,
                FaultKind.RESET,
                FaultKind.HTML,
            )
        )
        if not chosen:
            raise ValueError("kinds must not be empty")
        rule = RandomFaults(
            rate,
            chosen,
            tuple(statuses),
            delay,
            stall,
            vendor=vendor,
            method=method,
            path=path,
            rng=random.Random(f"random-faults:{seed}"),
        )
        self._random.append(rule)
        return rule

    def __iter__(self) -> Iterator[Fault]:
        return iter(list(self._rules))

    def __len__(self) -> int:
        return len(self._rules) + len(self._random)

    def pick(self, vendor: str, method: str, path: str) -> Fault | None:
        """The fault hitting this request, consuming one of its ``times``."""
        for rule in self._rules:
            if not rule.matches(vendor, method, path):
                continue
            if rule.probability < 1.0 and self._rng.random() >= rule.probability:
                continue
            left = self._left.get(id(rule))
            if left is not None:
                if left <= 1:
                    self.remove(rule)
                else:
                    self._left[id(rule)] = left - 1
            return rule
        for random_rule in self._random:
            drawn = random_rule.draw(vendor, method, path)
            if drawn is not None:
                return drawn
        return None


async def apply(
    fault: Fault | None,
    request: web.Request,
    exchange: Exchange,
    service: Service,
    handler: Handler,
) -> web.StreamResponse:
    """Serve ``request`` through ``service`` as ``fault`` dictates."""
    if fault is None:
        return await service.gate(request, exchange, handler)
    exchange.fault = fault.kind.value
    kind = fault.kind
    if kind in _PASS_THROUGH:

        async def faulted(request: web.Request) -> web.StreamResponse:
            if kind is FaultKind.LATENCY:
                await asyncio.sleep(fault.seconds)
                return await handler(request)
            return _with_unknown_enums(await handler(request), service)

        return await service.gate(request, exchange, faulted)
    if kind is FaultKind.STATUS:
        if fault.body is not None:
            response = web.json_response(fault.body, status=fault.status)
        else:
            response = service.error(fault.status, "injected fault")
        if fault.retry_after is not None:
            response.headers["Retry-After"] = fault.retry_after
        return response
    if kind is FaultKind.HTML:
        exchange.proxy = True
        return web.Response(status=502, text=html_page(502), content_type="text/html")
    if kind is FaultKind.MALFORMED:
        return web.Response(body=MALFORMED_BODY, content_type="application/json")
    if kind is FaultKind.WRONG_SHAPE:
        body = fault.body if fault.body is not None else service.wrong_shape(exchange.operation)
        return web.json_response(body)
    if kind is FaultKind.TRUNCATED:
        return await _truncated(request, exchange)
    # RESET and STALL: no status line is ever sent.
    exchange.status = 0
    if kind is FaultKind.STALL:
        await asyncio.sleep(fault.seconds)
    return _drop(request)


def _drop(request: web.Request) -> web.Response:
    if request.transport is not None:
        request.transport.abort()
    # Never written: the transport is gone, so aiohttp discards it.
    return web.Response(status=500)


async def _truncated(request: web.Request, exchange: Exchange) -> web.StreamResponse:
    exchange.status = 200
    response = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
    response.content_length = 4096
    await response.prepare(request)
    await response.write(MALFORMED_BODY)
    _drop(request)
    return response


def _with_unknown_enums(response: web.StreamResponse, service: Service) -> web.StreamResponse:
    if not isinstance(response, web.Response) or response.status != 200:
        return response
    if response.content_type != "application/json" or not isinstance(response.body, bytes):
        return response
    payload = service.unknown_enum(json.loads(response.body))
    return web.json_response(payload, status=response.status)
