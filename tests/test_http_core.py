"""runnerhub._http: the pure functions directly, and a few HTTPCore behaviours over loopback."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest
from multidict import CIMultiDict, CIMultiDictProxy

from runnerhub import KubiyaProvider, RateLimit, RetryPolicy, SodaProvider, errors
from runnerhub._http import (
    Response,
    Route,
    check_base_url,
    check_header_value,
    encode_segment,
    error_from_response,
)
from runnerhub.sandbox import Fault, FaultKind, Sandbox
from runnerhub.vendors import kubiya, soda

from .conftest import VendorCase

SAMPLES = Path(__file__).parent / "samples"
JSON = "application/json"


def _sample(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()


def _response(status: int, body: bytes = b"", **headers: str) -> Response:
    raw: CIMultiDict[str] = CIMultiDict({k.replace("_", "-"): v for k, v in headers.items()})
    return Response(status, CIMultiDictProxy(raw), body)


def _error(response: Response) -> errors.APIError:
    return error_from_response(
        response,
        trace_headers=("X-Soda-Trace-Id",),
        provider="soda",
        account="acme-eu",
        operation="get_runner",
        parse_error=soda.parse_error,
    )


def parse_error_body(body: bytes, content_type: str) -> tuple[str | None, str | None]:
    """Kubiya's parser (the one that reads every shape), as ``(code, message)``."""
    info = kubiya.parse_error(400, {"Content-Type": content_type}, body)
    return info.code, info.message


# -- encode_segment and Route ------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("runner-1", "runner-1"),
        ("a/b", "a%2Fb"),
        ("a?b=c", "a%3Fb%3Dc"),
        ("a#b", "a%23b"),
        ("100%", "100%25"),
        ("%2e%2e", "%252e%252e"),
        (".", "%2E"),
        ("..", "%2E%2E"),
        ("...", "%2E%2E%2E"),
        ("a.b", "a.b"),
        ("../x", "..%2Fx"),
        ("a b", "a%20b"),
        ("runner-é", "runner-%C3%A9"),
        ("ランナー", "%E3%83%A9%E3%83%B3%E3%83%8A%E3%83%BC"),
        ("{name}", "%7Bname%7D"),
    ],
)
def test_encode_segment(value: str, expected: str) -> None:
    """Each value is percent-encoded into exactly one path segment."""
    encoded = encode_segment(value)
    assert encoded == expected
    assert "/" not in encoded
    assert "?" not in encoded
    assert "#" not in encoded


@pytest.mark.parametrize("value", ["", None, 5])
def test_encode_segment_refuses_empty_and_non_strings(value: object) -> None:
    """An empty or non-string id is a UsageError (it would address the collection)."""
    with pytest.raises(errors.UsageError):
        encode_segment(value)  # type: ignore[arg-type]


def test_route_render_encodes_each_parameter() -> None:
    """Route.render substitutes each parameter as one encoded segment."""
    route = Route("get_runner", "GET", "/api/v3/runners/{runner}/describe")
    assert route.render({"runner": "a/../b"}) == "/api/v3/runners/a%2F..%2Fb/describe"
    assert route.render({"runner": ".."}) == "/api/v3/runners/%2E%2E/describe"


def test_route_render_does_not_reinterpret_braces() -> None:
    """A value holding ``{x}`` is encoded, never formatted a second time."""
    route = Route("get_runner", "GET", "/r/{runner}")
    assert route.render({"runner": "{runner}"}) == "/r/%7Brunner%7D"


def test_route_idempotency() -> None:
    """GET, PUT and DELETE are idempotent; POST is not; 5xx retries are on by default."""
    assert Route("x", "GET", "/").idempotent
    assert Route("x", "PUT", "/").idempotent
    assert Route("x", "DELETE", "/").idempotent
    assert not Route("x", "POST", "/").idempotent
    assert Route("x", "GET", "/").retry_server_errors


