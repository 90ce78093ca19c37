"""One function per command, the accounts they run against, and exit codes.

A command is a plain function of :class:`Context` returning the exit code.
It builds the hub before any event loop runs (reading the accounts file sends
nothing), asks for confirmation synchronously (so Ctrl-C interrupts the prompt
at once), then runs its coroutine with ``asyncio.run`` inside
``async with hub`` so every session is closed however the coroutine ends.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import enum
import json
import os
import shlex
import signal
import sys
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import attrs

from .. import errors
from .._serialize import error_to_json, health_to_json, inventory_to_json, runner_to_json
from ..fleet import FleetEvent, FleetEventKind, Inventory, PartialFailure, RunnerHub
from ..limits import RateLimit
from ..models import HealthCheck, Runner, RunnerStatus
from ..provider import (
    Capability,
    RunnerProvider,
    SupportsDescription,
    SupportsHealth,
    SupportsManifests,
    SupportsOperations,
    unsupported,
)
from ..vendors.kubiya import KubiyaProvider
from ..vendors.soda import SodaProvider
from ._output import (
    CSV_FIELDS,
    RUNNER_HEADERS,
    Output,
    ago,
    columns,
    csv_row,
    redact,
    runner_row,
    runner_version,
    summary_lines,
)
from ._progress import InventoryProgress

__all__ = ["COMMANDS", "Context", "ExitCode", "exit_code_for"]

DEFAULT_CONFIG: Final = "runnerhub.toml"
DEMO_TIME_SCALE: Final = 10.0
DEMO_TABLE_ROWS: Final = 20


class ExitCode(enum.IntEnum):
    """What the process tells its caller."""

    OK = 0
    PARTIAL = 1
    USAGE = 2
    AUTH = 3
    ERROR = 4
    BROKEN_PIPE = 141
    INTERRUPTED = 130


def exit_code_for(error: errors.RunnerHubError) -> ExitCode:
    """The exit code of a command that failed with ``error``."""
    if isinstance(error, errors.UsageError | errors.UnsupportedOperation):
        return ExitCode.USAGE
    if isinstance(error, errors.AuthenticationError | errors.PermissionDeniedError):
        return ExitCode.AUTH
    if isinstance(error, PartialFailure):
        return ExitCode.PARTIAL
    return ExitCode.ERROR


@attrs.define
class Context:
    """What every command gets: its parsed arguments, the streams, the environment."""

    args: argparse.Namespace
    out: Output = attrs.field(factory=Output)
    environ: Mapping[str, str] = attrs.field(factory=lambda: os.environ)

    @property
    def progress(self) -> bool:
        """``--progress``/``--no-progress``, else on when stderr is a terminal."""
        chosen: bool | None = self.args.progress
        return self.out.stderr.isatty() if chosen is None else chosen

    @property
    def output(self) -> str:
        """The ``-o`` format of the command (``table`` if it has none)."""
        return str(getattr(self.args, "output", "table"))


# -- the accounts ---------------------------------------------------------------------------


def build_hub(ctx: Context) -> RunnerHub:
    """The hub of ``--config``, ``$RUNNERHUB_CONFIG`` or ``./runnerhub.toml``, else of the env.

    Raises:
        UsageError: for a bad accounts file, or when there is none and no
            ``SODA_*``/``KUBIYA_API_KEY`` variable is set.
    """
    env = ctx.environ
    path = ctx.args.config or env.get("RUNNERHUB_CONFIG")
    if path:
        return RunnerHub.from_config(path, environ=env)
    if Path(DEFAULT_CONFIG).is_file():
        return RunnerHub.from_config(DEFAULT_CONFIG, environ=env)
    providers: list[RunnerProvider] = []
    if any(env.get(name) for name in ("SODA_API_KEY_ID", "SODA_API_KEY_SECRET", "SODA_TOKEN")):
        providers.append(SodaProvider.from_env(env))
    if env.get("KUBIYA_API_KEY"):
        providers.append(KubiyaProvider.from_env(env))
    if not providers:
        raise errors.UsageError(
            f"no accounts: write {DEFAULT_CONFIG} (or pass --config), or set "
            "SODA_API_KEY_ID and SODA_API_KEY_SECRET, or KUBIYA_API_KEY (see docs/cli.md)"
        )
    return RunnerHub(providers)


def one_account(hub: RunnerHub, ctx: Context) -> RunnerProvider:
    """The provider a single-runner command acts on (``--account``, or the only one)."""
    labels: list[str] = ctx.args.account or []
    if len(labels) > 1:
        raise errors.UsageError("this command acts on one account: give --account once")
    if labels:
        return hub.get(labels[0])
    if len(hub.providers) == 1:
        return hub.providers[0]
    names = ", ".join(p.account for p in hub.providers)
    raise errors.UsageError(f"{len(hub.providers)} accounts ({names}): choose one with --account")


def _with_hub(ctx: Context, body: Callable[[RunnerHub], Awaitable[int]]) -> int:
    hub = build_hub(ctx)

    async def run() -> int:
        async with hub:
            return await body(hub)

    return asyncio.run(run())


def _with_provider(ctx: Context, body: Callable[[RunnerProvider], Awaitable[int]]) -> int:
    async def run(hub: RunnerHub) -> int:
        return await body(one_account(hub, ctx))

    return _with_hub(ctx, run)


# -- inventories ----------------------------------------------------------------------------


async def _inventory(
    ctx: Context, hub: RunnerHub, providers: Sequence[RunnerProvider], *, health: bool
) -> Inventory:
    labels = [p.account for p in providers]
    if not ctx.progress:
        return await hub.inventory(health=health, accounts=labels)
    async with InventoryProgress(providers, ctx.out.stderr) as progress:
        return await hub.inventory(health=health, accounts=labels, progress=progress)


def _filtered(inventory: Inventory, statuses: Iterable[str], kinds: Iterable[str]) -> Inventory:
    wanted_status, wanted_kind = set(statuses), set(kinds)
    runners = tuple(
        r
        for r in inventory.runners
        if (not wanted_status or r.status.value in wanted_status)
        and (not wanted_kind or r.kind.value in wanted_kind)
    )
    return attrs.evolve(inventory, runners=runners)


def _sample(inventory: Inventory, rows: int) -> list[Runner]:
    # A few rows per account, half of them runners that are not online (the interesting ones).
    per_account = max(2, rows // max(1, len(inventory.accounts)))
    chosen: list[Runner] = []
    for account in inventory.accounts:
        mine = [r for r in inventory.runners if r.account == account]
        unwell = [r for r in mine if r.status is not RunnerStatus.ONLINE][: per_account // 2]
        online = [r for r in mine if r.status is RunnerStatus.ONLINE]
        picked = {id(r) for r in unwell + online[: per_account - len(unwell)]}
        chosen += [r for r in mine if id(r) in picked]
    return chosen


def _render_inventory(
    ctx: Context,
    inventory: Inventory,
    *,
    sample: int | None = None,
    extra_json: Mapping[str, Any] | None = None,
) -> None:
    out = ctx.out
    if ctx.output == "json":
        out.json({**(extra_json or {}), **inventory_to_json(inventory)})
        return
    if ctx.output == "ndjson":
        for runner in inventory.runners:
            out.ndjson(runner_to_json(runner))
        return
    if ctx.output == "csv":
        out.csv(CSV_FIELDS, (csv_row(r) for r in inventory.runners))
        return
    now = datetime.now(UTC)
    shown = list(inventory.runners) if sample is None else _sample(inventory, sample)
    if shown:
        out.table(RUNNER_HEADERS, (runner_row(r, now) for r in shown), status_column=4)
    else:
        out.line("No runners.")
    more = len(inventory.runners) - len(shown)
    if more > 0:
        out.line(f"… {more:,} more runner(s); -o json, -o ndjson or -o csv list them all")
    out.line()
    for text in summary_lines(inventory):
        out.line(text)


def _inventory_exit(ctx: Context, inventory: Inventory) -> int:
    for label, error in inventory.errors.items():
        ctx.out.error(f"account {label} failed: {error}")
    failures = inventory.health_failures
    if failures and ctx.output != "table":  # a table's summary already says so
        accounts = ", ".join(sorted({f.account for f in failures}))
        ctx.out.warning(
            f"{len(failures)} health check(s) failed ({accounts}); those runners show as unknown"
        )
    if ctx.args.verbose:
        for failure in failures:
            ctx.out.warning(f"health of {failure.runner_id} failed: {failure.error}")
    if not inventory.errors:
        return ExitCode.OK
    if len(inventory.errors) < len(inventory.accounts):
        return ExitCode.PARTIAL
    codes = {exit_code_for(error) for error in inventory.errors.values()}
    return ExitCode.AUTH if codes == {ExitCode.AUTH} else ExitCode.ERROR


def cmd_ls(ctx: Context) -> int:
    """List runners over every selected account."""
    args = ctx.args

    async def body(hub: RunnerHub) -> int:
        chosen = hub.select(accounts=args.account or None, providers=args.provider or None)
        inventory = await _inventory(ctx, hub, chosen, health=args.health)
        _render_inventory(ctx, _filtered(inventory, args.status or (), args.kind or ()))
        return _inventory_exit(ctx, inventory)

    return _with_hub(ctx, body)


# -- one runner -----------------------------------------------------------------------------


def _fields(out: Output, pairs: Sequence[tuple[str, str]], indent: str = "") -> None:
    width = max((len(label) for label, _ in pairs), default=0) + 1
    for label, value in pairs:
        out.line(f"{indent}{(label + ':').ljust(width)}  {value}")


def _when(value: datetime | None) -> str:
    return "-" if value is None else f"{value.isoformat()} ({ago(value)})"


def cmd_get(ctx: Context) -> int:
    """One runner as a table row or JSON."""

    async def body(provider: RunnerProvider) -> int:
        runner = await provider.get_runner(ctx.args.runner_id)
        if ctx.output == "json":
            ctx.out.json(runner_to_json(runner))
        else:
            ctx.out.table(RUNNER_HEADERS, [runner_row(runner, datetime.now(UTC))], status_column=4)
        return ExitCode.OK

    return _with_provider(ctx, body)


def cmd_describe(ctx: Context) -> int:
    """Every field of one runner, its versions, and its health where the vendor has a check."""

    async def body(provider: RunnerProvider) -> int:
        runner = await provider.get_runner(ctx.args.runner_id)
        health = None
        health_error: errors.RunnerHubError | None = None
        if Capability.HEALTH_CHECK in provider.capabilities and isinstance(
            provider, SupportsHealth
        ):
            try:
                health = await provider.runner_health(runner.id)
            except errors.RunnerHubError as exc:
                health_error = exc
        out = ctx.out
        if ctx.output == "json":
            out.json(
                {
                    "runner": runner_to_json(runner),
                    "health": None if health is None else health_to_json(health),
                    "health_error": None if health_error is None else error_to_json(health_error),
                }
            )
            return ExitCode.OK
        _fields(
            out,
            [
                ("Account", runner.account),
                ("Provider", runner.provider),
                ("ID", runner.id),
                ("Name", runner.name),
                ("Kind", runner.kind.value),
                ("Status", runner.status.value),
                ("Version", runner_version(runner)),
                ("Last seen", _when(runner.last_seen)),
                ("Description", runner.description or "-"),
            ],
        )
        out.line("Versions:" + ("" if runner.versions else "    -"))
        _fields(out, sorted(runner.versions.items()), indent="  ")
        if health is not None:
            out.line("Health:")
            _fields(
                out,
                [("Status", health.status.value), ("Checked", _when(health.checked_at))],
                indent="  ",
            )
            _checks(out, health.checks, indent="  ")
        elif health_error is not None:
            out.line(f"Health:       unavailable ({health_error})")
        return ExitCode.OK

    return _with_provider(ctx, body)


def _checks(out: Output, checks: Sequence[HealthCheck], indent: str = "") -> None:
    if not checks:
        return
    rows = [
        [c.name, c.status.value, c.version or "-", " ".join((c.error or "-").split())]
        for c in checks
    ]
    for text in columns(_CHECK_HEADERS, rows):
        out.line(indent + text)


_CHECK_HEADERS: Final = ("CHECK", "STATUS", "VERSION", "ERROR")


def cmd_health(ctx: Context) -> int:
    """One runner's health: overall status and, where the vendor has them, its checks."""

    async def body(provider: RunnerProvider) -> int:
        runner_id = ctx.args.runner_id
        if not isinstance(provider, SupportsHealth):
            raise unsupported(provider, "runner_health")
        health = await provider.runner_health(runner_id)
        if ctx.output == "json":
            ctx.out.json({"account": provider.account, "id": runner_id, **health_to_json(health)})
            return ExitCode.OK
        _fields(
            ctx.out,
            [
                ("Runner", f"{runner_id} ({provider.account})"),
                ("Status", health.status.value),
                ("Checked", _when(health.checked_at)),
            ],
        )
        if health.checks:
            ctx.out.line()
            _checks(ctx.out, health.checks)
        return ExitCode.OK

    return _with_provider(ctx, body)


