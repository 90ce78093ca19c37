"""Timeouts, response-size bounds, TLS, plain http, header-breaking credentials and redirects.

Every server here is a real socket on 127.0.0.1: an aiohttp app, a raw asyncio
server, or a listening socket whose backlog is full.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import gzip
import json
import shutil
import socket
import ssl
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import aiohttp
import attrs
import pytest
from aiohttp import web
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from runnerhub import KubiyaProvider, RetryPolicy, SodaProvider, errors
from runnerhub._http import ClientOptions
from runnerhub.provider import RunnerProvider
from runnerhub.sandbox import Fault, FaultKind, Sandbox

from ._hostile import Handler, Served, serve

FAST = RetryPolicy(base_delay=0.01, max_delay=0.05, max_total=10)
EMPTY_PAGE = {
    "content": [],
    "first": True,
    "last": True,
    "number": 0,
    "size": 1000,
    "totalElements": 0,
    "totalPages": 0,
}
CREDENTIAL_EXAMPLES = 100  # per credential form; docs/hardening.md reports it

async def _empty_soda_page(request: web.Request) -> web.StreamResponse:
    return web.json_response(EMPTY_PAGE)


def _soda(base_url: str, **options: Any) -> SodaProvider:
    options.setdefault("retry", FAST)
    return SodaProvider("key-id", "key-secret", base_url=base_url, **options)


# -- timeouts ------------------------------------------------------------------------


@contextmanager
def _full_backlog() -> Iterator[int]:
    """A listening port whose accept queue is full: new connections hang in SYN-SENT."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(0)
        port: int = server.getsockname()[1]
        fillers = []
        try:
            for _ in range(8):
                filler = socket.socket()
                filler.setblocking(False)
                fillers.append(filler)
                with contextlib.suppress(BlockingIOError):  # the connect goes on in the kernel
                    filler.connect(("127.0.0.1", port))
            yield port
        finally:
            for filler in fillers:
                filler.close()


async def test_connect_timeout_bounds_an_unanswered_connect() -> None:
    """A connect that never completes is a TransportError within attempts x timeout."""
    with _full_backlog() as port:
        started = time.monotonic()
        async with _soda(f"http://127.0.0.1:{port}", timeout=0.3, max_retries=1) as provider:
            with pytest.raises(errors.TransportError) as info:
                await provider.get_runner("r-1")
        elapsed = time.monotonic() - started
    assert 0.5 <= elapsed < 0.6 + 1.0  # two attempts of 0.3 s, plus generous slack
    assert info.value.operation == "get_runner"
    assert provider.stats.requests == 2


async def _trickle(request: web.Request) -> web.StreamResponse:
    """Headers at once, then one byte of body every 50 ms, forever."""
    response = web.StreamResponse(headers={"Content-Type": "application/json"})
    response.content_length = 1_000_000
    await response.prepare(request)
    while True:
        await response.write(b" ")
        await asyncio.sleep(0.05)


async def test_read_timeout_bounds_a_trickling_body() -> None:
    """A body that keeps trickling (never idle long) still ends in TransportError at the timeout."""
    async with serve(_trickle) as served:
        started = time.monotonic()
        async with _soda(served.base_url, timeout=0.4, max_retries=0) as provider:
            with pytest.raises(errors.TransportError):
                await provider.get_runner("r-1")
        elapsed = time.monotonic() - started
    assert 0.35 <= elapsed < 1.5


async def test_deadline_bounds_a_call_across_retries() -> None:
    """deadline= caps the whole call, retries included, below what the retries would take."""
    sandbox = Sandbox(seed=4)
    org = sandbox.add_org("soda", "stall-eu", runners=3)
    sandbox.faults.add(Fault(FaultKind.STALL, delay=5.0))
    async with sandbox.serve() as base_url:
        provider = SodaProvider(
            org.api_key_id,
            org.api_key_secret,
            base_url=base_url,
            timeout=0.3,
            deadline=1.0,
            retry=RetryPolicy(max_retries=8, base_delay=0.01, max_delay=0.05),
        )
        async with provider:
            started = time.monotonic()
            with pytest.raises(errors.TransportError, match="deadline"):
                await provider.get_runner(next(iter(org.runners)))
            elapsed = time.monotonic() - started
    # Without the deadline: 9 attempts x 0.3 s = 2.7 s.
    assert 0.9 <= elapsed < 1.6
    assert 2 <= len(sandbox.requests) <= 4


