"""Echoed credentials: a hostile vendor that repeats what it received never gets it printed.

Each server here echoes the ``Authorization`` header, the ``token`` cookie and
their decoded or re-encoded forms into its JSON error body and its trace-id
header. The error's message, code, trace id, ``str``, ``repr``, pickle, JSON
form, the log and the CLI's stderr must carry none of them.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import pickle
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest
from aiohttp import web

from runnerhub import KubiyaProvider, RetryPolicy, RunnerProvider, SodaProvider, errors
from runnerhub._sansio import Redactor
from runnerhub._serialize import error_to_json
from runnerhub.cli import main

from ._hostile import serve

KEY_ID = "key-id-7d1e"
SECRET = "s3cr3t/Pa+ss=word&x"  # characters that every encoding changes
TOKEN = "tok-9f8e7d6c5b4a"
KUBIYA_KEY = "kub-eyJhbGciOi.J9/secret+key"
NO_RETRY = RetryPolicy(max_retries=0)
BASIC = base64.b64encode(f"{KEY_ID}:{SECRET}".encode()).decode()


def _forms(*secrets: str) -> list[str]:
    """Every form in which a gateway might echo a secret."""
    out = []
    for secret in secrets:
        raw = secret.encode()
        out += [
            secret,
            quote(secret, safe=""),
            quote_plus(secret),
            base64.b64encode(raw).decode(),
            base64.urlsafe_b64encode(raw).decode().rstrip("="),
            secret.upper(),
        ]
    return out


def _leaks(text: str, secrets: list[str]) -> list[str]:
    return [s for s in secrets if s in text]


async def _echo(request: web.Request) -> web.StreamResponse:
    """Answer 401 with everything the client sent, in every encoding, body and headers."""
    auth = request.headers.get("Authorization", "")
    cookie = request.headers.get("Cookie", "")
    credential = auth.partition(" ")[2]
    echoed = [auth, credential, cookie, cookie.partition("=")[2]]
    if auth.startswith("Basic "):
        pair = base64.b64decode(credential).decode()
        echoed += [pair, pair.partition(":")[2]]
    pieces = [form for value in echoed if value for form in _forms(value)]
    body = {
        "code": credential or cookie,
        "message": "rejected credentials: " + " | ".join(pieces),
        "error": {"code": auth or cookie, "message": "rejected " + " ".join(pieces)},
    }
    trace = f"trace-{credential or cookie}-{quote(auth or cookie, safe='')}"
    headers = {"X-Soda-Trace-Id": trace, "X-Request-Id": trace}
    return web.json_response(body, status=401, headers=headers)


Build = Callable[[str], RunnerProvider]

CASES: dict[str, tuple[Build, list[str]]] = {
    "soda-basic": (
        lambda url: SodaProvider(KEY_ID, SECRET, base_url=url, retry=NO_RETRY),
        _forms(SECRET, f"{KEY_ID}:{SECRET}", BASIC),
    ),
    "soda-token": (
        lambda url: SodaProvider(token=TOKEN, base_url=url, retry=NO_RETRY),
        _forms(TOKEN, f"token={TOKEN}"),
    ),
    "kubiya": (
        lambda url: KubiyaProvider(KUBIYA_KEY, base_url=url, retry=NO_RETRY),
        _forms(KUBIYA_KEY, f"UserKey {KUBIYA_KEY}"),
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
async def test_echoed_credentials_never_surface(
    case: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Message, code, trace id, str, repr, pickle, JSON and logs hold no form of the secret."""
    build, secrets = CASES[case]
    caplog.set_level(logging.DEBUG, logger="runnerhub")
    async with serve(_echo) as served:
        provider = build(served.base_url)
        async with provider:
            with pytest.raises(errors.AuthenticationError) as caught:
                await provider.get_runner("r1")
    error = caught.value
    assert "[redacted]" in error.message  # the server did echo, and it was masked
    assert error.trace_id is not None
    surfaces = {
        "message": error.message,
        "code": error.code or "",
        "trace_id": error.trace_id,
        "str": str(error),
        "repr": repr(error),
        "args": repr(error.args),
        "pickle": pickle.dumps(error).decode("latin-1"),
        "unpickled": str(pickle.loads(pickle.dumps(error))),  # noqa: S301 - our own bytes
        "json": str(error_to_json(error)),
        "log": caplog.text,
    }
    for name, text in surfaces.items():
        assert _leaks(text, secrets) == [], name


async def test_echo_in_a_malformed_success_body_is_redacted() -> None:
    """A 200 whose body is not the documented shape: the format error holds no secret."""

    async def handler(request: web.Request) -> web.StreamResponse:
        key = request.headers["Authorization"].partition(" ")[2]
        page = {"content": [], "first": True, "last": True, "number": key}
        page |= {"size": 10, "totalElements": 0, "totalPages": 0}
        return web.json_response(page)

    async with (
        serve(handler) as served,
        SodaProvider(KEY_ID, SECRET, base_url=served.base_url) as soda,
    ):
        with pytest.raises(errors.ResponseFormatError) as caught:
            [r async for r in soda.list_runners()]
    secrets = _forms(SECRET, BASIC)
    assert _leaks(str(caught.value) + repr(caught.value), secrets) == []


async def test_cli_stderr_holds_no_echoed_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``runnerhub get`` against an echoing vendor prints an error line without the secret."""
    monkeypatch.setenv("REDACTION_TEST_SECRET", SECRET)
    async with serve(_echo) as served:
        config = tmp_path / "accounts.toml"
        config.write_text(
            "[accounts.acme]\n"
            'provider = "soda"\n'
            f'base_url = "{served.base_url}"\n'
            f'api_key_id = "{KEY_ID}"\n'
            'api_key_secret_env = "REDACTION_TEST_SECRET"\n'
            "max_retries = 0\n",
            encoding="utf-8",
        )
        code = await asyncio.to_thread(main, ["--config", str(config), "-v", "get", "r1"])
    captured = capsys.readouterr()
    assert code != 0
    assert "redacted" in captured.err
    secrets = _forms(SECRET, BASIC)
    assert _leaks(captured.out + captured.err, secrets) == []


def test_redactor_forms_and_repr() -> None:
    """Each form of a Basic pair is masked; the redactor's repr shows none of them."""
    header = "Basic " + base64.b64encode(f"{KEY_ID}:{SECRET}".encode()).decode()
    redact = Redactor.for_headers({"Authorization": header})
    for form in _forms(SECRET):
        assert redact(f"<{form}>") == "<[redacted]>", form
    assert redact(f"id {KEY_ID} is not secret") == f"id {KEY_ID} is not secret"
    assert SECRET not in repr(redact)
    with pytest.raises(TypeError):
        pickle.dumps(redact)


def test_short_strings_are_not_searched() -> None:
    """A credential shorter than 4 characters is not searched for: it would mask words."""
    assert Redactor(["abc"])("abc abc") == "abc abc"
    assert Redactor([])("anything") == "anything"