def cmd_create(ctx: Context) -> int:
    """Create a runner; Soda's one-time secret is printed here, once, and nowhere else."""

    async def body(provider: RunnerProvider) -> int:
        created = await provider.create_runner(ctx.args.name)
        credentials = created.credentials
        out = ctx.out
        if ctx.output == "json":
            out.json(
                {
                    "account": provider.account,
                    "provider": provider.provider,
                    "runner_id": created.runner_id,
                    "name": created.name,
                    "api_key_id": credentials.api_key_id if credentials else None,
                    # The one place a secret is printed: the user asked for it to be made.
                    "api_key_secret": (
                        credentials.api_key_secret.get_secret_value() if credentials else None
                    ),
                    "manifest_url": created.manifest_url,
                }
            )
            return ExitCode.OK
        what = f"runner {created.name}" if created.name else "runner credentials"
        out.line(f"Created {what} in account {provider.account}.")
        if credentials is not None:
            out.line(f"API key id: {credentials.api_key_id}")
            out.line()
            out.line("Store this secret now — it will not be shown again:")
            out.line()
            out.line(f"    {credentials.api_key_secret.get_secret_value()}")
            out.line()
            out.line("Deploy the runner with this key pair; it is listed once it connects.")
        if created.manifest_url:
            out.line("Deploy it with the command below; the URL works without authentication,")
            out.line("so treat it as a secret:")
            out.line()
            out.line(f"    kubectl apply -f {created.manifest_url}")
        return ExitCode.OK

    return _with_provider(ctx, body)


