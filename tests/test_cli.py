"""The command line, driven through its entry point against the sandbox over loopback.

Most tests call ``main([...])`` in a worker thread (it runs its own event loop)
while the sandbox serves in the test's loop; a few run ``python -m runnerhub``
and the ``runnerhub`` script as real processes. Outputs are parsed, not grepped.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import re
import signal
import socket
import sys
from collections.abc import AsyncIterator, Callable, Coroutine
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import attrs
import pytest
import pytest_asyncio

from runnerhub import RunnerStatus, SodaProvider
from runnerhub.cli import main
from runnerhub.config import load_hub
from runnerhub.sandbox import Fault, FaultKind, KubiyaOrg, Sandbox, SodaOrg

from .conftest import TIME_SCALE

# Planted credentials: distinct, greppable, and never to appear in any output.
EU_SECRET = "planted-soda-eu-secret-Q7w9"
US_TOKEN = "planted-soda-us-cookie-token-Z3k8"
KUBIYA_KEY = "planted-kubiya-api-key-M5p2"
WRONG_SECRET = "planted-wrong-secret-X1c4"
PLANTED = (EU_SECRET, US_TOKEN, KUBIYA_KEY, WRONG_SECRET)

ENV = {"CLI_TEST_EU_SECRET": EU_SECRET, "CLI_TEST_KUBIYA_KEY": KUBIYA_KEY}
SODA_OPS = ("list_runners", "create_runner", "get_runner", "delete_runner")
MASK = "**********"


@attrs.frozen
class Result:
    """What one CLI run left: exit code and both streams."""

    code: int
    out: str
    err: str

    @property
    def json(self) -> Any:
        """stdout parsed as one JSON document."""
        return json.loads(self.out)

    @property
    def err_lines(self) -> list[str]:
        """The non-empty lines of stderr."""
        return [line for line in self.err.splitlines() if line.strip()]


@attrs.frozen
class Fleet:
    """The served sandbox, its orgs, and an accounts file pointing at it."""

    sandbox: Sandbox
    base_url: str
    eu: SodaOrg
    us: SodaOrg
    kubiya: KubiyaOrg
    config: Path
    tmp: Path


Run = Callable[..., Coroutine[Any, Any, Result]]


def _limits(label: str, vendor: str) -> list[str]:
    lines = [f"[accounts.{label}.rate_limits]"]
    if vendor == "soda":
        per_minute = {"list_runners": 60, "create_runner": 10, "get_runner": 1000}
        per_minute["delete_runner"] = 10
        for operation, count in per_minute.items():
            lines.append(
                f"{operation} = {{max_requests = {count}, period_seconds = {60 / TIME_SCALE}}}"
            )
    else:
        lines.append(
            f'"*" = [{{max_requests = 100, period_seconds = {60 / TIME_SCALE}}}, '
            f"{{max_requests = 20, period_seconds = {10 / TIME_SCALE}}}]"
        )
    return lines


def write_accounts(
    path: Path, base_url: str, eu: SodaOrg, *, with_us: bool = True, extra: str = ""
) -> Path:
    """An accounts file whose secrets come from env vars and a secret file."""
    lines = [
        "[accounts.acme-eu]",
        'provider = "soda"',
        f'base_url = "{base_url}"',
        f'api_key_id = "{eu.api_key_id}"',
        'api_key_secret_env = "CLI_TEST_EU_SECRET"',
        *_limits("acme-eu", "soda"),
    ]
    if with_us:
        (path.parent / "acme-us.token").write_text(US_TOKEN + "\n", encoding="utf-8")
        lines += [
            "[accounts.acme-us]",
            'provider = "soda"',
            f'base_url = "{base_url}"',
            'token_file = "acme-us.token"',
            *_limits("acme-us", "soda"),
            "[accounts.kubiya-prod]",
            'provider = "kubiya"',
            f'base_url = "{base_url}"',
            'api_key_env = "CLI_TEST_KUBIYA_KEY"',
            *_limits("kubiya-prod", "kubiya"),
        ]
    path.write_text("\n".join(lines) + "\n" + extra, encoding="utf-8")
    return path


@pytest.fixture(autouse=True)
def _no_terminal_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Rich must not think the test run is a terminal because of the caller's env."""
    for name in ("FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("COLUMNS", "200")


@pytest_asyncio.fixture
async def fleet(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Fleet]:
    """Two Soda orgs and a Kubiya org (3 of 12 unhealthy), served; secrets in env and a file."""
    # strict: an operation Kubiya's docs do not list is a 400 the CLI must report.
    sandbox = Sandbox(seed=11, time_scale=TIME_SCALE, vendor_options={"kubiya": {"strict": True}})
    eu = sandbox.add_org("soda", "acme-eu", runners=25, api_key_secret=EU_SECRET)
    us = sandbox.add_org("soda", "acme-us", runners=12, token=US_TOKEN)
    kubiya = sandbox.add_org("kubiya", "kubiya-prod", runners=12, unhealthy=3, api_key=KUBIYA_KEY)
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("RUNNERHUB_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    async with sandbox.serve() as base_url:
        config = write_accounts(tmp_path / "accounts.toml", base_url, eu)
        yield Fleet(sandbox, base_url, eu, us, kubiya, config, tmp_path)


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str]) -> Run:
    """Run ``main(argv)`` in a thread (its own event loop) and capture what it wrote."""

    async def invoke(*argv: str) -> Result:
        capsys.readouterr()
        code = await asyncio.to_thread(main, list(argv))
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return invoke


def cfg(fleet: Fleet, *argv: str) -> list[str]:
    """``--config <file>`` followed by ``argv``."""
    return ["--config", str(fleet.config), *argv]


def one_line_error(result: Result) -> str:
    """The single stderr line of a failed command (and nothing on stdout)."""
    assert result.out == ""
    assert len(result.err_lines) == 1, result.err
    line = result.err_lines[0]
    assert line.startswith("runnerhub: error: ")
    assert "Traceback" not in result.err
    return line


def unhealthy(org: KubiyaOrg) -> list[str]:
    """Names of the runners the sandbox reports as not ok."""
    return [name for name, state in org.health.items() if state != "ok"]


def self_hosted_soda(org: SodaOrg) -> str:
    """A Soda runner that may be deleted."""
    return next(
        rid
        for rid, payload in org.runners.items()
        if payload["type"] == "SELF_HOSTED" and rid not in org.in_use
    )


# -- ls ------------------------------------------------------------------------------------


async def test_ls_table_lists_every_account_and_summary(fleet: Fleet, run: Run) -> None:
    """The table has the documented columns, one row per runner, then the summary block."""
    result = await run(*cfg(fleet, "ls"))
    assert result.code == 0
    # Said once: the Kubiya listing has no status, --health fills it.
    assert len(result.err_lines) == 1
    assert "kubiya-prod show as unknown" in result.err
    assert "--health" in result.err
    lines = result.out.splitlines()
    assert re.split(r"\s{3,}", lines[0]) == [
        "ACCOUNT",
        "ID",
        "NAME",
        "KIND",
        "STATUS",
        "VERSION",
        "LAST SEEN",
        "DESCRIPTION",
    ]
    rows = lines[1 : lines.index("")]
    assert len(rows) == 25 + 12 + 12
    assert {row.split()[0] for row in rows} == {"acme-eu", "acme-us", "kubiya-prod"}
    summary = "\n".join(lines[lines.index("") + 1 :])
    assert summary.startswith("49 runner(s) in 3 account(s)")
    assert "acme-eu 25   acme-us 12   kubiya-prod 12" in summary
    assert "failed accounts   none" in summary


