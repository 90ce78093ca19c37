"""Many accounts in one process: the shared session pool, bounded concurrency, and a smoke
inventory of 2,000 accounts under a 512-descriptor limit."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import textwrap
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import attrs
import pytest
from aiohttp import web

from runnerhub import AccountProgress, RunnerHub, SessionPool, SodaProvider, errors
from runnerhub.config import load_hub
from runnerhub.sandbox import Sandbox

from .conftest import VendorCase

ROOT = Path(__file__).resolve().parent.parent
EMPTY_PAGE = {
    "content": [],
    "first": True,
    "last": True,
    "number": 0,
    "size": 1000,
    "totalElements": 0,
    "totalPages": 0,
}


def _soda_orgs(sandbox: Sandbox, count: int, runners: int) -> list[dict[str, str]]:
    """Add ``count`` Soda orgs; return each one's label and credentials."""
    accounts = []
    for number in range(count):
        name = f"org-{number:04d}"
        sandbox.add_org("soda", name, runners=runners)
        credentials = sandbox.service("soda").account(name).credentials
        key_id, secret = credentials["api_key_id"], credentials["api_key_secret"]
        accounts.append({"label": name, "key_id": key_id, "secret": secret})
    return accounts


@attrs.define
class Recorder:
    """What the recording server saw."""

    base_url: str = ""
    headers: list[dict[str, str]] = attrs.field(factory=list)
    in_flight: int = 0
    most_in_flight: int = 0


@asynccontextmanager
async def _recording_server() -> AsyncIterator[Recorder]:
    """An empty Soda listing that records request headers, counts requests in flight,
    and tries to plant a cookie with every answer."""
    recorder = Recorder()

    async def listing(request: web.Request) -> web.StreamResponse:
        recorder.headers.append(dict(request.headers))
        recorder.in_flight += 1
        recorder.most_in_flight = max(recorder.most_in_flight, recorder.in_flight)
        try:
            await asyncio.sleep(0.01)
        finally:
            recorder.in_flight -= 1
        response = web.json_response(EMPTY_PAGE)
        response.set_cookie("session", f"planted-by-{len(recorder.headers)}")
        return response

    app = web.Application()
    app.router.add_get("/api/v1/runners", listing)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.2)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    recorder.base_url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        yield recorder
    finally:
        await runner.cleanup()


async def test_pool_opens_one_session_per_loop_and_reopens_after_closing() -> None:
    """Every call in a loop gives the same session; after aclose() a new one is opened."""
    pool = SessionPool(limit=4)
    first = pool()
    assert pool() is first
    assert first.connector is not None
    assert first.connector.limit == 4
    assert first.connector.limit_per_host == 4
    await pool.aclose()
    assert first.closed
    second = pool()
    assert second is not first
    open_before = not second.closed
    await pool.aclose()
    await pool.aclose()  # closing twice is harmless
    assert open_before
    assert second.closed
    assert "limit=4" in repr(pool)


def test_pool_refuses_a_limit_below_one() -> None:
    """A pool of no connections is refused."""
    with pytest.raises(errors.UsageError):
        SessionPool(limit=0)
    with pytest.raises(errors.UsageError):
        SessionPool(limit_per_host=0)


async def test_pooled_accounts_send_their_own_credentials_and_no_cookies() -> None:
    """Accounts on one pool each send their own credential, and a cookie set for one
    account's request is never sent again, for it or any other account."""
    pool = SessionPool()
    async with _recording_server() as server:
        key = SodaProvider("key-a", "secret-a", base_url=server.base_url, session=pool, account="a")
        token = SodaProvider(token="token-b", base_url=server.base_url, session=pool, account="b")
        async with RunnerHub([key, token], pool=pool, max_concurrency=1) as hub:
            for _ in range(2):
                inventory = await hub.inventory()
                assert inventory.complete
    await pool.aclose()
    assert len(server.headers) == 4
    key_requests = [h for h in server.headers if "Authorization" in h]
    token_requests = [h for h in server.headers if "Authorization" not in h]
    assert len(key_requests) == len(token_requests) == 2
    for headers in key_requests:
        assert headers["Authorization"].startswith("Basic ")
        assert "Cookie" not in headers
    for headers in token_requests:
        assert headers["Cookie"] == "token=token-b"