def cmd_delete(ctx: Context) -> int:
    """Delete a runner, after a y/N confirmation on a terminal unless ``--yes``."""
    hub = build_hub(ctx)
    provider = one_account(hub, ctx)
    runner_id = ctx.args.runner_id
    if not ctx.args.yes:
        if not _stdin_isatty():
            raise errors.UsageError(
                "refusing to delete without confirmation: stdin is not a terminal; pass --yes"
            )
        ctx.out.stderr.write(f"Delete runner {runner_id} of account {provider.account}? [y/N] ")
        ctx.out.stderr.flush()
        answer = sys.stdin.readline().strip().lower()
        if answer not in ("y", "yes"):
            ctx.out.note("Not deleted.")
            asyncio.run(hub.aclose())
            return ExitCode.OK

    async def body(hub: RunnerHub) -> int:
        await provider.delete_runner(runner_id)
        if ctx.output == "json":
            ctx.out.json({"account": provider.account, "id": runner_id, "deleted": True})
        else:
            ctx.out.line(f"Deleted runner {runner_id} of account {provider.account}.")
        return ExitCode.OK

    async def run() -> int:
        async with hub:
            return await body(hub)

    return asyncio.run(run())


def _stdin_isatty() -> bool:
    try:
        return sys.stdin is not None and sys.stdin.isatty()
    except ValueError:  # closed
        return False