def test_response_content_type() -> None:
    """Response.content_type drops parameters and lower-cases the media type."""
    response = _response(200, b"{}", Content_Type="Application/JSON; charset=utf-8")
    assert response.content_type == "application/json"
    assert _response(200).content_type == ""


# -- parse_error_body --------------------------------------------------------


@pytest.mark.parametrize(
    ("sample", "expected"),
    [
        ("kubiya_error_code_error.json", ("404", "runner not found")),
        ("kubiya_error_nested.json", ("not_found", "runner not found")),
        ("kubiya_error_message.json", (None, "runner not found")),
        ("kubiya_error_detail.json", (None, "runner not found")),
    ],
)
def test_parse_error_body_shapes(sample: str, expected: tuple[str | None, str | None]) -> None:
    """Every Kubiya error shape yields its (code, message)."""
    assert parse_error_body(_sample(sample), JSON) == expected


@pytest.mark.parametrize(
    ("sample", "expected"),
    [
        ("soda_error_not_found.json", ("not_found", "Runner not found")),
        ("soda_error_in_use.json", ("bad_request", "runner is still in use")),
    ],
)
def test_soda_parse_error_shape(sample: str, expected: tuple[str | None, str | None]) -> None:
    """Soda's ErrorResponse yields its (code, message); the core parses no body itself."""
    info = soda.parse_error(400, {"Content-Type": JSON}, _sample(sample))
    assert (info.code, info.message) == expected
    bare = error_from_response(
        _response(400, _sample(sample), Content_Type=JSON),
        trace_headers=(),
        provider="soda",
        account="a",
        operation="get_runner",
    )
    assert bare.code is None
    assert bare.message == "Bad Request (no message in the error body)"


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"", JSON),
        (b"", ""),
        (_sample("proxy_502.html"), "text/html"),
        (_sample("proxy_502.html"), JSON),  # HTML mislabelled as JSON
        (b'{"message": "x"}', "text/html"),  # anything labelled HTML is not parsed
        (b"[1, 2, 3]", JSON),
        (b'"just a string"', JSON),
        (b"42", JSON),
        (b"null", JSON),
        (b'{"content": [', JSON),
        (b"\xff\xfe garbage", JSON),
    ],
)
def test_parse_error_body_unreadable(body: bytes, content_type: str) -> None:
    """HTML, empty, non-object and invalid JSON bodies give (None, None)."""
    assert parse_error_body(body, content_type) == (None, None)


def test_parse_error_body_bool_code_is_dropped() -> None:
    """A boolean code is not a code (bool is an int subclass)."""
    assert parse_error_body(b'{"code": true, "message": "m"}', JSON) == (None, "m")


@pytest.mark.parametrize("code", ["1.5", "{}", "[1]"])
def test_parse_error_body_odd_codes_are_dropped(code: str) -> None:
    """Codes that are not strings or integers are dropped, the message kept."""
    body = f'{{"code": {code}, "message": "m"}}'.encode()
    assert parse_error_body(body, JSON) == (None, "m")


def test_parse_error_body_message_wins_over_error_string() -> None:
    """With both ``message`` and a string ``error``, the message is used."""
    body = b'{"code": 400, "error": "short", "message": "long explanation"}'
    assert parse_error_body(body, JSON) == ("400", "long explanation")


def test_parse_error_body_nested_code_overrides_outer() -> None:
    """``error.code`` wins over a top-level ``code``; the top-level one is the fallback."""
    assert parse_error_body(b'{"code": 1, "error": {"code": "x", "message": "m"}}', JSON) == (
        "x",
        "m",
    )
    assert parse_error_body(b'{"code": 1, "error": {"message": "m"}}', JSON) == ("1", "m")


def test_parse_error_body_non_string_message_is_serialised_and_bounded() -> None:
    """A structured detail (e.g. a validation list) becomes bounded JSON text."""
    detail = [{"loc": ["body", "name"], "msg": "field required " * 100}]
    code, message = parse_error_body(json.dumps({"detail": detail}).encode(), JSON)
    assert code is None
    assert message is not None
    assert message.startswith('[{"loc"')
    assert len(message) <= 500