@pytest.mark.parametrize(
    "options",
    [
        {"deadline": 0},
        {"deadline": -1.0},
        {"deadline": float("nan")},
        {"max_response_bytes": 0},
        {"max_response_bytes": -1},
    ],
    ids=["deadline=0", "deadline=-1", "deadline=nan", "max_bytes=0", "max_bytes=-1"],
)
def test_nonsense_bounds_are_refused_at_construction(options: ClientOptions) -> None:
    """A deadline or size bound that no response could meet is a UsageError at construction."""
    with pytest.raises(errors.UsageError):
        SodaProvider("key-id", "key-secret", **options)


# -- response size ---------------------------------------------------------------------


async def _huge_announced(request: web.Request) -> web.StreamResponse:
    """Announce a 1 GiB body, send a few bytes, then wait."""
    response = web.StreamResponse(headers={"Content-Type": "application/json"})
    response.content_length = 1 << 30
    await response.prepare(request)
    await response.write(b'{"runner": ')
    await asyncio.sleep(30)
    return response


async def test_announced_oversize_body_is_refused_before_reading() -> None:
    """A Content-Length over the bound is refused at once, without waiting for the body."""
    async with serve(_huge_announced) as served:
        started = time.monotonic()
        async with _soda(served.base_url, max_response_bytes=1 << 20, timeout=10.0) as provider:
            with pytest.raises(errors.ResponseTooLargeError):
                await provider.get_runner("r-1")
        elapsed = time.monotonic() - started
    assert elapsed < 1.0
    assert len(served.requests) == 1  # never retried


async def _endless_chunks(request: web.Request) -> web.StreamResponse:
    """A chunked body (no Content-Length) that never ends."""
    response = web.StreamResponse(headers={"Content-Type": "application/json"})
    response.enable_chunked_encoding()
    await response.prepare(request)
    chunk = b" " * 65536
    while True:
        await response.write(chunk)


async def test_endless_chunked_body_is_cut_at_the_bound() -> None:
    """A body without Content-Length is read only up to the bound, then refused."""
    async with serve(_endless_chunks) as served:
        started = time.monotonic()
        async with _soda(served.base_url, max_response_bytes=1 << 20, timeout=10.0) as provider:
            with pytest.raises(errors.ResponseTooLargeError) as info:
                await provider.get_runner("r-1")
        elapsed = time.monotonic() - started
    assert elapsed < 2.0
    assert info.value.operation == "get_runner"
    assert len(served.requests) == 1


def _gzip_bomb(decompressed: int) -> Handler:
    body = gzip.compress(b" " * decompressed + json.dumps({"runner": {"id": "r-1"}}).encode())

    async def handler(request: web.Request) -> web.StreamResponse:
        return web.Response(
            body=body,
            headers={"Content-Encoding": "gzip", "Content-Type": "application/json"},
        )

    return handler


async def test_compressed_body_is_bounded_after_decompression() -> None:
    """A 20 KB gzip body that inflates to 20 MiB is refused under a 1 MiB bound."""
    async with (
        serve(_gzip_bomb(20 << 20)) as served,
        _soda(served.base_url, max_response_bytes=1 << 20) as provider,
    ):
        with pytest.raises(errors.ResponseTooLargeError):
            await provider.get_runner("r-1")


async def test_a_page_of_1000_runners_fits_a_sane_bound() -> None:
    """A real 1,000-runner Soda page (~250 KB) passes a 512 KiB bound; 128 KiB refuses it."""
    sandbox = Sandbox(seed=6)
    org = sandbox.add_org("soda", "big-eu", runners=1000)
    async with sandbox.serve() as base_url:
        for bound, fits in ((512 << 10, True), (128 << 10, False)):
            provider = SodaProvider(
                org.api_key_id, org.api_key_secret, base_url=base_url, max_response_bytes=bound
            )
            async with provider:
                if fits:
                    assert len([r async for r in provider.list_runners()]) == 1000
                else:
                    with pytest.raises(errors.ResponseTooLargeError):
                        _ = [r async for r in provider.list_runners()]