def cmd_set_description(ctx: Context) -> int:
    """Set a runner's description (the vendor's answer is not echoed: it may hold secrets)."""

    async def body(provider: RunnerProvider) -> int:
        runner_id, text = ctx.args.runner_id, ctx.args.text
        if not isinstance(provider, SupportsDescription):
            raise unsupported(provider, "update_description")
        await provider.update_description(runner_id, text)
        if ctx.output == "json":
            ctx.out.json({"account": provider.account, "id": runner_id, "description": text})
        else:
            ctx.out.line(f"Description of runner {runner_id} of account {provider.account} set.")
        return ExitCode.OK

    return _with_provider(ctx, body)


def cmd_manifest(ctx: Context) -> int:
    """The deployment manifest, as the vendor sends it (for ``| kubectl apply -f -``)."""

    async def body(provider: RunnerProvider) -> int:
        if not isinstance(provider, SupportsManifests):
            raise unsupported(provider, "deployment_manifest")
        ctx.out.write(await provider.deployment_manifest(ctx.args.runner_id))
        return ExitCode.OK

    return _with_provider(ctx, body)


def cmd_helm_values(ctx: Context) -> int:
    """The Helm values as JSON, credentials masked unless ``--show-secrets``."""

    async def body(provider: RunnerProvider) -> int:
        if not isinstance(provider, SupportsManifests):
            raise unsupported(provider, "helm_values")
        values = await provider.helm_values(ctx.args.runner_id)
        if isinstance(values, bytes):
            if not ctx.args.show_secrets:
                raise errors.UsageError(
                    "the vendor sent a chart archive, not JSON values; it may hold secrets "
                    "and cannot be masked: pass --show-secrets and redirect it to a file"
                )
            if ctx.out.stdout.isatty():
                raise errors.UsageError("the chart archive is binary: redirect it to a file")
            ctx.out.stdout.flush()
            ctx.out.stdout.buffer.write(values)
            return ExitCode.OK
        ctx.out.json(dict(values) if ctx.args.show_secrets else redact(values))
        return ExitCode.OK

    return _with_provider(ctx, body)


