"""Creates whose outcome is unknown say so, and Kubiya's describe can settle them.

Hostile servers on 127.0.0.1 answer a POST with a 5xx, reset the connection
after reading it, or never answer. The request is sent once (never retried)
and the error is an ``OutcomeUnknownError`` that is still the ``ServerError``
or ``TransportError`` it used to be. Refusals before the vendor could act stay
plain errors.
"""

from __future__ import annotations

import asyncio
import socket

import pytest
from aiohttp import web

from runnerhub import KubiyaProvider, RetryPolicy, SodaProvider, errors

from ._hostile import Handler, serve

FAST = RetryPolicy(max_retries=2, base_delay=0.0, max_delay=0.0)


async def _server_error(request: web.Request) -> web.StreamResponse:
    return web.json_response({"message": "upstream failed"}, status=502)


async def _reset(request: web.Request) -> web.StreamResponse:
    await request.read()
    assert request.transport is not None
    request.transport.close()  # the request was read: the vendor may have acted on it
    await asyncio.sleep(5)  # cancelled when the connection goes (handler_cancellation)
    return web.Response()  # pragma: no cover - never reached


async def _silent(request: web.Request) -> web.StreamResponse:
    await request.read()
    await asyncio.sleep(5)  # past the client's timeout; cancelled when it gives up
    return web.Response()  # pragma: no cover - never reached


def _soda(url: str) -> SodaProvider:
    return SodaProvider("key-id", "key-secret", base_url=url, retry=FAST, timeout=0.3)


@pytest.mark.parametrize(
    ("handler", "expected", "base"),
    [
        (_server_error, errors.OutcomeUnknownServerError, errors.ServerError),
        (_reset, errors.OutcomeUnknownTransportError, errors.TransportError),
        (_silent, errors.OutcomeUnknownTransportError, errors.TransportError),
    ],
    ids=["5xx", "reset-after-send", "read-timeout"],
)
async def test_soda_create_of_unknown_outcome(
    handler: Handler, expected: type[errors.RunnerHubError], base: type[errors.RunnerHubError]
) -> None:
    """A create that may have happened raises OutcomeUnknownError (and the old class), once sent."""
    async with serve(handler) as served, _soda(served.base_url) as soda:
        with pytest.raises(errors.OutcomeUnknownError) as caught:
            await soda.create_runner()
    assert type(caught.value) is expected
    assert isinstance(caught.value, base)
    assert caught.value.operation == "create_runner"
    assert [r.method for r in served.requests] == ["POST"]


async def test_idempotent_calls_stay_plain_errors() -> None:
    """A GET that keeps failing with 502 is retried and ends as a plain ServerError."""
    async with serve(_server_error) as served, _soda(served.base_url) as soda:
        with pytest.raises(errors.ServerError) as caught:
            await soda.get_runner("r1")
    assert not isinstance(caught.value, errors.OutcomeUnknownError)
    assert len(served.requests) == 3


async def test_a_refused_connection_is_a_known_failure() -> None:
    """A POST to a port nobody listens on was never sent: a plain TransportError."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    async with _soda(f"http://127.0.0.1:{port}") as soda:
        with pytest.raises(errors.TransportError) as caught:
            await soda.create_runner()
    assert not isinstance(caught.value, errors.OutcomeUnknownError)


async def test_a_rate_limited_create_is_not_unknown() -> None:
    """429 means the vendor refused before acting: retried, and a plain RateLimitError."""

    async def limited(request: web.Request) -> web.StreamResponse:
        return web.json_response({"message": "slow down"}, status=429)

    async with serve(limited) as served, _soda(served.base_url) as soda:
        with pytest.raises(errors.RateLimitError) as caught:
            await soda.create_runner()
    assert not isinstance(caught.value, errors.OutcomeUnknownError)


# -- Kubiya: settle by describe -----------------------------------------------------------


class _Kubiya:
    """A Kubiya whose create fails in a chosen way, and that may or may not create."""

    def __init__(self, *, fail: str, creates: bool, describe_fails: bool = False) -> None:
        self.fail = fail
        self.creates = creates
        self.describe_fails = describe_fails
        self.runners: set[str] = set()

    async def __call__(self, request: web.Request) -> web.StreamResponse:
        path = request.path.removeprefix("/api/v3/runners/")
        if request.method == "POST":
            if self.creates:
                self.runners.add(path)
            if self.fail == "reset":
                return await _reset(request)
            return web.json_response({"detail": "gateway timeout"}, status=504)
        name = path.removesuffix("/describe")
        if self.describe_fails:
            return web.json_response({"detail": "down"}, status=500)
        if name in self.runners:
            return web.json_response({"name": name, "runner_type": "kubiya_operator"})
        return web.json_response({"detail": "runner not found"}, status=404)


def _kubiya(url: str) -> KubiyaProvider:
    return KubiyaProvider("kubiya-key", base_url=url, retry=FAST, timeout=0.3)


@pytest.mark.parametrize("fail", ["5xx", "reset"])
async def test_kubiya_without_verify_raises_unknown(fail: str) -> None:
    """Without verify_on_unknown the create raises OutcomeUnknownError and sends no describe."""
    app = _Kubiya(fail=fail, creates=True)
    async with serve(app) as served, _kubiya(served.base_url) as kubiya:
        with pytest.raises(errors.OutcomeUnknownError):
            await kubiya.create_runner("edge-1")
    assert [r.method for r in served.requests] == ["POST"]


@pytest.mark.parametrize("fail", ["5xx", "reset"])
async def test_kubiya_verify_finds_the_created_runner(fail: str) -> None:
    """The create failed on the wire but happened: one describe finds it and returns it."""
    app = _Kubiya(fail=fail, creates=True)
    async with serve(app) as served, _kubiya(served.base_url) as kubiya:
        created = await kubiya.create_runner("edge-1", verify_on_unknown=True)
    assert created.runner_id == "edge-1"
    assert created.manifest_url is None
    assert [r.method for r in served.requests] == ["POST", "GET"]


@pytest.mark.parametrize(
    ("fail", "plain"), [("5xx", errors.ServerError), ("reset", errors.TransportError)]
)
async def test_kubiya_verify_proves_it_was_not_created(
    fail: str, plain: type[errors.RunnerHubError]
) -> None:
    """The describe says 404: the plain error, no longer of unknown outcome."""
    app = _Kubiya(fail=fail, creates=False)
    async with serve(app) as served, _kubiya(served.base_url) as kubiya:
        with pytest.raises(plain) as caught:
            await kubiya.create_runner("edge-2", verify_on_unknown=True)
    assert type(caught.value) is plain
    assert "not created" in caught.value.message


async def test_kubiya_verify_that_fails_keeps_the_outcome_unknown() -> None:
    """When the describe fails too, the original OutcomeUnknownError is raised."""
    app = _Kubiya(fail="5xx", creates=True, describe_fails=True)
    async with serve(app) as served, _kubiya(served.base_url) as kubiya:
        with pytest.raises(errors.OutcomeUnknownServerError) as caught:
            await kubiya.create_runner("edge-3", verify_on_unknown=True)
    assert caught.value.status == 504


async def test_kubiya_operation_5xx_is_unknown() -> None:
    """run_operation is a POST too: a 5xx leaves its outcome unknown."""
    app = _Kubiya(fail="5xx", creates=False)
    async with serve(app) as served, _kubiya(served.base_url) as kubiya:
        with pytest.raises(errors.OutcomeUnknownServerError):
            await kubiya.run_operation("edge-1", "restart")