async def test_session_factory_is_called_at_first_request_and_after_closing() -> None:
    """A callable session is not called until a request needs it, is called once while
    its session is open, and is called again once that session was closed."""
    pool = SessionPool()
    calls = 0

    def factory() -> aiohttp.ClientSession:
        nonlocal calls
        calls += 1
        return pool()

    async with _recording_server() as server:
        provider = SodaProvider("key", "secret", base_url=server.base_url, session=factory)
        assert calls == 0
        assert [r async for r in provider.list_runners()] == []
        assert [r async for r in provider.list_runners()] == []
        assert calls == 1
        await provider.aclose()
        assert not pool().closed  # the provider never closes what it borrowed
        await pool.aclose()
        assert [r async for r in provider.list_runners()] == []
        assert calls == 2
        await pool.aclose()


async def test_a_closed_borrowed_session_is_refused() -> None:
    """A request through a session the caller closed raises UsageError; the provider
    does not quietly open a session of its own."""
    async with _recording_server() as server:
        session = aiohttp.ClientSession()
        await session.close()
        provider = SodaProvider("key", "secret", base_url=server.base_url, session=session)
        with pytest.raises(errors.UsageError, match="closed"):
            await provider.verify()
        assert provider._http._session is session
    assert server.headers == []


async def test_every_vendor_works_through_a_pool(case: VendorCase) -> None:
    """Each vendor's provider lists and gets through a pool's session, and leaves it open."""
    pool = SessionPool(limit=2)
    async with case.provider(session=pool) as provider:
        ids = [runner.id async for runner in provider.list_runners()]
        runner = await provider.get_runner(case.runner_ids[0])
    assert sorted(ids) == sorted(case.runner_ids)
    assert runner.id == case.runner_ids[0]
    assert not pool().closed
    await pool.aclose()


def test_session_must_be_a_session_or_a_callable() -> None:
    """Any other session value is refused when the provider is built."""
    with pytest.raises(errors.UsageError, match="session"):
        SodaProvider("key", "secret", session="http://pool")  # type: ignore[arg-type]


def test_connector_limit_with_a_given_session_is_refused() -> None:
    """connector_limit would be silently ignored with a borrowed session, so it is refused."""
    with pytest.raises(errors.UsageError, match="connector_limit"):
        SodaProvider("key", "secret", session=SessionPool(), connector_limit=8)


def test_accounts_file_connector_limit_is_refused(tmp_path: Path) -> None:
    """An accounts file's connector_limit names its account: its providers share a pool."""
    path = tmp_path / "runnerhub.toml"
    path.write_text(
        '[accounts.a]\nprovider = "soda"\napi_key_id = "k"\napi_key_secret_env = "S"\n'
        "connector_limit = 8\n",
        encoding="utf-8",
    )
    with pytest.raises(errors.UsageError, match=r"accounts\.a.*connector_limit"):
        load_hub(path, environ={"S": "secret"})


@pytest.mark.parametrize("method", ["inventory", "stream"])
async def test_hub_fetches_at_most_max_concurrency_accounts_at_once(method: str) -> None:
    """With max_concurrency=3, twelve accounts are fetched three at a time, all of them."""
    async with _recording_server() as server:
        providers = [
            SodaProvider(f"key-{n}", "secret", base_url=server.base_url, account=f"a{n:02d}")
            for n in range(12)
        ]
        async with RunnerHub(providers, max_concurrency=3) as hub:
            if method == "inventory":
                inventory = await hub.inventory()
                assert inventory.complete
            else:
                errors_seen: dict[str, errors.RunnerHubError] = {}
                assert [r async for r in hub.stream(collect_errors=errors_seen)] == []
                assert errors_seen == {}
    assert len(server.headers) == 12
    assert server.most_in_flight == 3


async def test_progress_shows_no_more_accounts_in_flight_than_allowed() -> None:
    """Progress reports never show more than max_concurrency accounts between start and done."""
    sandbox = Sandbox(seed=3)
    accounts = _soda_orgs(sandbox, 8, runners=2)
    started: set[str] = set()
    most = 0

    def progress(update: AccountProgress) -> None:
        nonlocal most
        if update.done:
            started.discard(update.account)
        else:
            started.add(update.account)
        most = max(most, len(started))

    async with sandbox.serve():
        base_url = sandbox.url("soda")
        providers = [
            SodaProvider(a["key_id"], a["secret"], base_url=base_url, account=a["label"])
            for a in accounts
        ]
        async with RunnerHub(providers, max_concurrency=2) as hub:
            inventory = await hub.inventory(progress=progress)
            assert [p.account for p in hub.select(accounts=["org-0005", "org-0001"])] == [
                "org-0001",
                "org-0005",
            ]
    assert inventory.complete
    assert len(inventory.runners) == 16
    assert most == 2