def _parameters(pairs: Sequence[str]) -> dict[str, Any]:
    parameters: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise errors.UsageError(f"--param wants key=value, got {pair!r}")
        try:
            parameters[key] = json.loads(value)
        except ValueError:
            parameters[key] = value
    return parameters


def cmd_op(ctx: Context) -> int:
    """Run a vendor operation; print its JSON answer (credential-like keys masked)."""
    parameters = _parameters(ctx.args.param or ())

    async def body(provider: RunnerProvider) -> int:
        if not isinstance(provider, SupportsOperations):
            raise unsupported(provider, "run_operation")
        answer = await provider.run_operation(ctx.args.runner_id, ctx.args.operation, parameters)
        if isinstance(answer, str):
            ctx.out.line(answer)
        else:
            ctx.out.json(redact(answer))
        return ExitCode.OK

    return _with_provider(ctx, body)


# -- watching -------------------------------------------------------------------------------


def _event_json(event: FleetEvent, when: datetime) -> dict[str, Any]:
    runner, previous = event.runner, event.previous
    return {
        "time": when.isoformat(),
        "event": event.kind.value,
        "account": event.account,
        "id": runner.id if runner else None,
        "status": runner.status.value if runner else None,
        "previous_status": previous.status.value if previous else None,
        "runner": runner_to_json(runner) if runner else None,
        "error": error_to_json(event.error) if event.error else None,
    }


def _event_line(event: FleetEvent, when: datetime) -> str:
    runner, previous = event.runner, event.previous
    clock = when.astimezone().strftime("%H:%M:%S")
    head = f"{clock}  {event.kind.value:<15}  {event.account}"
    if event.kind is FleetEventKind.ACCOUNT_FAILED:
        return f"{head}  {event.error}"
    assert runner is not None  # noqa: S101 - every other kind carries its runner
    if event.kind is FleetEventKind.STATUS_CHANGED and previous is not None:
        change = f"{previous.status.value} → {runner.status.value}"
    elif event.kind is FleetEventKind.VERSION_CHANGED and previous is not None:
        change = f"{runner_version(previous)} → {runner_version(runner)}"
    else:
        change = runner.status.value
    return f"{head}  {runner.id}  {runner.name}  {change}"


