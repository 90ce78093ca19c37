"""The sandbox as a whole: serving, the request log, the demo fleet and its boundaries."""

from __future__ import annotations

import ast
import asyncio
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

import runnerhub.sandbox
from runnerhub.sandbox import RequestRecord, Sandbox

SANDBOX_DIR = Path(runnerhub.sandbox.__file__).parent


def record(
    t: float, credential: str = "a", status: int = 200, operation: str = "op"
) -> RequestRecord:
    """A logged Soda request at ``t``."""
    return RequestRecord(t, "soda", credential, operation, "GET", "/api/v1/runners", status)


def test_max_in_window_is_per_credential_and_half_open() -> None:
    """Requests exactly one period apart never share a window; 429s and other keys don't count."""
    sandbox = Sandbox()
    sandbox.requests += [record(t) for t in (0.0, 0.5, 1.0, 1.2)]
    sandbox.requests += [record(0.6, status=429), record(0.7, credential="b")]
    sandbox.requests.append(record(0.8, operation="other"))
    assert sandbox.max_in_window("soda", "op", 1.0) == 3
    assert sandbox.max_in_window("soda", "op", 1.21) == 4
    assert sandbox.max_in_window("soda", "*", 1.0) == 4
    assert sandbox.max_in_window("kubiya", "*", 1.0) == 0


async def test_request_log(http: aiohttp.ClientSession) -> None:
    """Each request is logged with vendor, operation, org, status and a credential tag, in order."""
    sandbox = Sandbox()
    soda = sandbox.add_org("soda", "acme-eu", runners=1)
    kubiya = sandbox.add_org("kubiya", "kubiya-prod", runners=1)
    soda_auth = {"Authorization": aiohttp.encode_basic_auth(soda.api_key_id, soda.api_key_secret)}
    kubiya_auth = {"Authorization": f"UserKey {kubiya.api_key}"}
    async with sandbox.serve() as url:
        async with http.get(f"{url}/api/v1/runners", headers=soda_auth) as resp:
            await resp.read()
        async with http.post(f"{url}/api/v3/runners/new", headers=kubiya_auth) as resp:
            await resp.read()
        async with http.get(f"{url}/api/v3/runners/new/health") as resp:
            await resp.read()
        async with http.get(f"{url}/elsewhere") as resp:
            assert resp.status == 404
    rows = [(r.vendor, r.operation, r.method, r.org, r.status) for r in sandbox.requests]
    assert rows == [
        ("soda", "list_runners", "GET", "acme-eu", 200),
        ("kubiya", "create_runner", "POST", "kubiya-prod", 200),
        ("kubiya", "runner_health", "GET", None, 401),
    ]
    first, second, third = sandbox.requests
    assert first.t <= second.t <= third.t
    assert len(first.credential) == 12
    assert first.credential not in (soda.api_key_id, soda.api_key_secret)
    assert third.credential == ""
    assert sandbox.count(vendor="kubiya") == 2
    assert sandbox.count(status=401) == 1
    assert sandbox.count(vendor="kubiya", org="kubiya-prod", operation="create_runner") == 1


def test_secrets_stay_out_of_reprs() -> None:
    """No key, secret or token appears in the repr of the sandbox or its orgs."""
    sandbox = Sandbox(seed=3)
    soda = sandbox.add_org("soda", "acme-eu", runners=2)
    kubiya = sandbox.add_org("kubiya", "kubiya-prod", runners=2)
    text = repr(sandbox) + repr(soda) + repr(kubiya)
    for secret in (soda.api_key_secret, soda.token, kubiya.api_key):
        assert secret not in text
    assert kubiya.helm_values("kubiya-hosted")["nats"]["jwt"] not in text


def test_demo_fleet() -> None:
    """``demo()`` builds soda-eu (3000), soda-us (1500) and kubiya-prod (40, 8 unwell)."""
    sandbox = Sandbox.demo(seed=7)
    assert {name: len(org.runners) for name, org in sandbox.service("soda").orgs.items()} == {
        "soda-eu": 3000,
        "soda-us": 1500,
    }
    prod = sandbox.service("kubiya").orgs["kubiya-prod"]
    assert len(prod.runners) == 40
    assert sorted(set(prod.health.values())) == ["degraded", "missing", "non-responsive", "ok"]
    again = Sandbox.demo(seed=7)
    eu, again_eu = sandbox.service("soda").orgs["soda-eu"], again.service("soda").orgs["soda-eu"]
    assert again_eu.api_key_id == eu.api_key_id
    assert again.service("kubiya").orgs["kubiya-prod"].api_key == prod.api_key