async def test_ls_json_is_the_inventory_without_vendor_payloads(fleet: Fleet, run: Run) -> None:
    """-o json is the serialised inventory: every runner id, a summary, no ``raw``."""
    result = await run(*cfg(fleet, "ls", "-o", "json"))
    assert result.code == 0
    data = result.json
    ids = {r["id"] for r in data["runners"]}
    expected = set(fleet.eu.runners) | set(fleet.us.runners) | set(fleet.kubiya.runners)
    assert ids == expected
    assert data["summary"]["runners"] == 49
    assert data["errors"] == {}
    assert all("raw" not in r for r in data["runners"])


async def test_ls_ndjson_is_one_runner_per_line(fleet: Fleet, run: Run) -> None:
    """-o ndjson writes one runner object per line and nothing else, on either stream."""
    result = await run(*cfg(fleet, "ls", "-o", "ndjson"))
    assert result.code == 0
    assert result.err == ""
    runners = [json.loads(line) for line in result.out.splitlines()]
    assert len(runners) == 49
    assert all({"id", "account", "status", "kind", "versions"} <= set(r) for r in runners)


async def test_ls_csv_has_a_header_and_a_row_per_runner(fleet: Fleet, run: Run) -> None:
    """-o csv parses with the csv module; the version column follows runner/agent/generation."""
    result = await run(*cfg(fleet, "--account", "acme-eu", "ls", "-o", "csv"))
    assert result.code == 0
    rows = list(csv.DictReader(io.StringIO(result.out)))
    assert len(rows) == 25
    assert list(rows[0]) == [
        "account",
        "provider",
        "id",
        "name",
        "kind",
        "status",
        "version",
        "last_seen",
        "description",
    ]
    by_id = {row["id"]: row for row in rows}
    for rid, payload in fleet.eu.runners.items():
        versions = payload["versions"]
        assert by_id[rid]["version"] == versions.get("runner", versions.get("agent"))


async def test_ls_filters(fleet: Fleet, run: Run) -> None:
    """--account (repeatable), --provider, --status and --kind narrow the listing."""
    result = await run(
        *cfg(fleet, "ls", "--account", "acme-eu", "--status", "offline", "-o", "json")
    )
    offline = {rid for rid, p in fleet.eu.runners.items() if not p["isOnline"]}
    assert offline
    assert {r["id"] for r in result.json["runners"]} == offline

    result = await run(*cfg(fleet, "ls", "--provider", "kubiya", "--kind", "managed", "-o", "json"))
    assert [r["id"] for r in result.json["runners"]] == ["kubiya-hosted"]

    result = await run(
        *cfg(fleet, "ls", "--account", "acme-eu", "--account", "acme-us", "-o", "ndjson")
    )
    assert {json.loads(line)["account"] for line in result.out.splitlines()} == {
        "acme-eu",
        "acme-us",
    }


async def test_ls_health_uses_the_health_checks(fleet: Fleet, run: Run) -> None:
    """--health reports Kubiya's unhealthy runners as not online; a failed check is a warning."""
    result = await run(*cfg(fleet, "ls", "--provider", "kubiya", "--health", "-o", "json"))
    assert result.code == 0
    status = {r["id"]: r["status"] for r in result.json["runners"]}
    bad = unhealthy(fleet.kubiya)
    assert all(status[name] != "online" for name in bad)
    assert sum(1 for s in status.values() if s == "online") == 12 - len(bad)
    if result.json["health_failures"]:
        assert any("health check(s) failed" in line for line in result.err_lines)


async def test_ls_partial_failure_exits_1_and_lists_the_others(fleet: Fleet, run: Run) -> None:
    """An account whose key is wrong fails alone: exit 1, one stderr line, others listed."""
    (fleet.tmp / "wrong.secret").write_text(WRONG_SECRET, encoding="utf-8")
    extra = "\n".join(
        [
            "[accounts.broken]",
            'provider = "soda"',
            f'base_url = "{fleet.base_url}"',
            f'api_key_id = "{fleet.eu.api_key_id}"',
            'api_key_secret_file = "wrong.secret"',
        ]
    )
    config = write_accounts(fleet.tmp / "partial.toml", fleet.base_url, fleet.eu, extra=extra)
    result = await run("--config", str(config), "ls", "-o", "json")
    assert result.code == 1
    assert result.json["summary"]["runners"] == 49
    assert set(result.json["errors"]) == {"broken"}
    assert result.json["errors"]["broken"]["type"] == "AuthenticationError"
    assert len(result.err_lines) == 1
    assert result.err_lines[0].startswith("runnerhub: error: account broken failed: HTTP 401")


async def test_authentication_failure_exits_3(fleet: Fleet, run: Run) -> None:
    """With only a wrong key, ls and get exit 3 with one readable line."""
    (fleet.tmp / "wrong.secret").write_text(WRONG_SECRET, encoding="utf-8")
    config = fleet.tmp / "wrong.toml"
    config.write_text(
        "[accounts.broken]\n"
        'provider = "soda"\n'
        f'base_url = "{fleet.base_url}"\n'
        f'api_key_id = "{fleet.eu.api_key_id}"\n'
        'api_key_secret_file = "wrong.secret"\n',
        encoding="utf-8",
    )
    result = await run("--config", str(config), "ls")
    assert result.code == 3
    assert "account broken failed: HTTP 401" in result.err
    result = await run("--config", str(config), "get", self_hosted_soda(fleet.eu))
    assert result.code == 3
    assert "HTTP 401" in one_line_error(result)


async def test_other_errors_exit_4(fleet: Fleet, run: Run) -> None:
    """A runner that does not exist, or an operation the vendor refuses, exits 4."""
    result = await run(*cfg(fleet, "--account", "acme-eu", "get", "no-such-runner"))
    assert result.code == 4
    assert "HTTP 404" in one_line_error(result)
    name = next(iter(fleet.kubiya.runners))
    result = await run(*cfg(fleet, "--account", "kubiya-prod", "op", name, "explode"))
    assert result.code == 4
    assert "HTTP 400" in one_line_error(result)


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["ls", "-o", "xml"], "invalid choice: 'xml'"),
        (["ls", "--status", "sleepy"], "invalid choice: 'sleepy'"),
        (["lss"], "did you mean 'ls'?"),
        (["ls", "--stauts", "online"], "did you mean '--status'?"),
        (
            ["--account", "acme-euu", "get", "x"],
            "unknown account 'acme-euu'; did you mean 'acme-eu'? "
            "(accounts: acme-eu, acme-us, kubiya-prod)",
        ),
        (["create"], "3 accounts (acme-eu, acme-us, kubiya-prod): choose one with --account"),
        (
            ["--account", "acme-eu", "set-description", "x", "y"],
            "set-description: account acme-eu (soda) does not offer it",
        ),
        (
            ["--account", "kubiya-prod", "create"],
            "Kubiya runners are created by name: runnerhub create NAME --account kubiya-prod",
        ),
        (["--account", "acme-eu", "op", "x", "restart", "--param", "nokey"], "KEY=VALUE"),
        (["watch", "--interval", "0"], "--interval must be > 0"),
        (["watch", "--max-events", "-1"], "must be 0 or more"),
        (["ls", "--columns", "id,colour"], "unknown column colour"),
        (["ls", "--offline-for", "soon"], "--offline-for wants a duration"),
    ],
)
async def test_usage_errors_exit_2(fleet: Fleet, run: Run, argv: list[str], fragment: str) -> None:
    """Bad arguments, unknown accounts and unsupported operations exit 2 with one line,
    suggesting the closest command, flag or account, and no Python syntax."""
    result = await run(*cfg(fleet, *argv))
    assert result.code == 2
    line = one_line_error(result)
    assert fragment in line
    assert "create_runner(" not in line
    assert "['" not in line


