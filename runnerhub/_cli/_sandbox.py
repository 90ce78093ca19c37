"""The ``sandbox`` and ``demo`` commands: the vendor emulator, served or inventoried.

Both walk the sandbox's accounts and build clients through the vendor
registry (each provider class's ``credentials`` and ``default_limits``), so a
vendor with a sandbox service appears here without a line naming it.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import os
import shlex
import signal
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit, urlunsplit

import attrs

from .. import errors
from ..fleet import Inventory, RunnerHub
from ..limits import RateLimit
from ..models import Runner, RunnerStatus
from ..provider import RunnerProvider
from ..vendors import provider_class
from ._common import Context, ExitCode
from ._fleet import inventory, inventory_exit, render_inventory
from ._output import Output

if TYPE_CHECKING:
    from ..sandbox import Sandbox

__all__ = [
    "accounts_file",
    "cmd_demo",
    "cmd_sandbox",
    "demo_providers",
    "sample",
    "scaled_limits",
]

DEMO_TIME_SCALE: Final = 10.0
DEMO_TABLE_ROWS: Final = 20


def scaled_limits(vendor_limits: Mapping[str, tuple[RateLimit, ...]], scale: float) -> Any:
    """A vendor's documented limits with every window divided by ``scale``."""
    return {
        operation: tuple(
            attrs.evolve(limit, period_seconds=limit.period_seconds / scale) for limit in limits
        )
        for operation, limits in vendor_limits.items()
    }


def _env_name(label: str, credential: str) -> str:
    clean = "".join(c if c.isalnum() else "_" for c in f"{label}_{credential}".upper())
    return f"SANDBOX_{clean}"


def _reachable(url: str) -> str:
    # A server bound to every address (0.0.0.0, ::) is reached from here over loopback.
    parts = urlsplit(url)
    host = parts.hostname or ""
    with contextlib.suppress(ValueError):
        if ipaddress.ip_address(host).is_unspecified:
            loopback = "[::1]" if ":" in host else "127.0.0.1"
            netloc = f"{loopback}:{parts.port}" if parts.port else loopback
            return urlunsplit(parts._replace(netloc=netloc))
    return url


def _toml(value: str) -> str:
    return json.dumps(value)  # a JSON string is a valid TOML basic string


def accounts_file(
    sandbox: Sandbox, scale: float, *, env_file: str | None = None
) -> tuple[list[str], dict[str, str]]:
    """The accounts file of a served sandbox, and the secrets it reads by variable name.

    Secrets go to ``*_env`` variables (returned, never in the file); a
    credential its provider class marks as not secret is written inline.
    """
    lines: list[str] = []
    secrets: dict[str, str] = {}
    if env_file is not None:
        lines += [f"env_file = {_toml(env_file)}", ""]
    for account in sandbox.accounts():
        cls = provider_class(account.vendor)
        lines += [
            f"[accounts.{account.name}]",
            f"provider = {_toml(account.vendor)}",
            f"base_url = {_toml(_reachable(sandbox.url(account.vendor)))}",
        ]
        lines += [f"{key} = {_toml(value)}" for key, value in account.options.items()]
        for field in cls.credentials:
            value = account.credentials.get(field.name)
            if value is None:
                continue
            if field.secret:
                variable = _env_name(account.name, field.name)
                secrets[variable] = value
                lines.append(f"{field.name}_env = {_toml(variable)}")
            else:
                lines.append(f"{field.name} = {_toml(value)}")
        lines += _limit_lines(account.name, cls.default_limits, scale)
        lines.append("")
    return lines, secrets


def _limit_lines(
    label: str, limits: Mapping[str, tuple[RateLimit, ...]], scale: float
) -> list[str]:
    if scale == 1:
        return []
    lines = [f"[accounts.{label}.rate_limits]"]
    for operation, windows in scaled_limits(limits, scale).items():
        items = ", ".join(
            f"{{max_requests = {w.max_requests}, period_seconds = {w.period_seconds:g}}}"
            for w in windows
        )
        lines.append(f"{_toml(operation)} = [{items}]")
    return lines


