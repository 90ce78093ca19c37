"""A vendor's ``parse_error`` drives the core over a real socket; the core reads no body itself."""

from __future__ import annotations

from collections.abc import Mapping

import pytest
from aiohttp import web

from runnerhub import RetryPolicy, errors
from runnerhub._http import ClientOptions, HTTPCore, Route, VendorSpec
from runnerhub._sansio import ErrorInfo, json_object

from ._hostile import serve

ROUTE = Route("get_thing", "GET", "/things/{id}")
FAST = RetryPolicy(max_retries=2, base_delay=0.0, max_delay=0.0)


def _secondary_limit(status: int, headers: Mapping[str, str], body: bytes) -> ErrorInfo:
    """A GitHub-like parser: a 403 whose body says "secondary rate limit" is a rate limit."""
    data = json_object(headers, body) or {}
    message = data.get("message")
    limited = status == 403 and isinstance(message, str) and "secondary rate limit" in message
    return ErrorInfo(message=message, rate_limited=limited, retry_after=0.0 if limited else None)


def _core(spec: VendorSpec, url: str) -> HTTPCore:
    options: ClientOptions = {"base_url": url, "retry": FAST}
    return HTTPCore(
        spec,
        auth_headers={"Authorization": "Bearer tok-0123456789"},
        credential_id="tok",
        default_base_url=url,
        default_account="acct",
        options=options,
    )


async def test_a_rate_limit_403_from_the_parser_is_retried() -> None:
    """The parser marks a 403 as rate-limited: the core retries it and then succeeds."""
    answers = [
        web.json_response({"message": "You have exceeded a secondary rate limit"}, status=403),
        web.json_response({"ok": True}),
    ]

    async def handler(request: web.Request) -> web.StreamResponse:
        return answers.pop(0)

    spec = VendorSpec("hub", {}, parse_error=_secondary_limit)
    async with serve(handler) as served:
        core = _core(spec, served.base_url)
        try:
            assert await core.request_json(ROUTE, {"id": "1"}) == {"ok": True}
        finally:
            await core.aclose()
    assert len(served.requests) == 2


async def test_a_plain_403_is_permission_denied_and_not_retried() -> None:
    """Without the parser's flag a 403 stays PermissionDeniedError, sent once."""

    async def handler(request: web.Request) -> web.StreamResponse:
        return web.json_response({"message": "Resource not accessible by token"}, status=403)

    spec = VendorSpec("hub", {}, parse_error=_secondary_limit)
    async with serve(handler) as served:
        core = _core(spec, served.base_url)
        try:
            with pytest.raises(errors.PermissionDeniedError) as caught:
                await core.request(ROUTE, {"id": "1"})
        finally:
            await core.aclose()
    assert caught.value.message == "Resource not accessible by token"
    assert len(served.requests) == 1


async def test_without_a_parser_the_core_describes_the_status() -> None:
    """A VendorSpec with no parse_error: the body is not read, the status is described."""

    async def handler(request: web.Request) -> web.StreamResponse:
        return web.json_response({"code": "nope", "message": "vendor words"}, status=404)

    async with serve(handler) as served:
        core = _core(VendorSpec("bare", {}), served.base_url)
        try:
            with pytest.raises(errors.NotFoundError) as caught:
                await core.request(ROUTE, {"id": "1"})
        finally:
            await core.aclose()
    assert caught.value.code is None
    assert caught.value.message == "Not Found (no message in the error body)"
