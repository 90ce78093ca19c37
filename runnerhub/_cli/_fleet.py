"""Commands over many accounts: ``ls`` and ``watch``, and how an inventory is shown.

``ls`` filters after fetching (status, kind, name glob, last seen) so the
summary describes what is shown; accounts and vendors are chosen before, so
only those are fetched.
"""

from __future__ import annotations

import contextlib
import fnmatch
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import attrs

from .. import errors
from .._serialize import error_to_json, inventory_to_json, runner_to_json
from ..fleet import FleetEvent, FleetEventKind, Inventory, RunnerHub
from ..models import Runner, RunnerStatus
from ..provider import Capability, RunnerProvider, SupportsHealth
from ._common import Context, ExitCode, error_text, exit_code_for, select, with_hub
from ._output import (
    CSV_FIELDS,
    csv_row,
    runner_row,
    runner_version,
    summary_lines,
)
from ._progress import InventoryProgress

__all__ = [
    "COLUMNS",
    "cmd_ls",
    "cmd_watch",
    "inventory",
    "inventory_exit",
    "parse_columns",
    "parse_duration",
    "render_inventory",
]

#: The columns ``--columns`` and ``--sort`` know, in their default order.
COLUMNS: Final = CSV_FIELDS
_DEFAULT_TABLE: Final = (
    "account",
    "id",
    "name",
    "kind",
    "status",
    "version",
    "last_seen",
    "description",
)
_UNITS: Final = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DURATION: Final = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")


def parse_duration(text: str) -> timedelta:
    """``"30m"``, ``"1h30m"``, ``"2d"``, ``"90s"`` as a timedelta.

    Raises:
        UsageError: for anything else, or zero.
    """
    parts = _DURATION.findall(text.strip().lower())
    if not parts or "".join(a + u for a, u in parts) != text.strip().lower():
        raise errors.UsageError(f"--offline-for wants a duration like 30m, 2h or 1d, got {text!r}")
    seconds = sum(float(amount) * _UNITS[unit] for amount, unit in parts)
    if seconds <= 0:
        raise errors.UsageError("--offline-for must be more than 0")
    return timedelta(seconds=seconds)


def parse_columns(text: str | None) -> tuple[str, ...] | None:
    """``"id,name,status"`` as a tuple of known column names (None when not given).

    Raises:
        UsageError: for an unknown column, naming the known ones.
    """
    if text is None:
        return None
    names = tuple(name.strip() for name in text.split(",") if name.strip())
    unknown = [name for name in names if name not in COLUMNS]
    if unknown or not names:
        raise errors.UsageError(
            f"unknown column {', '.join(unknown) or '(none given)'}; columns: {', '.join(COLUMNS)}"
        )
    return names


# -- fetching and choosing ------------------------------------------------------------------


async def inventory(
    ctx: Context, hub: RunnerHub, providers: Sequence[RunnerProvider], *, health: bool
) -> Inventory:
    """An inventory of ``providers``, with a progress display on stderr when wanted."""
    labels = [p.account for p in providers]
    if not ctx.progress:
        return await hub.inventory(health=health, accounts=labels)
    async with InventoryProgress(providers, ctx.out.stderr) as progress:
        return await hub.inventory(health=health, accounts=labels, progress=progress)


@attrs.frozen
class Filters:
    """What ``ls`` keeps of an inventory, and in what order."""

    statuses: frozenset[str] = frozenset()
    kinds: frozenset[str] = frozenset()
    names: tuple[str, ...] = ()
    offline_for: timedelta | None = None
    sort: str | None = None

    def keep(self, runner: Runner, now: datetime) -> bool:
        """Whether ``runner`` passes every filter."""
        if self.statuses and runner.status.value not in self.statuses:
            return False
        if self.kinds and runner.kind.value not in self.kinds:
            return False
        if self.names and not any(fnmatch.fnmatchcase(runner.name, n) for n in self.names):
            return False
        if self.offline_for is not None:
            # Not seen for that long: a runner without a last-seen time proves nothing.
            return runner.last_seen is not None and now - runner.last_seen >= self.offline_for
        return True

    def apply(self, inventory: Inventory) -> Inventory:
        """``inventory`` with only the runners kept, sorted when asked."""
        now = datetime.now(UTC)
        runners = [r for r in inventory.runners if self.keep(r, now)]
        if self.sort is not None:
            runners.sort(key=_sort_key(self.sort))
        return attrs.evolve(inventory, runners=tuple(runners))


def _sort_key(column: str) -> Callable[[Runner], tuple[bool, Any]]:
    # Runners without the value sort last, whatever the column.
    def key(runner: Runner) -> tuple[bool, Any]:
        if column == "last_seen":
            return (runner.last_seen is None, runner.last_seen or datetime.min.replace(tzinfo=UTC))
        value = csv_row(runner)[column]
        return (value == "", value.casefold())

    return key


# -- showing --------------------------------------------------------------------------------


def _json_cell(runner: Runner, column: str) -> Any:
    if column == "last_seen":
        return runner.last_seen.isoformat() if runner.last_seen else None
    if column == "version":
        version = runner_version(runner)
        return None if version == "-" else version
    if column == "description":
        return runner.description
    return csv_row(runner)[column]