async def test_missing_config_and_no_environment_exit_2(
    fleet: Fleet, run: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A missing accounts file, or none and no credentials in the env, is a usage error."""
    result = await run("--config", str(fleet.tmp / "absent.toml"), "ls")
    assert result.code == 2
    assert "accounts file not found" in one_line_error(result)
    for name in ("SODA_API_KEY_ID", "SODA_API_KEY_SECRET", "SODA_TOKEN", "KUBIYA_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    result = await run("ls")
    assert result.code == 2
    assert "no accounts" in one_line_error(result)


async def test_environment_accounts_without_a_config(
    fleet: Fleet, run: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without an accounts file, SODA_* and KUBIYA_* variables make the accounts."""
    monkeypatch.setenv("SODA_BASE_URL", fleet.base_url)
    monkeypatch.setenv("SODA_API_KEY_ID", fleet.eu.api_key_id)
    monkeypatch.setenv("SODA_API_KEY_SECRET", EU_SECRET)
    monkeypatch.setenv("KUBIYA_BASE_URL", fleet.base_url)
    monkeypatch.setenv("KUBIYA_API_KEY", KUBIYA_KEY)
    result = await run("ls", "-o", "json")
    assert result.code == 0
    assert result.json["summary"]["accounts"] == {"soda": 25, "kubiya": 12}


async def test_config_from_env_var_or_working_directory(
    fleet: Fleet, run: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without --config, $RUNNERHUB_CONFIG names the accounts file, else ./runnerhub.toml."""
    monkeypatch.setenv("RUNNERHUB_CONFIG", str(fleet.config))
    result = await run("ls", "-o", "json")
    assert result.code == 0
    assert result.json["summary"]["runners"] == 49
    monkeypatch.delenv("RUNNERHUB_CONFIG")
    write_accounts(fleet.tmp / "runnerhub.toml", fleet.base_url, fleet.eu, with_us=False)
    result = await run("ls", "-o", "json")
    assert result.code == 0
    assert result.json["summary"]["accounts"] == {"acme-eu": 25}


async def test_global_options_go_before_or_after_the_command(fleet: Fleet, run: Run) -> None:
    """--config and --account work on either side of the command name."""
    before = await run("--config", str(fleet.config), "--account", "acme-us", "ls", "-o", "json")
    after = await run("ls", "-o", "json", "--config", str(fleet.config), "--account", "acme-us")
    assert before.code == after.code == 0
    assert [r["id"] for r in before.json["runners"]] == [r["id"] for r in after.json["runners"]]
    assert len(after.json["runners"]) == 12


# -- one runner ---------------------------------------------------------------------------------


async def test_get_and_describe(fleet: Fleet, run: Run) -> None:
    """get shows one runner (table or JSON); describe adds versions and health checks."""
    rid = self_hosted_soda(fleet.eu)
    result = await run(*cfg(fleet, "--account", "acme-eu", "get", rid, "-o", "json"))
    assert result.code == 0
    assert result.json["id"] == rid
    assert result.json["versions"] == fleet.eu.runners[rid]["versions"]
    table = await run(*cfg(fleet, "--account", "acme-eu", "get", rid))
    header, row = table.out.splitlines()
    assert header.startswith("ACCOUNT")
    assert rid in row

    name = unhealthy(fleet.kubiya)[0]
    described = await run(*cfg(fleet, "--account", "kubiya-prod", "describe", name))
    assert described.code == 0
    assert f"ID:           {name}" in described.out
    assert "Versions:" in described.out
    assert "Health:" in described.out
    as_json = await run(*cfg(fleet, "--account", "kubiya-prod", "describe", name, "-o", "json"))
    data = as_json.json
    assert data["runner"]["id"] == name
    assert (data["health"] is None) != (data["health_error"] is None)


async def test_health(fleet: Fleet, run: Run) -> None:
    """health prints the status and, for Kubiya, the component checks."""
    degraded = next(n for n, s in fleet.kubiya.health.items() if s == "degraded")
    result = await run(*cfg(fleet, "--account", "kubiya-prod", "health", degraded, "-o", "json"))
    assert result.code == 0
    assert result.json["status"] == RunnerStatus.DEGRADED.value
    assert result.json["checks"]
    assert "raw" not in result.json
    table = await run(*cfg(fleet, "--account", "kubiya-prod", "health", degraded))
    assert "Status:   degraded" in table.out
    assert re.search(r"^CHECK\s+STATUS\s+VERSION\s+ERROR$", table.out, re.M)
    soda = await run(*cfg(fleet, "--account", "acme-eu", "health", self_hosted_soda(fleet.eu)))
    assert soda.code == 0
    assert "Status:" in soda.out


async def test_create_soda_prints_the_one_time_secret_once(fleet: Fleet, run: Run) -> None:
    """Soda's minted secret appears exactly once, under the marked heading; JSON has it too."""
    result = await run(*cfg(fleet, "--account", "acme-eu", "create", "edge-1"))
    assert result.code == 0
    lines = result.out.splitlines()
    marker = lines.index("Store this secret now — it will not be shown again:")
    secret = lines[marker + 2].strip()
    assert secret
    assert (result.out + result.err).count(secret) == 1
    assert f"API key id: {fleet.eu.created[-1]}" in result.out

    as_json = await run(*cfg(fleet, "--account", "acme-eu", "create", "-o", "json"))
    data = as_json.json
    assert data["api_key_id"] == fleet.eu.created[-1]
    assert data["api_key_secret"]
    assert data["api_key_secret"] != secret
    assert as_json.out.count(data["api_key_secret"]) == 1


async def test_create_kubiya_then_manifest(fleet: Fleet, run: Run) -> None:
    """Kubiya create prints the kubectl command with the manifest URL; manifest prints YAML."""
    result = await run(*cfg(fleet, "--account", "kubiya-prod", "create", "edge-new"))
    assert result.code == 0
    match = re.search(r"kubectl apply -f (\S+)", result.out)
    assert match
    assert match.group(1).startswith(fleet.base_url)
    assert result.out.count(match.group(1)) == 1
    assert "edge-new" in fleet.kubiya.runners
    manifest = await run(*cfg(fleet, "--account", "kubiya-prod", "manifest", "edge-new"))
    assert manifest.code == 0
    assert manifest.out == fleet.kubiya.manifest("edge-new")
    assert "kind: Deployment" in manifest.out


async def test_delete_asks_first(fleet: Fleet, run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    """'n' on a terminal deletes nothing; 'y' deletes; no terminal and no --yes refuses (2)."""

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    rid = self_hosted_soda(fleet.eu)
    monkeypatch.setattr(sys, "stdin", Terminal("n\n"))
    result = await run(*cfg(fleet, "--account", "acme-eu", "delete", rid))
    assert result.code == 0
    assert f"Delete runner {rid} of account acme-eu? [y/N]" in result.err
    assert rid in fleet.eu.runners

    monkeypatch.setattr(sys, "stdin", io.StringIO("y\n"))
    result = await run(*cfg(fleet, "--account", "acme-eu", "delete", rid))
    assert result.code == 2
    assert "--yes" in one_line_error(result)
    assert rid in fleet.eu.runners

    monkeypatch.setattr(sys, "stdin", Terminal("y\n"))
    result = await run(*cfg(fleet, "--account", "acme-eu", "delete", rid))
    assert result.code == 0
    assert rid not in fleet.eu.runners


async def test_delete_yes_skips_the_question(fleet: Fleet, run: Run) -> None:
    """--yes deletes without reading stdin; -o json reports it."""
    name = list(fleet.kubiya.runners)[-1]
    argv = cfg(fleet, "--account", "kubiya-prod", "delete", name, "--yes", "-o", "json")
    result = await run(*argv)
    assert result.code == 0
    assert result.json == {"account": "kubiya-prod", "id": name, "deleted": True}
    assert name not in fleet.kubiya.runners


async def test_set_description_does_not_echo_the_vendor_answer(fleet: Fleet, run: Run) -> None:
    """The description is set; Kubiya's answer (which holds gateway_password) is not printed."""
    name = next(n for n, r in fleet.kubiya.runners.items() if r.get("gateway_password"))
    result = await run(
        *cfg(fleet, "--account", "kubiya-prod", "set-description", name, "new text", "-o", "json")
    )
    assert result.code == 0
    assert result.json == {"account": "kubiya-prod", "id": name, "description": "new text"}
    assert fleet.kubiya.runners[name]["description"] == "new text"
    assert fleet.kubiya.runners[name]["gateway_password"] not in result.out


async def test_helm_values_masks_secrets_unless_asked(fleet: Fleet, run: Run) -> None:
    """JWTs are masked by default and shown with --show-secrets; the rest is unchanged."""
    name = next(iter(fleet.kubiya.runners))
    values = fleet.kubiya.helm_values(name)
    masked = await run(*cfg(fleet, "--account", "kubiya-prod", "helm-values", name))
    assert masked.code == 0
    assert masked.json["nats"]["jwt"] == MASK
    assert masked.json["nats"]["secondJwt"] == MASK
    assert masked.json["runner_name"] == name
    assert masked.json["alloy"]["alloy"]["configMap"]["key"] == "config.alloy"
    assert values["nats"]["jwt"] not in masked.out
    shown = await run(
        *cfg(fleet, "--account", "kubiya-prod", "helm-values", name, "--show-secrets")
    )
    assert shown.json == values


async def test_helm_chart_archive_needs_show_secrets(
    tmp_path: Path, run: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A chart archive cannot be masked: refused (2) without --show-secrets, then written as is."""
    sandbox = Sandbox(seed=2, vendor_options={"kubiya": {"helmchart_format": "tgz"}})
    org = sandbox.add_org("kubiya", "kubiya-prod", runners=2, api_key=KUBIYA_KEY)
    for name in ("SODA_API_KEY_ID", "SODA_API_KEY_SECRET", "SODA_TOKEN", "RUNNERHUB_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("KUBIYA_API_KEY", KUBIYA_KEY)
    monkeypatch.chdir(tmp_path)
    async with sandbox.serve() as base_url:
        monkeypatch.setenv("KUBIYA_BASE_URL", base_url)
        name = next(iter(org.runners))
        result = await run("helm-values", name)
        assert result.code == 2
        assert "--show-secrets" in one_line_error(result)

        class Binary(io.StringIO):
            buffer = io.BytesIO()

        monkeypatch.setattr(sys, "stdout", Binary())
        assert await asyncio.to_thread(main, ["helm-values", name, "--show-secrets"]) == 0
        assert Binary.buffer.getvalue() == org.helm_chart(name)


async def test_op_prints_the_vendor_answer(fleet: Fleet, run: Run) -> None:
    """op sends the operation with typed parameters and prints Kubiya's JSON answer."""
    name = next(iter(fleet.kubiya.runners))
    result = await run(
        *cfg(fleet, "--account", "kubiya-prod", "op", name, "restart", "--param", "force=true")
    )
    assert result.code == 0
    assert result.json["operation"] == "restart"
    assert result.json["status"] == "success"


# -- watch ---------------------------------------------------------------------------------


async def test_watch_reports_added_then_changes(fleet: Fleet, run: Run) -> None:
    """watch -o ndjson: the first snapshot as added; --changes-only: a status change."""
    result = await run(
        *cfg(fleet, "--account", "acme-us", "watch", "--interval", "0.1", "--max-events", "3")
    )
    assert result.code == 0
    assert [line.split()[1] for line in result.out.splitlines()] == ["added"] * 3

    rid = next(r for r, p in fleet.us.runners.items() if p["isOnline"])
    argv = cfg(fleet, "--account", "acme-us", "watch", "--interval", "0.1")
    argv += ["--changes-only", "--max-events", "1", "-o", "ndjson"]
    task = asyncio.create_task(run(*argv))
    await asyncio.sleep(0.5)
    fleet.us.runners[rid]["isOnline"] = False
    result = await asyncio.wait_for(task, 10)
    assert result.code == 0
    (event,) = [json.loads(line) for line in result.out.splitlines()]
    assert event["event"] == "status_changed"
    assert (event["id"], event["previous_status"], event["status"]) == (rid, "online", "offline")


# -- demo ----------------------------------------------------------------------------------


def test_demo_json(capsys: pytest.CaptureFixture[str]) -> None:
    """demo -o json: the seeded fleet of 4,600 runners, some degraded and offline, exit 0."""
    assert main(["demo", "-o", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    summary = data["summary"]
    assert summary["runners"] == 4600
    assert summary["accounts"] == {
        "soda-eu": 3000,
        "soda-us": 1500,
        "kubiya-prod": 40,
        "gh-acme": 60,
    }
    assert summary["statuses"]["degraded"] > 0
    assert summary["statuses"]["offline"] > 0
    assert data["sandbox"]["time_scale"] == 10


def test_demo_table_is_a_sample_and_a_summary(capsys: pytest.CaptureFixture[str]) -> None:
    """demo's table shows about 20 rows, says how many more, and ends with the summary."""
    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    assert "embedded sandbox" in out
    assert "10x vendor speed" in out
    rows = [
        line
        for line in out.splitlines()
        if re.match(r"(soda-eu|soda-us|kubiya-prod|gh-acme) ", line)
    ]
    assert 12 <= len(rows) <= 24
    assert f"… {4600 - len(rows):,} more runner(s)" in out
    assert "4,600 runner(s) in 4 account(s)" in out


# -- processes -----------------------------------------------------------------------------


async def _process(*argv: str, stdin: bytes | None = None) -> Result:
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(stdin), 60)
    assert proc.returncode is not None
    return Result(proc.returncode, out.decode(), err.decode())


def _script() -> Path:
    script = Path(sys.executable).parent / "runnerhub"
    if not script.exists():
        pytest.skip("the runnerhub console script is not installed in this environment")
    return script


async def test_python_m_and_console_script(fleet: Fleet) -> None:
    """``python -m runnerhub`` and the ``runnerhub`` script run ls/get with the accounts file."""
    result = await _process(sys.executable, "-m", "runnerhub", *cfg(fleet, "ls", "-o", "ndjson"))
    assert result.code == 0, result.err
    assert len(result.out.splitlines()) == 49
    rid = self_hosted_soda(fleet.eu)
    argv = cfg(fleet, "--account", "acme-eu", "get", rid, "-o", "json")
    result = await _process(str(_script()), *argv)
    assert result.code == 0, result.err
    assert json.loads(result.out)["id"] == rid
    result = await _process(str(_script()), *cfg(fleet, "--account", "acme-eu", "delete", rid))
    assert result.code == 2, "stdin is a pipe: no confirmation possible without --yes"
    assert result.err.startswith("runnerhub: error: refusing to delete")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def test_sandbox_command_serves_the_emulator(
    tmp_path: Path, run: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    """sandbox prints URL, credentials and an accounts file that work; SIGTERM stops it (0)."""
    port = _free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "runnerhub",
        "sandbox",
        "--port",
        str(port),
        "--seed",
        "4",
        "--time-scale",
        "60",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None
    try:
        lines: list[str] = []
        while not lines or lines[-1] != "Serving until Ctrl-C.":
            line = await asyncio.wait_for(proc.stdout.readline(), 20)
            assert line, "the sandbox exited early"
            lines.append(line.decode().rstrip("\n"))
        url = re.fullmatch(r"runnerhub sandbox serving at (\S+)", lines[0])
        assert url
        assert url.group(1) == f"http://127.0.0.1:{port}"
        banner = "\n".join(lines)
        key_id = re.search(r'\[accounts\.soda-eu\].*?api_key_id = "([^"]+)"', banner, re.S)
        secret = re.search(r"SANDBOX_SODA_EU_API_KEY_SECRET=(\S+)", banner)
        assert key_id
        assert secret
        async with SodaProvider(
            key_id.group(1), secret.group(1), base_url=url.group(1), account="soda-eu"
        ) as soda:
            runners = [r async for r in soda.list_runners()]
        assert len(runners) == 3000

        # The printed exports and accounts file work as printed.
        for text in lines:
            if text.startswith("    export "):
                name, _, value = text.removeprefix("    export ").partition("=")
                monkeypatch.setenv(name, value)
        start = next(i for i, text in enumerate(lines) if text.startswith("and use this"))
        toml = "\n".join(text.removeprefix("    ") for text in lines[start + 1 : -1])
        (tmp_path / "sandbox.toml").write_text(toml, encoding="utf-8")
        result = await run("--config", str(tmp_path / "sandbox.toml"), "ls", "-o", "json")
        assert result.code == 0, result.err
        assert result.json["summary"]["runners"] == 4600
    finally:
        proc.terminate()
        _, err = await asyncio.wait_for(proc.communicate(), 20)
    assert proc.returncode == 0
    assert b"Traceback" not in err


async def test_ctrl_c_stops_watch_cleanly(fleet: Fleet) -> None:
    """SIGINT to a running watch ends it with exit 0, no traceback, no unclosed session."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "runnerhub",
        *cfg(fleet, "--account", "acme-us", "watch", "--interval", "0.2"),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None
    first = await asyncio.wait_for(proc.stdout.readline(), 20)
    assert b"added" in first
    proc.send_signal(signal.SIGINT)
    _, err = await asyncio.wait_for(proc.communicate(), 20)
    assert proc.returncode in (0, 130)
    assert b"Traceback" not in err
    assert b"Unclosed" not in err


async def test_ctrl_c_cancels_a_stalled_inventory_with_130(fleet: Fleet) -> None:
    """SIGINT during an inventory stuck on the network exits 130, quietly, sessions closed."""
    fleet.sandbox.faults.add(Fault(FaultKind.STALL, vendor="kubiya", delay=20))
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "runnerhub",
        *cfg(fleet, "-v", "ls"),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stderr is not None
    # -v logs each response; wait until the Soda accounts answered, Kubiya is stalled.
    seen = b""
    while seen.count(b"-> 200") < 2:
        seen += await asyncio.wait_for(proc.stderr.readline(), 20)
    proc.send_signal(signal.SIGINT)
    out, err = await asyncio.wait_for(proc.communicate(), 20)
    assert proc.returncode == 130
    assert out == b""
    assert b"Traceback" not in seen + err
    assert b"Unclosed" not in seen + err


# -- hygiene -------------------------------------------------------------------------------


async def test_no_secret_reaches_any_output(fleet: Fleet, run: Run) -> None:
    """With -v (DEBUG), ls/get/health/describe/helm-values and error paths print no credential."""
    (fleet.tmp / "wrong.secret").write_text(WRONG_SECRET, encoding="utf-8")
    broken = fleet.tmp / "broken.toml"
    extra = "\n".join(
        [
            "[accounts.broken]",
            'provider = "soda"',
            f'base_url = "{fleet.base_url}"',
            f'api_key_id = "{fleet.eu.api_key_id}"',
            'api_key_secret_file = "wrong.secret"',
        ]
    )
    write_accounts(broken, fleet.base_url, fleet.eu, extra=extra)
    soda_id = self_hosted_soda(fleet.eu)
    kubiya = next(n for n, r in fleet.kubiya.runners.items() if r.get("gateway_password"))
    planted = [
        *PLANTED,
        *(r["gateway_password"] for r in fleet.kubiya.runners.values() if r["gateway_password"]),
        fleet.kubiya.helm_values(kubiya)["nats"]["jwt"],
    ]
    runs = [
        ["--config", str(broken), "-v", "ls", "--health"],
        ["--config", str(broken), "-v", "ls", "-o", "json"],
        ["--config", str(broken), "-v", "--account", "broken", "get", soda_id],
        [*cfg(fleet, "-v", "--account", "acme-eu", "get", soda_id, "-o", "json")],
        [*cfg(fleet, "-v", "--account", "acme-us", "health", next(iter(fleet.us.runners)))],
        [*cfg(fleet, "-v", "--account", "kubiya-prod", "describe", kubiya, "-o", "json")],
        [*cfg(fleet, "-v", "--account", "kubiya-prod", "helm-values", kubiya)],
        [*cfg(fleet, "-v", "--account", "kubiya-prod", "get", "ghost")],
        [*cfg(fleet, "-v", "--account", "kubiya-prod", "op", kubiya, "explode")],
        ["--config", str(broken), "-v", "accounts", "--check"],
    ]
    codes = []
    for argv in runs:
        result = await run(*argv)
        codes.append(result.code)
        text = result.out + result.err
        assert "runnerhub: DEBUG:" in result.err
        for secret in planted:
            assert secret not in text, (argv, secret)
    assert codes == [1, 1, 3, 0, 0, 0, 0, 4, 4, 1]


# -- pieces --------------------------------------------------------------------------------


async def test_progress_on_request_writes_only_to_stderr(fleet: Fleet, run: Run) -> None:
    """--progress with stderr not a terminal: one plain line per update, stdout untouched."""
    result = await run(*cfg(fleet, "--progress", "ls", "-o", "ndjson"))
    assert result.code == 0
    assert len([json.loads(line) for line in result.out.splitlines()]) == 49
    lines = [line for line in result.err_lines if line.startswith("runnerhub: progress:")]
    last = {line.split()[2].rstrip(":"): line for line in lines}
    assert set(last) == {"acme-eu", "acme-us", "kubiya-prod"}
    assert all("done" in line for line in last.values())


@pytest.mark.parametrize("with_rich", [True, False])
async def test_live_progress_on_a_terminal(
    fleet: Fleet, monkeypatch: pytest.MonkeyPatch, with_rich: bool
) -> None:
    """On a terminal the display draws (rich or one rewritten line) and erases itself."""
    from runnerhub._cli._progress import InventoryProgress

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    if not with_rich:
        monkeypatch.setitem(sys.modules, "rich.live", None)
    stream = Terminal()
    fleet.sandbox.faults.add(Fault(FaultKind.LATENCY, vendor="kubiya", delay=0.3))
    async with (
        load_hub(fleet.config) as hub,
        InventoryProgress(hub.providers, stream, delay=0, interval=0.05) as progress,
    ):
        inventory = await hub.inventory(progress=progress)
    assert len(inventory.runners) == 49
    drawn = stream.getvalue()
    assert "kubiya-prod" in drawn
    assert "runners" in drawn
    assert drawn.endswith("\x1b[K") if not with_rich else "\x1b[?25h" in drawn


def test_tables_use_rich_on_a_terminal_and_plain_columns_otherwise(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Output.table draws with rich only when stdout is a terminal and rich imports."""
    from runnerhub._cli._output import Output

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    rows = [["a", "online"], ["bb [x]", "offline"]]
    plain = io.StringIO()
    monkeypatch.setattr(sys, "stdout", plain)
    Output().table(["NAME", "STATUS"], rows, status_column=1)
    assert plain.getvalue() == "NAME     STATUS\na        online\nbb [x]   offline\n"

    terminal = Terminal()
    monkeypatch.setattr(sys, "stdout", terminal)
    Output().table(["NAME", "STATUS"], rows, status_column=1)
    assert "bb [x]" in terminal.getvalue()
    assert "offline" in terminal.getvalue()

    fallback = Terminal()
    monkeypatch.setattr(sys, "stdout", fallback)
    monkeypatch.setitem(sys.modules, "rich", None)
    Output().table(["NAME", "STATUS"], rows, status_column=1)
    assert fallback.getvalue() == plain.getvalue()


def test_help_and_version_exit_0(capsys: pytest.CaptureFixture[str]) -> None:
    """--help documents the exit codes; --version prints the version."""
    assert main(["--help"]) == 0
    assert "exit codes:" in capsys.readouterr().out
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.startswith("runnerhub ")


def test_importing_stays_light() -> None:
    """``import runnerhub`` loads no CLI; ``runnerhub.cli`` loads neither rich nor the sandbox."""
    import subprocess

    code = (
        "import sys, runnerhub; assert 'runnerhub.cli' not in sys.modules; "
        "import runnerhub.cli; "
        "assert not any(m == 'rich' or m.startswith('runnerhub.sandbox') for m in sys.modules)"
    )
    subprocess.run([sys.executable, "-c", code], check=True)  # noqa: S603 - our interpreter


# -- accounts that cannot be used, and the accounts command ---------------------------------


def _broken_accounts(fleet: Fleet) -> Path:
    """The fleet's accounts plus one whose variable is unset and one whose secret file is gone."""
    extra = "\n".join(
        [
            "[accounts.no-env]",
            'provider = "soda"',
            f'base_url = "{fleet.base_url}"',
            f'api_key_id = "{fleet.eu.api_key_id}"',
            'api_key_secret_env = "CLI_TEST_UNSET_SECRET"',
            "[accounts.no-file]",
            'provider = "kubiya"',
            f'base_url = "{fleet.base_url}"',
            'api_key_file = "gone.key"',
        ]
    )
    return write_accounts(fleet.tmp / "broken.toml", fleet.base_url, fleet.eu, extra=extra)


async def test_a_broken_account_does_not_stop_the_others(fleet: Fleet, run: Run) -> None:
    """An unset variable or a missing key file fails only its account: ls lists the others
    and exits 1, naming each broken account and what it lacks; other commands still work."""
    path = _broken_accounts(fleet)
    result = await run("--config", str(path), "ls", "-o", "json")
    assert result.code == 1
    assert result.json["summary"]["runners"] == 49
    assert set(result.json["errors"]) == {"no-env", "no-file"}
    errors_by_account = {
        line.split()[3]: line for line in result.err_lines if line.startswith("runnerhub: error:")
    }
    assert "CLI_TEST_UNSET_SECRET" in errors_by_account["no-env"]
    assert "gone.key" in errors_by_account["no-file"]

    other = await run("--config", str(path), "--account", "acme-us", "ls", "-o", "json")
    assert other.code == 0
    assert other.json["summary"]["runners"] == 12

    only = await run("--config", str(path), "--account", "no-env", "ls")
    assert only.code == 2

    single = await run("--config", str(path), "get", "no-env/some-id")
    assert single.code == 2
    line = one_line_error(single)
    assert "account no-env cannot be used" in line
    assert "CLI_TEST_UNSET_SECRET" in line


async def test_accounts_lists_where_secrets_come_from(fleet: Fleet, run: Run) -> None:
    """accounts shows label, vendor, base URL and each credential's source, never a value;
    --check verifies each (one bad credential: exit 1, the others ok)."""
    (fleet.tmp / "wrong.secret").write_text(WRONG_SECRET, encoding="utf-8")
    extra = "\n".join(
        [
            "[accounts.wrong]",
            'provider = "soda"',
            f'base_url = "{fleet.base_url}"',
            f'api_key_id = "{fleet.eu.api_key_id}"',
            'api_key_secret_file = "wrong.secret"',
        ]
    )
    path = write_accounts(fleet.tmp / "check.toml", fleet.base_url, fleet.eu, extra=extra)
    listed = await run("--config", str(path), "accounts", "-o", "json")
    assert listed.code == 0
    assert listed.json["source"] == str(path)
    by_label = {a["account"]: a for a in listed.json["accounts"]}
    assert list(by_label) == ["acme-eu", "acme-us", "kubiya-prod", "wrong"]
    assert by_label["acme-eu"]["provider"] == "soda"
    assert by_label["acme-eu"]["location"] == {"base_url": fleet.base_url}
    assert by_label["acme-eu"]["credentials"] == {
        "api_key_id": "inline",
        "api_key_secret": "env CLI_TEST_EU_SECRET",
    }
    assert by_label["acme-us"]["credentials"] == {"token": "file acme-us.token"}
    assert by_label["kubiya-prod"]["credentials"] == {"api_key": "env CLI_TEST_KUBIYA_KEY"}

    checked = await run("--config", str(path), "accounts", "--check")
    assert checked.code == 1
    rows = {line.split()[0]: line for line in checked.out.splitlines()[1:]}
    assert rows["acme-eu"].rstrip().endswith("ok")
    assert rows["kubiya-prod"].rstrip().endswith("ok")
    assert "failed: HTTP 401" in rows["wrong"]
    for secret in PLANTED:
        assert secret not in checked.out + checked.err + listed.out


async def test_insecure_http_is_explained_in_accounts_file_terms(fleet: Fleet, run: Run) -> None:
    """Plain http to another host names the accounts-file key and the variable, not Python."""
    path = fleet.tmp / "insecure.toml"
    path.write_text(
        '[accounts.far]\nprovider = "kubiya"\nbase_url = "http://runners.example.com"\n'
        'api_key_env = "CLI_TEST_KUBIYA_KEY"\n',
        encoding="utf-8",
    )
    result = await run("--config", str(path), "accounts")
    assert result.code == 2
    line = one_line_error(result)
    assert "allow_insecure_http = true" in line
    assert "RUNNERHUB_ALLOW_INSECURE_HTTP=1" in line
    assert "=True" not in line


# -- finding runners, filtering ---------------------------------------------------------------


async def test_runner_refs_account_slash_id_or_bare_id(fleet: Fleet, run: Run) -> None:
    """get/describe/health take ACCOUNT/ID or a bare id found in whichever account has it;
    a 404 names the id and the account, with the status once."""
    rid = self_hosted_soda(fleet.eu)
    slashed = await run(*cfg(fleet, "get", f"acme-eu/{rid}", "-o", "json"))
    assert slashed.code == 0
    assert slashed.json["account"] == "acme-eu"
    bare = await run(*cfg(fleet, "describe", rid, "-o", "json"))
    assert bare.code == 0
    assert bare.json["runner"]["account"] == "acme-eu"
    name = next(iter(fleet.kubiya.runners))
    health = await run(*cfg(fleet, "health", name, "-o", "json"))
    assert health.code == 0
    assert health.json["account"] == "kubiya-prod"

    missing = await run(*cfg(fleet, "get", "kubiya-prod/ghost"))
    assert missing.code == 4
    line = one_line_error(missing)
    assert "no runner 'ghost' in account kubiya-prod" in line
    assert "404 404" not in line
    nowhere = await run(*cfg(fleet, "get", "ghost"))
    assert nowhere.code == 4
    assert "no runner 'ghost' in any account (acme-eu, acme-us, kubiya-prod)" in (
        one_line_error(nowhere)
    )


async def test_an_id_in_several_accounts_is_ambiguous(fleet: Fleet, run: Run) -> None:
    """A bare id two accounts share lists both matches and exits 2; ACCOUNT/ID picks one."""
    fleet.sandbox.add_org("kubiya", "kubiya-dev", api_key="planted-kubiya-dev-key")
    extra = "\n".join(
        [
            "[accounts.kubiya-dev]",
            'provider = "kubiya"',
            f'base_url = "{fleet.base_url}"',
            'api_key_env = "CLI_TEST_KUBIYA_DEV_KEY"',
        ]
    )
    path = write_accounts(fleet.tmp / "two.toml", fleet.base_url, fleet.eu, extra=extra)
    os_env = {"CLI_TEST_KUBIYA_DEV_KEY": "planted-kubiya-dev-key"}
    with pytest.MonkeyPatch.context() as patch:
        for key, value in os_env.items():
            patch.setenv(key, value)
        for account in ("kubiya-prod", "kubiya-dev"):
            created = await run("--config", str(path), "--account", account, "create", "twin")
            assert created.code == 0, created.err
        result = await run("--config", str(path), "get", "twin")
        assert result.code == 2
        assert "kubiya-prod/twin, kubiya-dev/twin" in one_line_error(result)
        picked = await run("--config", str(path), "get", "kubiya-dev/twin", "-o", "json")
        assert picked.code == 0
        assert picked.json["account"] == "kubiya-dev"


async def test_ls_selects_sorts_and_chooses_columns(fleet: Fleet, run: Run) -> None:
    """--account globs, --name globs, --sort, --columns and --no-headers, in every format."""
    result = await run(
        *cfg(fleet, "ls", "--account", "acme-*", "--sort", "name", "--columns", "id,name,status")
    )
    assert result.code == 0
    lines = result.out.splitlines()
    assert re.split(r"\s{3,}", lines[0]) == ["ID", "NAME", "STATUS"]
    rows = lines[1 : lines.index("")]
    assert len(rows) == 37
    names = [re.split(r"\s{3,}", row)[1] for row in rows]
    assert names == sorted(names, key=str.casefold)

    csv_out = await run(
        *cfg(fleet, "ls", "--provider", "kubiya", "--columns", "name,status"),
        "--no-headers",
        "-o",
        "csv",
    )
    parsed = list(csv.reader(io.StringIO(csv_out.out)))
    assert len(parsed) == 12
    assert all(len(row) == 2 for row in parsed)

    first = sorted(fleet.kubiya.runners)[0]
    as_json = await run(
        *cfg(fleet, "ls", "--name", first, "--columns", "account,name", "-o", "json")
    )
    assert as_json.json["runners"] == [{"account": "kubiya-prod", "name": first}]
    ndjson = await run(*cfg(fleet, "ls", "--name", first, "--columns", "id", "-o", "ndjson"))
    assert [json.loads(line) for line in ndjson.out.splitlines()] == [{"id": first}]


async def test_ls_offline_for_selects_runners_not_seen_for_that_long(
    fleet: Fleet, run: Run
) -> None:
    """--offline-for keeps runners whose last-seen time is at least that old, and only them."""
    everything = await run(*cfg(fleet, "ls", "--provider", "soda", "-o", "json"))
    seen = [r["last_seen"] for r in everything.json["runners"] if r["last_seen"]]
    assert seen
    result = await run(*cfg(fleet, "ls", "--offline-for", "1h", "-o", "json"))
    assert result.code == 0
    now = datetime.now(UTC)
    for runner in result.json["runners"]:
        assert now - datetime.fromisoformat(runner["last_seen"]) >= timedelta(hours=1)
    expected = [s for s in seen if now - datetime.fromisoformat(s) >= timedelta(hours=1, minutes=1)]
    assert len(result.json["runners"]) >= len(expected)


async def test_health_summary_names_the_failed_checks(fleet: Fleet, run: Run) -> None:
    """ls --health's summary names the runners whose health check failed."""
    fleet.sandbox.faults.add(
        Fault(FaultKind.STATUS, status=500, path=re.compile(r"/health$"), times=1)
    )
    result = await run(*cfg(fleet, "--account", "kubiya-prod", "ls", "--health"))
    summary = result.out[result.out.index("health check(s) failed") :]
    assert re.search(r"health check\(s\) failed \(kubiya-prod/\S+", result.out), summary


async def test_soda_create_with_a_name_says_it_is_not_sent(fleet: Fleet, run: Run) -> None:
    """Soda takes no name: create NAME warns the name was not sent and never claims it."""
    result = await run(*cfg(fleet, "--account", "acme-eu", "create", "my-runner"))
    assert result.code == 0
    assert "Created runner credentials in account acme-eu." in result.out
    assert "my-runner" not in result.out
    assert "'my-runner' was not sent" in result.err


# -- sandbox config, completion --------------------------------------------------------------


async def test_sandbox_write_config_works_as_written(tmp_path: Path, run: Run) -> None:
    """--write-config writes an accounts file runnerhub reads as is, secrets beside it (0600)."""
    port = _free_port()
    config = tmp_path / "sandbox.toml"
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "runnerhub",
        "sandbox",
        "--port",
        str(port),
        "--empty",
        "--time-scale",
        "60",
        "--write-config",
        str(config),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None
    try:
        lines: list[str] = []
        while not lines or lines[-1] != "Serving until Ctrl-C.":
            line = await asyncio.wait_for(proc.stdout.readline(), 20)
            assert line, "the sandbox exited early"
            lines.append(line.decode().rstrip("\n"))
        secrets = tmp_path / "sandbox.toml.env"
        assert secrets.stat().st_mode & 0o777 == 0o600
        secret_values = [
            line.partition("=")[2] for line in secrets.read_text(encoding="utf-8").splitlines()
        ]
        assert secret_values
        assert not any(value in config.read_text(encoding="utf-8") for value in secret_values)
        result = await run("--config", str(config), "ls", "-o", "json")
        assert result.code == 0, result.err
        assert result.json["summary"]["runners"] == 0
        assert result.json["errors"] == {}
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.communicate(), 20)
    assert proc.returncode == 0


def test_a_wildcard_host_prints_a_loopback_url() -> None:
    """Served on 0.0.0.0 (or ::), the printed base URL is one runnerhub accepts: loopback."""
    from runnerhub._cli._sandbox import _reachable

    assert _reachable("http://0.0.0.0:8080/soda") == "http://127.0.0.1:8080/soda"
    assert _reachable("http://[::]:8080") == "http://[::1]:8080"
    assert _reachable("http://127.0.0.1:8080") == "http://127.0.0.1:8080"


def test_shell_completion_of_commands_and_accounts(tmp_path: Path) -> None:
    """argcomplete completes command names and the account labels of the accounts file."""
    import os
    import subprocess

    config = tmp_path / "a.toml"
    config.write_text(
        '[accounts.acme-eu]\nprovider = "soda"\n[accounts.acme-us]\nprovider = "soda"\n'
        '[accounts.other]\nprovider = "kubiya"\n',
        encoding="utf-8",
    )

    def complete(line: str) -> list[str]:
        out = tmp_path / "completions"
        env = {
            **os.environ,
            "_ARGCOMPLETE": "1",
            "_ARGCOMPLETE_IFS": "\n",
            "_ARGCOMPLETE_STDOUT_FILENAME": str(out),
            "COMP_LINE": line,
            "COMP_POINT": str(len(line)),
        }
        subprocess.run(
            [sys.executable, "-m", "runnerhub"], env=env, check=True, capture_output=True
        )
        return [word.strip() for word in out.read_text(encoding="utf-8").splitlines()]

    assert "ls" in complete("runnerhub l")
    assert complete(f"runnerhub --config {config} ls --account acme-") == ["acme-eu", "acme-us"]


def test_the_cli_and_accounts_file_name_no_vendor() -> None:
    """config.py, cli.py and runnerhub/_cli iterate the registry: no string in their code is
    a vendor's name (docstrings and help prose may give examples)."""
    import ast

    from runnerhub.vendors import vendor_names

    package = Path(__file__).resolve().parent.parent / "runnerhub"
    files = [package / "config.py", package / "cli.py", *sorted((package / "_cli").glob("*.py"))]
    vendors = set(vendor_names())
    for path in files:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                assert node.value not in vendors, (path.name, node.lineno, node.value)
            if isinstance(node, ast.Name):
                name = node.id
            elif isinstance(node, ast.Attribute):
                name = node.attr
            elif isinstance(node, ast.FunctionDef | ast.ClassDef):
                name = node.name
            else:
                continue
            assert not any(v in name.lower() for v in vendors), (path.name, name)


def test_an_error_prints_its_status_once() -> None:
    """A vendor body whose code repeats the status ("HTTP 404 404") prints the status once."""
    from runnerhub import errors
    from runnerhub._cli._common import error_text

    error = errors.NotFoundError("runner not found", status=404, code="404", account="k")
    assert error_text(error) == "HTTP 404: runner not found [k]"
    coded = errors.BadRequestError("bad", status=400, code="invalid_op", account="k")
    assert error_text(coded) == "HTTP 400 invalid_op: bad [k]"


async def test_sandbox_accounts_file_from_the_registry(tmp_path: Path, run: Run) -> None:
    """The sandbox's accounts file is built from each vendor's credential declarations:
    non-secret credentials inline, secrets by variable (in the 0600 file), scaled limits."""
    from runnerhub._cli._sandbox import _write_config, accounts_file

    sandbox = Sandbox(seed=3, time_scale=TIME_SCALE)
    eu = sandbox.add_org("soda", "lab-eu", runners=4)
    sandbox.add_org("kubiya", "lab-k", runners=2)
    async with sandbox.serve():
        lines, secrets = accounts_file(sandbox, TIME_SCALE, env_file="lab.toml.env")
        text = "\n".join(lines)
        assert f'api_key_id = "{eu.api_key_id}"' in text
        assert eu.api_key_secret not in text
        assert secrets["SANDBOX_LAB_EU_API_KEY_SECRET"] == eu.api_key_secret
        assert '[accounts.lab-k.rate_limits]\n"*" = [' in text
        written = _write_config(tmp_path / "lab.toml", lines, secrets)
        assert written.stat().st_mode & 0o777 == 0o600
        result = await run("--config", str(tmp_path / "lab.toml"), "ls", "-o", "json")
    assert result.code == 0, result.err
    assert result.json["summary"]["accounts"] == {"lab-eu": 4, "lab-k": 2}


GITHUB_TOKEN = "ghp_plantedGitHubTokenForCliTests0042"


async def test_github_account_beside_soda_and_kubiya(fleet: Fleet, run: Run) -> None:
    """A github account (org + token_env) is listed by ls beside Soda and Kubiya, checked by
    accounts --check, and found by get ACCOUNT/ID; its token reaches no output."""
    org = fleet.sandbox.add_org("github", "gh-acme", runners=130, token=GITHUB_TOKEN)
    runner_id = next(iter(org.runners))
    extra = "\n".join(
        [
            "[accounts.gh-acme]",
            'provider = "github"',
            f'base_url = "{fleet.sandbox.url("github")}"',
            'org = "gh-acme"',
            'token_env = "CLI_TEST_GITHUB_TOKEN"',
        ]
    )
    path = write_accounts(fleet.tmp / "github.toml", fleet.base_url, fleet.eu, extra=extra)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CLI_TEST_GITHUB_TOKEN", GITHUB_TOKEN)
        listed = await run("--config", str(path), "ls", "-o", "json")
        accounts = await run("--config", str(path), "accounts", "-o", "json")
        checked = await run("--config", str(path), "accounts", "--check")
        got = await run("--config", str(path), "get", f"gh-acme/{runner_id}", "-o", "json")
        table = await run("--config", str(path), "ls", "--account", "gh-acme")
    assert listed.code == 0, listed.err
    assert listed.json["summary"]["accounts"] == {
        "acme-eu": 25,
        "acme-us": 12,
        "kubiya-prod": 12,
        "gh-acme": 130,
    }
    assert listed.json["errors"] == {}
    by_label = {a["account"]: a for a in accounts.json["accounts"]}
    assert by_label["gh-acme"]["provider"] == "github"
    assert by_label["gh-acme"]["credentials"] == {"token": "env CLI_TEST_GITHUB_TOKEN"}
    assert by_label["gh-acme"]["location"]["org"] == "gh-acme"
    assert checked.code == 0, checked.out + checked.err
    rows = {line.split()[0]: line for line in checked.out.splitlines()[1:]}
    assert rows["gh-acme"].rstrip().endswith("ok")
    assert got.code == 0, got.err
    assert got.json["account"] == "gh-acme"
    assert got.json["id"] == str(runner_id)
    assert got.json["name"] == org.runners[runner_id]["name"]
    assert table.code == 0
    assert len(table.out.splitlines()[1 : table.out.splitlines().index("")]) == 130
    outputs = [listed, accounts, checked, got, table]
    for result in outputs:
        assert GITHUB_TOKEN not in result.out + result.err


async def test_github_create_prints_the_jit_config_once(fleet: Fleet, run: Run) -> None:
    """create NAME on a GitHub account prints the runner id and its one-time JIT config (the
    one the sandbox minted), in text and in json; the token is printed nowhere."""
    org = fleet.sandbox.add_org("github", "gh-acme", runners=0, token=GITHUB_TOKEN)
    extra = "\n".join(
        [
            "[accounts.gh-acme]",
            'provider = "github"',
            f'base_url = "{fleet.sandbox.url("github")}"',
            'org = "gh-acme"',
            'token_env = "CLI_TEST_GITHUB_TOKEN"',
        ]
    )
    path = write_accounts(fleet.tmp / "github.toml", fleet.base_url, fleet.eu, extra=extra)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CLI_TEST_GITHUB_TOKEN", GITHUB_TOKEN)
        text = await run("--config", str(path), "--account", "gh-acme", "create", "ci-1")
        data = await run(
            "--config", str(path), "--account", "gh-acme", "create", "ci-2", "-o", "json"
        )
    assert text.code == 0, text.err
    assert data.code == 0, data.err
    first, second = org.jit_configs.values()
    assert f"./run.sh --jitconfig {first}" in text.out
    assert text.out.count(first) == 1
    assert data.json["jit_config"] == second
    assert data.json["name"] == "ci-2"
    assert data.json["runner_id"] in {str(runner_id) for runner_id in org.runners}
    for result in (text, data):
        assert GITHUB_TOKEN not in result.out + result.err
