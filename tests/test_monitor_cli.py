"""``runnerhub serve`` and ``runnerhub demo --serve`` as real processes, stopped by signals."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
import pytest_asyncio

from runnerhub._cli._serve import parse_listen
from runnerhub.cli import main
from runnerhub.errors import UsageError
from runnerhub.sandbox import Sandbox

from .conftest import TIME_SCALE

SECRET = "planted-serve-secret-K4d8"
KEY = "planted-serve-kubiya-key-J6s1"


@pytest_asyncio.fixture
async def accounts(tmp_path: Path) -> AsyncIterator[tuple[Path, dict[str, str]]]:
    """A served sandbox (20 Soda runners, 6 Kubiya) and an accounts file for it."""
    sandbox = Sandbox(seed=9, time_scale=TIME_SCALE)
    soda = sandbox.add_org("soda", "acme-eu", runners=20, api_key_secret=SECRET)
    sandbox.add_org("kubiya", "kubiya-prod", runners=6, unhealthy=2, api_key=KEY)
    async with sandbox.serve() as base_url:
        path = tmp_path / "accounts.toml"
        path.write_text(
            "\n".join(
                [
                    "[accounts.acme-eu]",
                    'provider = "soda"',
                    f'base_url = "{base_url}"',
                    f'api_key_id = "{soda.api_key_id}"',
                    'api_key_secret_env = "SERVE_TEST_SECRET"',
                    "[accounts.acme-eu.rate_limits]",
                    f"list_runners = {{max_requests = 60, period_seconds = {60 / TIME_SCALE}}}",
                    "[accounts.kubiya-prod]",
                    'provider = "kubiya"',
                    f'base_url = "{base_url}"',
                    'api_key_env = "SERVE_TEST_KEY"',
                ]
            )
            + "\n",
            encoding="utf-8",
        )
        env = {**os.environ, "SERVE_TEST_SECRET": SECRET, "SERVE_TEST_KEY": KEY}
        env.pop("RUNNERHUB_CONFIG", None)
        yield path, env


async def _start(*argv: str, env: dict[str, str]) -> tuple[asyncio.subprocess.Process, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "runnerhub",
        *argv,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    assert proc.stdout is not None
    while True:
        line = (await asyncio.wait_for(proc.stdout.readline(), 60)).decode()
        assert line, "the process ended before serving"
        found = re.search(r"serving at (http://\S+)/ ", line)
        if found:
            return proc, found.group(1)


async def _ready(client: aiohttp.ClientSession, url: str) -> None:
    while True:
        async with client.get(f"{url}/readyz") as response:
            if response.status == 200:
                return
        await asyncio.sleep(0.05)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
async def test_serve_runs_until_a_signal_and_exits_cleanly(
    accounts: tuple[Path, dict[str, str]], signum: signal.Signals
) -> None:
    """serve answers /readyz and /metrics; SIGTERM or Ctrl-C ends it with 0, quietly."""
    path, env = accounts
    argv = ("--config", str(path), "serve", "--listen", "127.0.0.1:0", "--interval", "0.5")
    proc, url = await _start(*argv, "--per-runner", env=env)
    try:
        async with aiohttp.ClientSession() as client:
            await asyncio.wait_for(_ready(client, url), 60)
            async with client.get(f"{url}/metrics") as response:
                metrics = await response.text()
            async with client.get(f"{url}/") as response:
                page = await response.text()
    finally:
        proc.send_signal(signum)
        out, err = await asyncio.wait_for(proc.communicate(), 20)
    assert proc.returncode == 0, err
    assert b"Traceback" not in err
    assert b"Unclosed" not in err
    assert 'runnerhub_account_up{account="acme-eu",provider="soda"} 1.0' in metrics
    assert "runnerhub_runner_up{" in metrics
    for secret in (SECRET, KEY):
        assert secret not in metrics + page
        assert secret.encode() not in out + err


async def test_serve_one_account(accounts: tuple[Path, dict[str, str]]) -> None:
    """--account limits the monitor to the accounts named."""
    path, env = accounts
    argv = ("--config", str(path), "--account", "kubiya-prod", "serve", "--listen", "127.0.0.1:0")
    proc, url = await _start(*argv, "--interval", "0.5", "--no-health", env=env)
    try:
        async with aiohttp.ClientSession() as client:
            await asyncio.wait_for(_ready(client, url), 60)
            async with client.get(f"{url}/api/inventory") as response:
                document = await response.json()
    finally:
        proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.communicate(), 20)
    assert list(document["monitor"]["accounts"]) == ["kubiya-prod"]
    assert document["summary"]["runners"] == 6


async def test_demo_serve_monitors_the_demo_fleet() -> None:
    """demo --serve serves the demo fleet's 4,600 runners until SIGTERM."""
    env = {**os.environ}
    argv = ("demo", "--serve", "--listen", "127.0.0.1:0", "--interval", "2", "--no-health")
    proc, url = await _start(*argv, env=env)
    try:
        async with aiohttp.ClientSession() as client:
            await asyncio.wait_for(_ready(client, url), 60)
            async with client.get(f"{url}/api/inventory") as response:
                document = await response.json()
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(proc.communicate(), 20)
    assert proc.returncode == 0, err
    assert document["summary"]["runners"] == 4600


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["serve", "--listen", "nowhere"], "--listen wants HOST:PORT"),
        (["serve", "--interval", "0"], "--interval must be > 0"),
        (["serve", "--budget-share", "2"], "--budget-share must be in (0, 1]"),
        (["demo", "--serve", "--budget-share", "0"], "--budget-share must be in (0, 1]"),
    ],
)
def test_bad_options_are_usage_errors(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Bad monitor options exit 2 with one line naming the option, before anything starts."""
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err
    assert len(err.strip().splitlines()) == 1


def test_listen_addresses() -> None:
    """HOST:PORT, [IPv6]:PORT; anything else is refused."""
    assert parse_listen("127.0.0.1:9464") == ("127.0.0.1", 9464)
    assert parse_listen("[::1]:0") == ("::1", 0)
    for text in ("9464", ":9464", "host:", "host:99999", "host:x"):
        with pytest.raises(UsageError):
            parse_listen(text)


async def test_a_busy_port_is_one_line_error(
    accounts: tuple[Path, dict[str, str]],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """serve on a port already taken exits 4 with one line saying so."""
    path, _ = accounts
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    monkeypatch.setenv("SERVE_TEST_SECRET", SECRET)
    monkeypatch.setenv("SERVE_TEST_KEY", KEY)
    try:
        argv = ["--config", str(path), "serve", "--listen", f"127.0.0.1:{port}"]
        code = await asyncio.to_thread(main, argv)
    finally:
        server.close()
        await server.wait_closed()
    err = capsys.readouterr().err
    assert code == 4
    assert f"cannot serve on 127.0.0.1:{port}" in err


async def test_demo_serve_on_a_busy_port_is_one_line_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """demo --serve on a port already taken exits 4 and says which address."""
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        argv = ["demo", "--serve", "--listen", f"127.0.0.1:{port}"]
        code = await asyncio.to_thread(main, argv)
    finally:
        server.close()
        await server.wait_closed()
    assert code == 4
    assert f"cannot serve on 127.0.0.1:{port}" in capsys.readouterr().err


def test_without_the_serve_extra_the_command_says_what_to_install() -> None:
    """With prometheus_client missing, serve exits 2 naming the extra, not with a traceback."""
    import subprocess

    code = (
        "import sys; sys.modules['prometheus_client'] = None\n"
        "from runnerhub.cli import main\n"
        "sys.exit(main(['demo', '--serve']))\n"
    )
    result = subprocess.run(  # noqa: S603 - our interpreter, a fixed program
        [sys.executable, "-c", code], capture_output=True, text=True, check=False
    )
    assert result.returncode == 2
    assert "pip install 'runnerhub[serve]'" in result.stderr
    assert "Traceback" not in result.stderr