def cmd_watch(ctx: Context) -> int:
    """One line per fleet change until Ctrl-C (exit 0) or ``--max-events``."""
    args = ctx.args
    if args.interval <= 0:
        raise errors.UsageError("--interval must be > 0 seconds")

    async def body(hub: RunnerHub) -> int:
        seen = 0
        # Close the generator (and its inventory) when we stop early.
        events = hub.watch(
            args.interval,
            health=args.health,
            initial=not args.changes_only,
            accounts=args.account or None,
        )
        async with contextlib.aclosing(events):
            async for event in events:
                when = datetime.now(UTC)
                if ctx.output == "ndjson":
                    ctx.out.ndjson(_event_json(event, when))
                else:
                    ctx.out.line(_event_line(event, when))
                ctx.out.flush()
                seen += 1
                if args.max_events and seen >= args.max_events:
                    break
        return ExitCode.OK

    return _with_hub(ctx, body)


# -- the sandbox ----------------------------------------------------------------------------


def scaled_limits(vendor_limits: Mapping[str, tuple[RateLimit, ...]], scale: float) -> Any:
    """A vendor's documented limits with every window divided by ``scale``."""
    return {
        operation: tuple(
            attrs.evolve(limit, period_seconds=limit.period_seconds / scale) for limit in limits
        )
        for operation, limits in vendor_limits.items()
    }


def _on_sigterm(callback: Callable[[], None]) -> None:
    # ``kill <pid>`` stops the server as cleanly as Ctrl-C; only possible in the main thread.
    with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, callback)


def _env_name(label: str, what: str) -> str:
    return "SANDBOX_" + "".join(c if c.isalnum() else "_" for c in label.upper()) + "_" + what


def _sandbox_banner(out: Output, sandbox: Any, base_url: str, scale: float) -> None:
    out.line(f"runnerhub sandbox serving at {base_url}")
    out.line(
        f"Soda Cloud v1 (/api/v1) and Kubiya v3 (/api/v3); seed {sandbox.seed}, "
        f"rate-limit windows at {scale:g}x vendor speed."
    )
    out.line()
    out.line("Sandbox credentials (they work on this sandbox only):")
    exports: list[str] = []
    snippet: list[str] = []
    for label, org in sandbox.soda_orgs.items():
        out.line(f"  {label}: {len(org.runners):,} runners, api_key_id {org.api_key_id}")
        secret = _env_name(label, "KEY_SECRET")
        exports.append(f"{secret}={shlex.quote(org.api_key_secret)}")
        snippet += [
            f"[accounts.{label}]",
            'provider = "soda"',
            f'base_url = "{base_url}"',
            f'api_key_id = "{org.api_key_id}"',
            f'api_key_secret_env = "{secret}"',
            *_limit_lines(label, SodaProvider.default_limits, scale),
            "",
        ]
    for label, org in sandbox.kubiya_orgs.items():
        out.line(f"  {label}: {len(org.runners):,} runners (Kubiya)")
        key = _env_name(label, "API_KEY")
        exports.append(f"{key}={shlex.quote(org.api_key)}")
        snippet += [
            f"[accounts.{label}]",
            'provider = "kubiya"',
            f'base_url = "{base_url}"',
            f'api_key_env = "{key}"',
            *_limit_lines(label, KubiyaProvider.default_limits, scale),
            "",
        ]
    out.line()
    out.line("Export the secrets:")
    out.line()
    for line in exports:
        out.line(f"    export {line}")
    out.line()
    out.line("and use this accounts file (runnerhub --config sandbox.toml ls):")
    out.line()
    for line in snippet:
        out.line(f"    {line}" if line else "")
    out.line("Serving until Ctrl-C.")