def _table_cells(runner: Runner, now: datetime, chosen: Sequence[str]) -> list[str]:
    cells = dict(zip(_DEFAULT_TABLE, runner_row(runner, now), strict=True))
    cells["provider"] = runner.provider
    return [cells[column] for column in chosen]


def render_inventory(
    ctx: Context,
    inventory: Inventory,
    *,
    shown: Sequence[Runner] | None = None,
    chosen: Sequence[str] | None = None,
    headers: bool = True,
    extra_json: Mapping[str, Any] | None = None,
) -> None:
    """Write ``inventory`` in the command's ``-o`` format.

    Args:
        shown: The rows of a table when not every runner (a sample).
        chosen: The columns (``--columns``); None for the default ones.
        headers: False for ``--no-headers`` (table and csv).
        extra_json: Keys added to the ``-o json`` document.
    """
    out = ctx.out

    def record(runner: Runner) -> dict[str, Any]:
        if chosen is None:
            return runner_to_json(runner)
        return {column: _json_cell(runner, column) for column in chosen}

    if ctx.output == "json":
        document = {**(extra_json or {}), **inventory_to_json(inventory)}
        if chosen is not None:
            document["runners"] = [record(r) for r in inventory.runners]
        out.json(document)
        return
    if ctx.output == "ndjson":
        for runner in inventory.runners:
            out.ndjson(record(runner))
        return
    if ctx.output == "csv":
        fields = tuple(chosen or CSV_FIELDS)
        rows = ({f: csv_row(r)[f] for f in fields} for r in inventory.runners)
        out.csv(fields, rows, header=headers)
        return
    now = datetime.now(UTC)
    columns = tuple(chosen or _DEFAULT_TABLE)
    table_rows = list(inventory.runners) if shown is None else list(shown)
    if table_rows:
        titles = [c.upper().replace("_", " ") for c in columns]
        status = columns.index("status") if "status" in columns else None
        out.table(
            titles,
            (_table_cells(r, now, columns) for r in table_rows),
            status_column=status,
            headers_shown=headers,
        )
    else:
        out.line("No runners.")
    more = len(inventory.runners) - len(table_rows)
    if more > 0:
        out.line(f"… {more:,} more runner(s); -o json, -o ndjson or -o csv list them all")
    out.line()
    for text in summary_lines(inventory):
        out.line(text)


def _health_hint(ctx: Context, inventory: Inventory, providers: Iterable[RunnerProvider]) -> None:
    # Said once: listings of vendors with a health check leave statuses unknown.
    checkable = {
        p.account
        for p in providers
        if isinstance(p, SupportsHealth) and Capability.HEALTH_CHECK in p.capabilities
    }
    unknown = [
        r for r in inventory.runners if r.account in checkable and r.status is RunnerStatus.UNKNOWN
    ]
    if unknown:
        accounts = ", ".join(sorted({r.account for r in unknown}))
        ctx.out.note(
            f"note: {len(unknown):,} runner(s) of {accounts} show as unknown: their listing "
            "has no status; --health asks each runner's health check"
        )


def inventory_exit(ctx: Context, inventory: Inventory) -> int:
    """Report failed accounts and health checks on stderr; return the exit code."""
    for label, error in inventory.errors.items():
        ctx.out.error(f"account {label} failed: {error_text(error)}")
    failures = inventory.health_failures
    if failures and ctx.output != "table":  # a table's summary already says so
        names = ", ".join(f"{f.account}/{f.runner_id}" for f in failures[:10])
        more = f" and {len(failures) - 10} more" if len(failures) > 10 else ""
        ctx.out.warning(
            f"{len(failures)} health check(s) failed ({names}{more}); those runners show as unknown"
        )
    if ctx.args.verbose:
        for failure in failures:
            ctx.out.warning(f"health of {failure.runner_id} failed: {error_text(failure.error)}")
    if not inventory.errors:
        return ExitCode.OK
    if len(inventory.errors) < len(inventory.accounts):
        return ExitCode.PARTIAL
    codes = {exit_code_for(error) for error in inventory.errors.values()}
    if len(codes) == 1 and codes <= {ExitCode.AUTH, ExitCode.USAGE}:
        return next(iter(codes))
    return ExitCode.ERROR


def cmd_ls(ctx: Context) -> int:
    """List runners over every selected account."""
    args = ctx.args
    filters = Filters(
        statuses=frozenset(args.status or ()),
        kinds=frozenset(args.kind or ()),
        names=tuple(args.name or ()),
        offline_for=None if args.offline_for is None else parse_duration(args.offline_for),
        sort=args.sort,
    )
    chosen = parse_columns(args.columns)

    async def body(hub: RunnerHub) -> int:
        providers = select(hub, args.account or None)
        if args.provider:
            providers = tuple(p for p in providers if p.provider in args.provider)
        fetched = await inventory(ctx, hub, providers, health=args.health)
        shown = filters.apply(fetched)
        render_inventory(ctx, shown, chosen=chosen, headers=not args.no_headers)
        if not args.health and ctx.output == "table":
            _health_hint(ctx, shown, providers)
        return inventory_exit(ctx, fetched)

    return with_hub(ctx, body)


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
        return f"{head}  {error_text(event.error) if event.error else ''}"
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
        labels = [p.account for p in select(hub, args.account or None)]
        # Close the generator (and its inventory) when we stop early.
        events = hub.watch(
            args.interval, health=args.health, initial=not args.changes_only, accounts=labels
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

    return with_hub(ctx, body)