def test_max_concurrency_must_be_positive() -> None:
    """A hub that could fetch no account is refused."""
    with pytest.raises(errors.UsageError, match="max_concurrency"):
        RunnerHub([], max_concurrency=0)


def _accounts_file(tmp_path: Path, base_url: str, accounts: list[dict[str, str]]) -> Path:
    """An accounts file for ``accounts``; secrets by environment variable SECRET_<n>."""
    lines = []
    for number, account in enumerate(accounts):
        lines += [
            f'[accounts."{account["label"]}"]',
            'provider = "soda"',
            f'base_url = "{base_url}"',
            f'api_key_id = "{account["key_id"]}"',
            f'api_key_secret_env = "SECRET_{number}"',
        ]
    path = tmp_path / "runnerhub.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _secrets(accounts: list[dict[str, str]]) -> dict[str, str]:
    return {f"SECRET_{number}": account["secret"] for number, account in enumerate(accounts)}


async def test_accounts_file_providers_share_one_pool_the_hub_closes(tmp_path: Path) -> None:
    """Providers loaded from an accounts file share one session, closed by the hub."""
    sandbox = Sandbox(seed=4)
    accounts = _soda_orgs(sandbox, 3, runners=2)
    async with sandbox.serve():
        path = _accounts_file(tmp_path, sandbox.url("soda"), accounts)
        hub = load_hub(path, environ=_secrets(accounts))
        async with hub:
            inventory = await hub.inventory()
            sessions = {id(p._http._session) for p in hub.providers}  # type: ignore[attr-defined]
            session = hub.providers[0]._http._session  # type: ignore[attr-defined]
        assert inventory.complete
        assert len(sessions) == 1
        assert session.closed


async def test_accounts_file_with_a_session_of_the_callers(tmp_path: Path) -> None:
    """A session given to load_hub goes to every provider and outlives the hub."""
    sandbox = Sandbox(seed=5)
    accounts = _soda_orgs(sandbox, 2, runners=1)
    async with sandbox.serve(), aiohttp.ClientSession() as session:
        path = _accounts_file(tmp_path, sandbox.url("soda"), accounts)
        async with load_hub(path, environ=_secrets(accounts), session=session) as hub:
            inventory = await hub.inventory()
            assert all(p._http._session is session for p in hub.providers)  # type: ignore[attr-defined]
        assert inventory.complete
        assert not session.closed


# The client of the smoke test: its own process, so that its descriptor limit and
# its sockets are its own (the sandbox serves from the test's process).
_CLIENT = textwrap.dedent(
    """
    import asyncio, json, resource, sys
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (int(sys.argv[2]), hard))
    from runnerhub.config import load_hub

    async def main():
        async with load_hub(sys.argv[1]) as hub:
            inventory = await hub.inventory()
        failed = sorted(inventory.errors.items())
        print(json.dumps({
            "accounts": len(inventory.accounts),
            "runners": len(inventory.runners),
            "failed": [f"{label}: {error}" for label, error in failed[:3]],
            "nofile": resource.getrlimit(resource.RLIMIT_NOFILE)[0],
        }))

    asyncio.run(main())
    """
)


@pytest.mark.slow
async def test_2000_accounts_under_512_descriptors(tmp_path: Path) -> None:
    """An accounts file of 2,000 accounts is inventoried by a process limited to 512
    descriptors with no failed account (one session per provider would need 2,000)."""
    sandbox = Sandbox(seed=6)
    accounts = _soda_orgs(sandbox, 2000, runners=3)
    async with sandbox.serve():
        path = _accounts_file(tmp_path, sandbox.url("soda"), accounts)
        env = {**os.environ, **_secrets(accounts), "PYTHONPATH": str(ROOT)}
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            _CLIENT,
            str(path),
            "512",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
        )
        stdout, stderr = await process.communicate()
    assert process.returncode == 0, stderr.decode()[-2000:]
    result: dict[str, Any] = json.loads(stdout)
    assert result["nofile"] == 512
    assert result["failed"] == []
    assert result["accounts"] == 2000
    assert result["runners"] == 6000