def _limit_lines(
    label: str, limits: Mapping[str, tuple[RateLimit, ...]], scale: float
) -> list[str]:
    if scale == 1:
        return []
    lines = ["", f"[accounts.{label}.rate_limits]"]
    for operation, windows in scaled_limits(limits, scale).items():
        items = ", ".join(
            f"{{max_requests = {w.max_requests}, period_seconds = {w.period_seconds:g}}}"
            for w in windows
        )
        lines.append(f'"{operation}" = [{items}]')
    return lines


def cmd_sandbox(ctx: Context) -> int:
    """Serve the emulator until Ctrl-C or SIGTERM."""
    from ..sandbox import Sandbox  # noqa: PLC0415 - aiohttp.web only for this command

    args = ctx.args
    if args.time_scale <= 0:
        raise errors.UsageError("--time-scale must be > 0")
    if args.demo_fleet:
        sandbox = Sandbox.demo(args.seed, time_scale=args.time_scale)
    else:
        sandbox = Sandbox(args.seed, time_scale=args.time_scale)
        for label in ("soda-eu", "soda-us"):
            sandbox.add_soda_org(label)
        sandbox.add_kubiya_org("kubiya-prod")

    async def serve() -> int:
        stop = asyncio.Event()
        _on_sigterm(stop.set)
        try:
            async with sandbox.serve(args.host, args.port) as base_url:
                _sandbox_banner(ctx.out, sandbox, base_url, args.time_scale)
                ctx.out.flush()
                await stop.wait()
        except OSError as exc:
            raise errors.RunnerHubError(
                f"cannot serve on {args.host}:{args.port}: {exc.strerror or exc}"
            ) from None
        return ExitCode.OK

    return asyncio.run(serve())


def cmd_demo(ctx: Context) -> int:
    """The seeded demo fleet on the embedded sandbox: inventory with health, table, summary."""
    from ..sandbox import Sandbox  # noqa: PLC0415 - aiohttp.web only for this command

    sandbox = Sandbox.demo(ctx.args.seed, time_scale=DEMO_TIME_SCALE)
    soda_limits = scaled_limits(SodaProvider.default_limits, DEMO_TIME_SCALE)
    kubiya_limits = scaled_limits(KubiyaProvider.default_limits, DEMO_TIME_SCALE)

    async def run() -> int:
        async with sandbox.serve() as base_url:
            providers: list[RunnerProvider] = [
                SodaProvider(
                    org.api_key_id,
                    org.api_key_secret,
                    base_url=base_url,
                    account=label,
                    rate_limits=soda_limits,
                )
                for label, org in sandbox.soda_orgs.items()
            ]
            providers += [
                KubiyaProvider(
                    org.api_key, base_url=base_url, account=label, rate_limits=kubiya_limits
                )
                for label, org in sandbox.kubiya_orgs.items()
            ]
            async with RunnerHub(providers) as hub:
                inventory = await _inventory(ctx, hub, hub.providers, health=True)
        if ctx.output == "table":
            ctx.out.line(
                f"Demo fleet on the embedded sandbox (seed {ctx.args.seed}, rate limits at "
                f"{DEMO_TIME_SCALE:g}x vendor speed): no account, no network."
            )
            ctx.out.line()
        _render_inventory(
            ctx,
            inventory,
            sample=DEMO_TABLE_ROWS,
            extra_json={
                "sandbox": {"seed": ctx.args.seed, "time_scale": DEMO_TIME_SCALE},
            },
        )
        return _inventory_exit(ctx, inventory)

    return asyncio.run(run())


COMMANDS: Final[Mapping[str, Callable[[Context], int]]] = {
    "ls": cmd_ls,
    "get": cmd_get,
    "describe": cmd_describe,
    "health": cmd_health,
    "create": cmd_create,
    "delete": cmd_delete,
    "set-description": cmd_set_description,
    "manifest": cmd_manifest,
    "helm-values": cmd_helm_values,
    "op": cmd_op,
    "watch": cmd_watch,
    "sandbox": cmd_sandbox,
    "demo": cmd_demo,
}