def _write_config(path: Path, lines: list[str], secrets: Mapping[str, str]) -> Path:
    """Write the accounts file and, beside it, its secrets (mode 0600); return the latter."""
    secrets_path = path.with_name(path.name + ".env")
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
    fd = os.open(secrets_path, flags, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        os.fchmod(handle.fileno(), 0o600)  # an existing file keeps its mode through O_CREAT
        handle.writelines(f"{name}={shlex.quote(value)}\n" for name, value in secrets.items())
    path.write_text("\n".join(lines), encoding="utf-8")
    return secrets_path


def _banner(
    out: Output,
    sandbox: Sandbox,
    base_url: str,
    scale: float,
    write_config: Path | None,
) -> None:
    out.line(f"runnerhub sandbox serving at {base_url}")
    vendors = sorted({account.vendor for account in sandbox.accounts()})
    out.line(
        "Vendors: "
        + ", ".join(f"{provider_class(v).title} ({sandbox.url(v)})" for v in vendors)
        + f"; seed {sandbox.seed}, rate-limit windows at {scale:g}x vendor speed."
    )
    if _reachable(base_url) != base_url:
        out.line(
            f"Other machines reach it at http://<this host>:{urlsplit(base_url).port}; "
            "their accounts file needs allow_insecure_http = true (plain http)."
        )
    out.line()
    out.line("Sandbox accounts (their credentials work on this sandbox only):")
    for account in sandbox.accounts():
        out.line(f"  {account.name} ({provider_class(account.vendor).title})")
    env_name = None if write_config is None else write_config.name + ".env"
    lines, secrets = accounts_file(sandbox, scale, env_file=env_name)
    out.line()
    if write_config is not None:
        secrets_path = _write_config(write_config, lines, secrets)
        out.line(f"Wrote {write_config} and its secrets to {secrets_path} (mode 0600):")
        out.line()
        out.line(f"    runnerhub --config {shlex.quote(str(write_config))} ls")
        out.line()
        out.line("The accounts file:")
    else:
        out.line("Export the secrets:")
        out.line()
        for name, value in secrets.items():
            out.line(f"    export {name}={shlex.quote(value)}")
        out.line()
        out.line("and use this accounts file (runnerhub --config sandbox.toml ls):")
    out.line()
    for line in lines:
        out.line(f"    {line}" if line else "")
    out.line("Serving until Ctrl-C.")


def _on_sigterm(callback: Callable[[], None]) -> None:
    # ``kill <pid>`` stops the server as cleanly as Ctrl-C; only possible in the main thread.
    with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, callback)


def _make_sandbox(seed: int, scale: float, *, demo: bool) -> Sandbox:
    from ..sandbox import Sandbox  # noqa: PLC0415 - aiohttp.web only for these commands

    seeded = Sandbox.demo(seed, time_scale=scale)
    if demo:
        return seeded
    # The same accounts with no runners.
    empty = Sandbox(seed, time_scale=scale)
    for account in seeded.accounts():
        empty.add_org(account.vendor, account.name, runners=0)
    return empty


def cmd_sandbox(ctx: Context) -> int:
    """Serve the emulator until Ctrl-C or SIGTERM."""
    args = ctx.args
    if args.time_scale <= 0:
        raise errors.UsageError("--time-scale must be > 0")
    write_config = None if args.write_config is None else Path(args.write_config)
    if write_config is not None and not write_config.parent.is_dir():
        raise errors.UsageError(f"--write-config: no directory {write_config.parent}")
    sandbox = _make_sandbox(args.seed, args.time_scale, demo=args.demo_fleet)

    async def serve() -> int:
        stop = asyncio.Event()
        _on_sigterm(stop.set)
        try:
            async with sandbox.serve(args.host, args.port) as base_url:
                _banner(ctx.out, sandbox, base_url, args.time_scale, write_config)
                ctx.out.flush()
                await stop.wait()
        except OSError as exc:
            raise errors.RunnerHubError(
                f"cannot serve on {args.host}:{args.port}: {exc.strerror or exc}"
            ) from None
        return ExitCode.OK

    return asyncio.run(serve())


def demo_providers(sandbox: Sandbox, **options: Any) -> list[RunnerProvider]:
    """A provider for every account of a served sandbox, at the demo's scaled limits."""
    providers: list[RunnerProvider] = []
    for account in sandbox.accounts():
        cls = provider_class(account.vendor)
        providers.append(
            cls(
                **account.credentials,
                **account.options,
                base_url=sandbox.url(account.vendor),
                account=account.name,
                rate_limits=scaled_limits(cls.default_limits, DEMO_TIME_SCALE),
                **options,
            )
        )
    return providers


def cmd_demo(ctx: Context) -> int:
    """The seeded demo fleet on the embedded sandbox: inventory with health, table, summary."""
    sandbox = _make_sandbox(ctx.args.seed, DEMO_TIME_SCALE, demo=True)

    async def run() -> int:
        async with sandbox.serve(), RunnerHub(demo_providers(sandbox)) as hub:
            fetched = await inventory(ctx, hub, hub.providers, health=True)
        if ctx.output == "table":
            ctx.out.line(
                f"Demo fleet on the embedded sandbox (seed {ctx.args.seed}, rate limits at "
                f"{DEMO_TIME_SCALE:g}x vendor speed): no account, no network."
            )
            ctx.out.line()
        render_inventory(
            ctx,
            fetched,
            shown=sample(fetched, DEMO_TABLE_ROWS),
            extra_json={"sandbox": {"seed": ctx.args.seed, "time_scale": DEMO_TIME_SCALE}},
        )
        return inventory_exit(ctx, fetched)

    return asyncio.run(run())


def sample(fetched: Inventory, rows: int) -> list[Runner]:
    """A few rows per account, half of them runners that are not online (the interesting ones)."""
    per_account = max(2, rows // max(1, len(fetched.accounts)))
    chosen: list[Runner] = []
    for account in fetched.accounts:
        mine = [r for r in fetched.runners if r.account == account]
        unwell = [r for r in mine if r.status is not RunnerStatus.ONLINE][: per_account // 2]
        online = [r for r in mine if r.status is RunnerStatus.ONLINE]
        picked = {id(r) for r in unwell + online[: per_account - len(unwell)]}
        chosen += [r for r in mine if id(r) in picked]
    return chosen