# -- TLS -------------------------------------------------------------------------------


@attrs.frozen
class Certificate:
    """A self-signed certificate for 127.0.0.1 and localhost."""

    cert: Path
    key: Path

    def server_context(self) -> ssl.SSLContext:
        """What the test server presents."""
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert, self.key)
        return context

    def client_context(self) -> ssl.SSLContext:
        """A client context that trusts exactly this certificate."""
        return ssl.create_default_context(cafile=str(self.cert))


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Certificate:
    """A fresh self-signed EC certificate, made with the openssl CLI."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("the openssl command is needed to make a test certificate")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(  # noqa: S603 - fixed arguments, no shell, no outside input
        [
            openssl,
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=IP:127.0.0.1,DNS:localhost",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return Certificate(cert, key)


async def test_tls_verification_is_on_by_default(certificate: Certificate) -> None:
    """https to a server with an untrusted certificate fails with TransportError, unretried."""
    context = certificate.server_context()
    async with (
        serve(_empty_soda_page, ssl_context=context) as served,
        _soda(served.base_url) as provider,
    ):
        with pytest.raises(errors.TransportError, match="certificate") as info:
            _ = [r async for r in provider.list_runners()]
    assert info.value.operation == "list_runners"
    assert served.requests == []  # no request got past the handshake
    assert provider.stats.requests == 1  # a certificate failure is never retried


async def test_trusting_a_certificate_takes_the_callers_own_session(
    certificate: Certificate,
) -> None:
    """The same server works once the caller's session trusts its certificate."""
    trusting = aiohttp.TCPConnector(ssl=certificate.client_context())
    async with (
        serve(_empty_soda_page, ssl_context=certificate.server_context()) as served,
        aiohttp.ClientSession(connector=trusting) as session,
        _soda(served.base_url, session=session) as provider,
    ):
        runners = [r async for r in provider.list_runners()]
    assert runners == []
    assert len(served.requests) == 1


# Keywords another HTTP client would take to turn verification off.
VERIFY_OFF = ("ssl", "verify", "verify_ssl", "insecure", "tls_verify", "ssl_context")


def test_no_client_option_is_about_tls() -> None:
    """The provider options offer no switch for TLS verification (only a session can)."""
    options = set(ClientOptions.__optional_keys__) | set(ClientOptions.__required_keys__)
    assert not options & set(VERIFY_OFF)
    assert "session" in options


@pytest.mark.parametrize("keyword", VERIFY_OFF)
async def test_no_keyword_turns_verification_off(certificate: Certificate, keyword: str) -> None:
    """Passing verify=False or the like never switches verification off."""
    async with serve(_empty_soda_page, ssl_context=certificate.server_context()) as served:
        options: dict[str, Any] = {keyword: False}
        try:
            provider = _soda(served.base_url, **options)
        except (errors.UsageError, TypeError):
            return  # refused outright: fine
        async with provider:
            with pytest.raises(errors.TransportError, match="certificate"):
                _ = [r async for r in provider.list_runners()]


@pytest.mark.parametrize("keyword", ["verify_ssl", "max_retry", "timout"])
def test_unknown_options_are_refused(keyword: str) -> None:
    """A keyword the providers do not know is a UsageError (or TypeError), not ignored."""
    options: dict[str, Any] = {keyword: False}
    with pytest.raises((errors.UsageError, TypeError)):
        SodaProvider("key-id", "key-secret", **options)


# -- plain http --------------------------------------------------------------------------

REMOTE_HTTP = (
    "http://api.kubiya.ai",
    "http://cloud.soda.io",
    "http://10.0.0.5:8080",
    "http://169.254.169.254",
    "http://0.0.0.0:8080",
    "http://localhost.evil.example",
    "http://127.0.0.1.nip.io",
    "HTTP://api.kubiya.ai",
)
LOOPBACK_HTTP = ("http://127.0.0.1:1", "http://127.10.0.1", "http://localhost:9", "http://[::1]:9")


def _build(vendor: str, base_url: str, **options: Any) -> SodaProvider | KubiyaProvider:
    if vendor == "soda":
        return SodaProvider("key-id", "key-secret", base_url=base_url, **options)
    return KubiyaProvider("kubiya-key", base_url=base_url, **options)