def test_constructor_and_org_checks() -> None:
    """Bad options and duplicate org names fail early."""
    with pytest.raises(ValueError, match="time_scale"):
        Sandbox(time_scale=0)
    with pytest.raises(ValueError, match="unknown Soda operations"):
        Sandbox(vendor_options={"soda": {"limits": {"list_everything": (1, 1.0)}}})
    sandbox = Sandbox()
    sandbox.add_org("soda", "acme")
    with pytest.raises(ValueError, match="already exists"):
        sandbox.add_org("soda", "acme")


async def test_serve_sets_base_url_once(http: aiohttp.ClientSession) -> None:
    """``base_url`` is set only while serving, and one sandbox serves once at a time."""
    sandbox = Sandbox()
    assert Sandbox().base_url is None
    async with sandbox.serve() as url:
        assert sandbox.base_url == url
        assert url.startswith("http://127.0.0.1:")
        with pytest.raises(RuntimeError, match="already serving"):
            async with sandbox.serve():
                pass
    assert sandbox.base_url is None


async def test_orgs_added_while_serving(http: aiohttp.ClientSession) -> None:
    """An org added after the server started is served at once."""
    sandbox = Sandbox()
    async with sandbox.serve() as url:
        org = sandbox.add_org("kubiya", "late", runners=2)
        headers = {"Authorization": f"UserKey {org.api_key}"}
        async with http.get(f"{url}/api/v3/runners", headers=headers) as resp:
            assert len(await resp.json()) == 2


async def test_make_app_runs_under_a_caller_owned_runner(http: aiohttp.ClientSession) -> None:
    """``make_app()`` is a plain aiohttp application sharing the sandbox state."""
    sandbox = Sandbox()
    org = sandbox.add_org("kubiya", "kubiya-prod", runners=3)
    runner = web.AppRunner(sandbox.make_app())
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        headers = {"Authorization": f"UserKey {org.api_key}"}
        async with http.get(f"http://127.0.0.1:{port}/api/v3/runners", headers=headers) as resp:
            assert len(await resp.json()) == 3
    finally:
        await runner.cleanup()
    assert len(sandbox.requests) == 1


async def test_run_forever_until_cancelled(http: aiohttp.ClientSession) -> None:
    """``run_forever`` reports its URL through ``on_ready`` and stops when cancelled."""
    sandbox = Sandbox()
    ready: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(
        runnerhub.sandbox.run_forever(sandbox, port=0, on_ready=ready.set_result)
    )
    url = await asyncio.wait_for(ready, 5)
    async with http.get(f"{url}/api/v3/runners") as resp:
        assert resp.status == 401
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert sandbox.base_url is None


async def test_pytest_fixture_serves(
    runnerhub_sandbox: Sandbox, http: aiohttp.ClientSession
) -> None:
    """The ``runnerhub_sandbox`` fixture yields an empty sandbox that is already serving."""
    assert runnerhub_sandbox.base_url is not None
    org = runnerhub_sandbox.add_org("soda", "acme-eu", runners=12)
    headers = {"Cookie": f"token={org.token}"}
    async with http.get(f"{runnerhub_sandbox.base_url}/api/v1/runners", headers=headers) as resp:
        assert (await resp.json())["totalElements"] == 12


def test_public_surface() -> None:
    """``__all__`` is sorted and lists what the package exports."""
    names = runnerhub.sandbox.__all__
    assert names == sorted(names)
    assert all(hasattr(runnerhub.sandbox, name) for name in names)


def test_sandbox_imports_nothing_from_the_client() -> None:
    """No sandbox module imports runnerhub code outside ``runnerhub.sandbox`` but the registry.

    The registry (``runnerhub.vendors``) holds import-path strings only; it is
    how the ``Sandbox`` finds each vendor's service without naming one.
    """
    for path in SANDBOX_DIR.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                module = node.module or ""
                assert node.level <= 1, f"{path.name} reaches outside the sandbox"
                if node.level == 0:
                    assert (
                        not module.startswith("runnerhub")
                        or module.startswith("runnerhub.sandbox")
                        or module == "runnerhub.vendors"
                    ), f"{path.name} imports {module}"
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    assert not alias.name.startswith("runnerhub"), (
                        f"{path.name} imports {alias.name}"
                    )


def test_importing_runnerhub_does_not_load_the_sandbox() -> None:
    """``import runnerhub`` leaves the sandbox (and its server code) unloaded."""
    code = "import sys, runnerhub; print('runnerhub.sandbox' in sys.modules)"
    out = subprocess.run(  # noqa: S603 - fixed argv, our own interpreter
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "False"