# -- error_from_response -----------------------------------------------------


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, errors.BadRequestError),
        (401, errors.AuthenticationError),
        (403, errors.PermissionDeniedError),
        (404, errors.NotFoundError),
        (429, errors.RateLimitError),
        (500, errors.ServerError),
        (502, errors.ServerError),
        (503, errors.ServerError),
        (504, errors.ServerError),
        (599, errors.ServerError),
    ],
)
def test_status_to_error_class(status: int, cls: type[errors.APIError]) -> None:
    """Each status maps to its typed error carrying status and context."""
    error = _error(_response(status, _sample("soda_error_not_found.json")))
    assert type(error) is cls
    assert error.status == status
    assert (error.provider, error.account, error.operation) == ("soda", "acme-eu", "get_runner")
    assert error.code == "not_found"
    assert error.message == "Runner not found"


@pytest.mark.parametrize("status", [302, 405, 409, 418, 422])
def test_other_statuses_are_plain_api_errors(status: int) -> None:
    """Statuses without a dedicated class give a plain APIError."""
    error = _error(_response(status))
    assert type(error) is errors.APIError
    assert error.status == status


def test_empty_body_message_names_the_status() -> None:
    """An empty error body gives the status phrase, marked as empty."""
    error = _error(_response(404))
    assert error.message == "Not Found (empty error body)"
    assert error.code is None


def test_html_body_message_hides_the_html() -> None:
    """An HTML proxy page gives the status phrase; no markup reaches the message."""
    error = _error(_response(502, _sample("proxy_502.html"), Content_Type="text/html"))
    assert error.message == "Bad Gateway (non-JSON error body)"
    assert "<" not in str(error)


def test_unknown_status_phrase() -> None:
    """A status with no reason phrase is described by its number."""
    assert _error(_response(599)).message == "HTTP 599 (empty error body)"


def test_trace_id_is_read_case_insensitively() -> None:
    """The trace id comes from X-Soda-Trace-Id whatever its case, and shows in str()."""
    response = _response(500, b"", **{"x-soda-trace-id": "4bf92f3577b34da6"})
    error = _error(response)
    assert error.trace_id == "4bf92f3577b34da6"
    assert "(trace id 4bf92f3577b34da6)" in str(error)
    assert _error(_response(500)).trace_id is None


def test_long_messages_are_truncated() -> None:
    """A vendor message is bounded to 1000 characters."""
    body = json.dumps({"message": "x" * 5000}).encode()
    assert len(_error(_response(400, body)).message) == 1000


@pytest.mark.parametrize(("header", "expected"), [("2", 2.0), ("0.25", 0.25), (None, None)])
def test_rate_limit_error_carries_retry_after(header: str | None, expected: float | None) -> None:
    """A 429's Retry-After becomes RateLimitError.retry_after in seconds."""
    headers = {"Retry_After": header} if header is not None else {}
    error = _error(_response(429, b"", **headers))
    assert isinstance(error, errors.RateLimitError)
    assert error.retry_after == expected


def test_retry_after_is_ignored_on_other_errors() -> None:
    """Only RateLimitError has a retry_after value set from the response."""
    error = _error(_response(503, b"", Retry_After="5"))
    assert not isinstance(error, errors.RateLimitError)
    assert getattr(error, "retry_after", None) is None


# -- check_header_value and check_base_url -----------------------------------


@pytest.mark.parametrize("value", ["key\r\nX-Evil: 1", "key\n", "key\r", "a\0b", "tab\there", ""])
def test_header_values_with_breakers_are_refused(value: str) -> None:
    """CR, LF, NUL, other control characters and empty values are refused."""
    with pytest.raises(errors.UsageError) as info:
        check_header_value("Authorization", value)
    assert "\n" not in str(info.value)