@pytest.mark.parametrize("vendor", ["soda", "kubiya"])
@pytest.mark.parametrize("base_url", REMOTE_HTTP)
def test_plain_http_to_a_remote_host_is_refused(vendor: str, base_url: str) -> None:
    """http:// to anything but loopback is refused at construction, naming the opt-in."""
    with pytest.raises(errors.UsageError, match="allow_insecure_http") as info:
        _build(vendor, base_url)
    assert "key-secret" not in str(info.value)
    assert "kubiya-key" not in str(info.value)
    assert _build(vendor, base_url, allow_insecure_http=True).base_url.lower() == base_url.lower()


@pytest.mark.parametrize("vendor", ["soda", "kubiya"])
@pytest.mark.parametrize("base_url", LOOPBACK_HTTP)
def test_plain_http_to_loopback_is_allowed(vendor: str, base_url: str) -> None:
    """http:// to a loopback address (a sandbox, a local proxy) needs no opt-in."""
    assert _build(vendor, base_url).base_url == base_url


@pytest.mark.parametrize(
    ("cls", "environ"),
    [
        (
            SodaProvider,
            {
                "SODA_API_KEY_ID": "i",
                "SODA_API_KEY_SECRET": "s",
                "SODA_BASE_URL": "http://cloud.soda.io",
            },
        ),
        (KubiyaProvider, {"KUBIYA_API_KEY": "k", "KUBIYA_BASE_URL": "http://api.kubiya.ai/api/v1"}),
    ],
)
def test_plain_http_from_the_environment_is_refused(
    cls: type[SodaProvider] | type[KubiyaProvider], environ: dict[str, str]
) -> None:
    """A base URL taken from the environment gets the same refusal."""
    with pytest.raises(errors.UsageError, match="allow_insecure_http"):
        cls.from_env(environ)


@pytest.mark.parametrize(
    "base_url",
    [
        "https://cloud.soda.io:99999",
        "https://cloud.soda.io:abc",
        "https://cloud.soda.io\r\nX-Injected: 1",
        "http://127.0.0.1:8080/a b",
        "http://[::1",
    ],
    ids=["port-range", "port-text", "crlf", "space", "bracket"],
)
def test_malformed_base_url_is_refused_at_construction(base_url: str) -> None:
    """A base URL that no request could use is a UsageError when the provider is built."""
    with pytest.raises(errors.UsageError):
        SodaProvider("key-id", "key-secret", base_url=base_url)


# -- header-breaking credentials ----------------------------------------------------------

BREAKERS = ("\r", "\n", "\r\n", "\0", "\x7f", "\x1b", "\x85", "\u2028", "\t")
BREAKER_IDS = ["CR", "LF", "CRLF", "NUL", "DEL", "ESC", "NEL", "LSEP", "TAB"]


def _with_credential(field: str, value: str) -> RunnerProvider:
    base_url = "https://api.example.com"
    if field == "kubiya":
        return KubiyaProvider(value, base_url=base_url)
    if field == "token":
        return SodaProvider(token=value, base_url=base_url)
    pair = {"api_key_id": "key-id", "api_key_secret": "key-secret", field: value}
    return SodaProvider(pair["api_key_id"], pair["api_key_secret"], base_url=base_url)


@pytest.mark.parametrize("breaker", BREAKERS, ids=BREAKER_IDS)
@pytest.mark.parametrize("field", ["api_key_id", "api_key_secret", "token", "kubiya"])
def test_header_breaking_credentials_are_refused(field: str, breaker: str) -> None:
    """A credential with CR, LF, NUL or another control character is refused at construction."""
    value = f"abc{breaker}Injected: 1"
    with pytest.raises(errors.UsageError) as info:
        _with_credential(field, value)
    assert value not in str(info.value)
    assert "Injected" not in str(info.value)


@asynccontextmanager
async def _header_echo() -> AsyncIterator[Served]:
    async def answer(request: web.Request) -> web.StreamResponse:
        if request.path.startswith("/api/v3/"):
            return web.json_response([])
        return web.json_response(EMPTY_PAGE)

    async with serve(answer) as served:
        yield served


# Half the examples avoid control characters, so that many get as far as the wire.
CREDENTIALS = st.text(min_size=1, max_size=40) | st.text(
    st.characters(exclude_categories=("Cc", "Cs", "Zl", "Zp")), min_size=1, max_size=40
)
CREDENTIAL_SETTINGS = settings(
    max_examples=CREDENTIAL_EXAMPLES,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


async def _deliver(provider: RunnerProvider, served: Served) -> web.Request:
    async with provider:
        assert [r async for r in provider.list_runners()] == []
    return served.requests[-1]


def _ows(value: str) -> str:
    # HTTP parsers drop spaces around a field value; that is not a header break.
    return value.strip(" ")


@CREDENTIAL_SETTINGS
@given(key=CREDENTIALS)
async def test_any_kubiya_key_is_refused_or_delivered_intact(key: str) -> None:
    """Any key string is a UsageError at construction, or arrives as exactly one header."""
    async with _header_echo() as served:
        try:
            provider = KubiyaProvider(key, base_url=served.base_url, max_retries=0)
        except errors.UsageError:
            event("refused at construction")
            return
        event("delivered")
        request = await _deliver(provider, served)
    assert request.headers.getall("Authorization") == [_ows(f"UserKey {key}")]
    assert "Injected" not in request.headers


@CREDENTIAL_SETTINGS
@given(key_id=CREDENTIALS, secret=CREDENTIALS)
async def test_any_soda_key_pair_is_refused_or_delivered_intact(key_id: str, secret: str) -> None:
    """Any key id and secret are a UsageError, or arrive intact inside one Basic header."""
    async with _header_echo() as served:
        try:
            provider = SodaProvider(key_id, secret, base_url=served.base_url, max_retries=0)
        except errors.UsageError:
            event("refused at construction")
            return
        event("delivered")
        request = await _deliver(provider, served)
    (header,) = request.headers.getall("Authorization")
    scheme, _, encoded = header.partition(" ")
    assert scheme == "Basic"
    assert base64.b64decode(encoded).decode() == f"{key_id}:{secret}"


@CREDENTIAL_SETTINGS
@given(token=CREDENTIALS)
async def test_any_soda_token_is_refused_or_delivered_intact(token: str) -> None:
    """Any token is a UsageError, or arrives as the one cookie header, unsplit."""
    async with _header_echo() as served:
        try:
            provider = SodaProvider(token=token, base_url=served.base_url, max_retries=0)
        except errors.UsageError:
            event("refused at construction")
            return
        event("delivered")
        request = await _deliver(provider, served)
    assert request.headers.getall("Cookie") == [_ows(f"token={token}")]


# -- redirects ---------------------------------------------------------------------------


def _redirect_to(target: str, status: int) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        return web.Response(status=status, headers={"Location": target + request.path_qs})

    return handler


async def _record_only(request: web.Request) -> web.StreamResponse:
    return web.json_response(EMPTY_PAGE)


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
@pytest.mark.parametrize("credential", ["basic", "token", "kubiya", "borrowed-session"])
async def test_redirects_never_carry_credentials_to_another_host(
    status: int, credential: str
) -> None:
    """A 3xx to another host is not followed: it is an APIError and the other host sees nothing."""
    async with (
        serve(_record_only, host="localhost") as other,
        serve(_redirect_to(other.base_url, status)) as first,
        aiohttp.ClientSession() as session,  # a borrowed session follows redirects by default
    ):
        options: dict[str, Any] = {"base_url": first.base_url, "retry": FAST}
        if credential == "borrowed-session":
            options["session"] = session
        provider: RunnerProvider
        if credential == "kubiya":
            provider = KubiyaProvider("kubiya-key", **options)
        elif credential == "token":
            provider = SodaProvider(token="soda-token", **options)
        else:
            provider = SodaProvider("key-id", "key-secret", **options)
        async with provider:
            with pytest.raises(errors.APIError) as info:
                _ = [r async for r in provider.list_runners()]
    assert info.value.status == status
    assert other.requests == []
    assert len(first.requests) == 1  # a 3xx is not retried either
    assert "Authorization" in first.requests[0].headers or "Cookie" in first.requests[0].headers