def test_header_value_is_returned_when_clean() -> None:
    """A printable value is returned unchanged."""
    assert check_header_value("Authorization", "UserKey abc.DEF-123") == "UserKey abc.DEF-123"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://cloud.soda.io", "https://cloud.soda.io"),
        ("https://cloud.soda.io/", "https://cloud.soda.io"),
        ("https://api.example.com/prefix/", "https://api.example.com/prefix"),
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
        ("http://127.9.9.9", "http://127.9.9.9"),
        ("http://localhost:3000/", "http://localhost:3000"),
        ("http://[::1]:8080", "http://[::1]:8080"),
    ],
)
def test_base_url_accepted(url: str, expected: str) -> None:
    """https anywhere and http to loopback are accepted, without a trailing slash."""
    assert check_base_url(url, allow_insecure_http=False) == expected


@pytest.mark.parametrize(
    "url", ["http://api.kubiya.ai", "http://10.0.0.1", "http://localhost.evil.example"]
)
def test_plain_http_to_remote_refused(url: str) -> None:
    """Plain http to a non-loopback host is refused unless explicitly allowed."""
    with pytest.raises(errors.UsageError, match="allow_insecure_http"):
        check_base_url(url, allow_insecure_http=False)
    assert check_base_url(url, allow_insecure_http=True) == url


@pytest.mark.parametrize(
    "url",
    [
        "https://user:pass@cloud.soda.io",
        "https://user@cloud.soda.io",
        "https://cloud.soda.io?token=x",
        "https://cloud.soda.io/#frag",
        "ftp://cloud.soda.io",
        "cloud.soda.io",
        "https://",
        "",
    ],
)
def test_base_url_malformed_refused(url: str) -> None:
    """Credentials, queries, fragments, other schemes and host-less URLs are refused."""
    with pytest.raises(errors.UsageError):
        check_base_url(url, allow_insecure_http=True)


def test_base_url_refusal_does_not_echo_credentials() -> None:
    """Refusing a URL with userinfo does not repeat the password."""
    with pytest.raises(errors.UsageError) as info:
        check_base_url("https://user:hunter2@cloud.soda.io", allow_insecure_http=False)
    assert "hunter2" not in str(info.value)


# -- HTTPCore over loopback --------------------------------------------------


async def test_max_response_bytes_refuses_a_large_body() -> None:
    """A body over max_response_bytes raises ResponseTooLargeError after one request."""
    sandbox = Sandbox(seed=3)
    org = sandbox.add_org("soda", "big-eu", runners=120)
    async with (
        sandbox.serve() as base_url,
        SodaProvider(
            org.api_key_id, org.api_key_secret, base_url=base_url, max_response_bytes=4096
        ) as provider,
    ):
        with pytest.raises(errors.ResponseTooLargeError) as info:
            _ = [r async for r in provider.list_runners(page_size=100)]
        # A single runner fits the bound.
        runner = await provider.get_runner(next(iter(org.runners)))
    assert isinstance(info.value, errors.ResponseFormatError)
    assert info.value.operation == "list_runners"
    assert "4096" in str(info.value)
    assert runner.id in org.runners
    assert sandbox.count(operation="list_runners") == 1  # not retried


async def test_deadline_bounds_a_slow_call(soda_case: VendorCase) -> None:
    """deadline= turns a LATENCY longer than the deadline into TransportError, promptly."""
    soda_case.sandbox.faults.add(Fault(FaultKind.LATENCY, method="GET", delay=1.5))
    async with soda_case.provider(deadline=0.2) as provider:
        started = time.monotonic()
        with pytest.raises(errors.TransportError) as info:
            await provider.get_runner(soda_case.runner_ids[0])
    assert time.monotonic() - started < 1.0
    assert "deadline" in str(info.value)
    assert info.value.operation == "get_runner"


async def test_429_without_retry_after_is_retried(soda_case: VendorCase) -> None:
    """A 429 that carries no Retry-After is still retried, and the retry succeeds."""
    soda_case.sandbox.faults.add(Fault(FaultKind.STATUS, status=429, method="GET", times=1))
    async with soda_case.provider() as provider:
        runner = await provider.get_runner(soda_case.runner_ids[0])
    assert runner.id == soda_case.runner_ids[0]
    assert soda_case.sandbox.count(status=429) == 1
    assert soda_case.sandbox.count(status=200) == 1


async def test_429_exhausted_raises_rate_limit_error(soda_case: VendorCase) -> None:
    """A persistent 429 ends in RateLimitError with the vendor's hint after every retry."""
    soda_case.sandbox.faults.add(
        Fault(FaultKind.STATUS, status=429, method="GET", retry_after="0.01")
    )
    async with soda_case.provider(max_retries=2) as provider:
        with pytest.raises(errors.RateLimitError) as info:
            await provider.get_runner(soda_case.runner_ids[0])
    assert info.value.retry_after == 0.01
    assert len(soda_case.sandbox.requests) == 3


async def test_429_hint_beyond_budget_gives_up(soda_case: VendorCase) -> None:
    """A Retry-After far beyond max_total raises RateLimitError at once instead of waiting."""
    soda_case.sandbox.faults.add(
        Fault(FaultKind.STATUS, status=429, method="GET", retry_after="30")
    )
    policy = RetryPolicy(base_delay=0.01, max_delay=0.05, max_total=0.2)
    async with soda_case.provider(retry=policy) as provider:
        # Bounded, so a regression fails fast with TimeoutError instead of waiting 30 s.
        async with asyncio.timeout(0.5):
            with pytest.raises(errors.RateLimitError) as info:
                await provider.get_runner(soda_case.runner_ids[0])
    assert info.value.retry_after == 30.0


async def test_truncated_get_is_retried(soda_case: VendorCase) -> None:
    """A body cut short of its Content-Length on a GET is retried, then succeeds."""
    soda_case.sandbox.faults.add(Fault(FaultKind.TRUNCATED, method="GET", times=1))
    async with soda_case.provider() as provider:
        runner = await provider.get_runner(soda_case.runner_ids[1])
    assert runner.id == soda_case.runner_ids[1]
    assert soda_case.sandbox.count(fault="truncated") == 1
    assert len(soda_case.sandbox.requests) == 2


async def test_truncated_post_is_not_retried(soda_case: VendorCase) -> None:
    """A truncated answer to POST is a TransportError: the vendor did act."""
    soda_case.sandbox.faults.add(Fault(FaultKind.TRUNCATED, method="POST"))
    async with soda_case.provider() as provider:
        with pytest.raises(errors.TransportError):
            await provider.create_runner()
    assert len(soda_case.sandbox.requests) == 1


async def test_rate_limit_remaining_zero_pauses_the_bucket() -> None:
    """Kubiya's X-RateLimit-Remaining: 0 pauses the bucket, so a looser client never hits 429."""
    sandbox = Sandbox(seed=5, vendor_options={"kubiya": {"limits": [(3, 0.3), (3, 0.3)]}})
    org = sandbox.add_org("kubiya", "kubiya-dev", runners=4)
    name = next(iter(org.runners))
    async with (
        sandbox.serve() as base_url,
        KubiyaProvider(
            org.api_key,
            base_url=base_url,
            rate_limits={"*": RateLimit(100, 60)},
            max_retries=0,  # a 429 would raise: only the header-driven pause can avoid it
        ) as provider,
    ):
        started = time.monotonic()
        for _ in range(7):
            runner = await provider.get_runner(name)
        elapsed = time.monotonic() - started
    assert runner.id == name
    assert sandbox.count(status=429) == 0
    assert sandbox.count(status=200) == 7
    assert sandbox.max_in_window("kubiya", "*", 0.3) <= 3
    assert elapsed >= 2 * 0.3 * 0.9  # two full windows were waited out
