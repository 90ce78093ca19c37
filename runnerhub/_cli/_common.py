"""What every command shares: its context, exit codes, the accounts, and finding a runner.

A command is a plain function of :class:`Context` returning the exit code. It
builds the hub before any event loop runs (reading the accounts file sends
nothing), then runs its coroutine with ``asyncio.run`` inside ``async with
hub`` so every session is closed however the coroutine ends.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import difflib
import enum
import fnmatch
import os
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Final

import attrs

from .. import errors
from ..config import Accounts, AccountUnavailable, accounts_from_env, environment_variables
from ..config import load_accounts as load_file
from ..fleet import PartialFailure, RunnerHub
from ..hooks import Hooks
from ..provider import RunnerProvider
from ._output import Output

__all__ = [
    "DEFAULT_CONFIG",
    "Context",
    "ExitCode",
    "error_text",
    "exit_code_for",
    "lacking",
    "load_accounts",
    "locate",
    "not_found",
    "on_runner",
    "one_account",
    "resolve",
    "select",
    "with_hub",
]

DEFAULT_CONFIG: Final = "runnerhub.toml"
_GLOB: Final = frozenset("*?[")


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


def error_text(error: errors.RunnerHubError) -> str:
    """An error as the CLI prints it: one line, no Python syntax, the status once."""
    if isinstance(error, AccountUnavailable):
        return f"account {error.account} cannot be used: {error.message}"
    if isinstance(error, errors.APIError) and error.code == str(error.status):
        # A vendor body repeating the status as its code would print "HTTP 404 404".
        error = copy.copy(error)
        error.code = None
    return str(error)


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


def config_path(ctx: Context) -> str | None:
    """``--config``, else ``$RUNNERHUB_CONFIG``, else ``./runnerhub.toml`` if it exists."""
    path: str | None = ctx.args.config or ctx.environ.get("RUNNERHUB_CONFIG")
    if path:
        return path
    return DEFAULT_CONFIG if Path(DEFAULT_CONFIG).is_file() else None


def load_accounts(ctx: Context, *, hooks: Hooks | None = None) -> Accounts:
    """The accounts of the accounts file, else of the environment.

    ``hooks`` go to every provider (the monitor's request metrics).

    Raises:
        UsageError: for a bad accounts file, or when there is none and no
            vendor's credential variable is set.
    """
    path = config_path(ctx)
    if path:
        return load_file(path, environ=ctx.environ, hooks=hooks)
    accounts = accounts_from_env(ctx.environ, hooks=hooks)
    if not accounts.accounts:
        raise errors.UsageError(
            f"no accounts: write {DEFAULT_CONFIG} (or pass --config), or set the "
            f"variables of one vendor: {', '.join(environment_variables())} (see docs/cli.md)"
        )
    return accounts


def _unknown(name: str, known: Sequence[str]) -> errors.UsageError:
    close = difflib.get_close_matches(name, known, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return errors.UsageError(
        f"unknown account {name!r}{hint} (accounts: {', '.join(known) or 'none'})"
    )


def select(hub: RunnerHub, patterns: Iterable[str] | None) -> tuple[RunnerProvider, ...]:
    """The providers whose labels match ``patterns`` (names or shell globs); all if None.

    Raises:
        UsageError: for a name no account has, or a glob that matches none.
    """
    if patterns is None:
        return hub.providers
    known = [p.account for p in hub.providers]
    wanted: set[str] = set()
    for pattern in patterns:
        if _GLOB.intersection(pattern):
            matched = fnmatch.filter(known, pattern)
            if not matched:
                raise errors.UsageError(
                    f"no account matches {pattern!r} (accounts: {', '.join(known)})"
                )
            wanted.update(matched)
        elif pattern in known:
            wanted.add(pattern)
        else:
            raise _unknown(pattern, known)
    return tuple(p for p in hub.providers if p.account in wanted)


def one_account(hub: RunnerHub, ctx: Context) -> RunnerProvider:
    """The provider a command that creates acts on (``--account``, or the only one)."""
    labels: list[str] = ctx.args.account or []
    if len(labels) > 1:
        raise errors.UsageError("this command acts on one account: give --account once")
    if labels:
        chosen = select(hub, labels)
        if len(chosen) == 1:
            return chosen[0]
        names = ", ".join(p.account for p in chosen)
        raise errors.UsageError(f"--account {labels[0]!r} matches {names}: name one")
    if len(hub.providers) == 1:
        return hub.providers[0]
    names = ", ".join(p.account for p in hub.providers)
    raise errors.UsageError(f"{len(hub.providers)} accounts ({names}): choose one with --account")


def lacking(provider: RunnerProvider, command: str) -> errors.UnsupportedOperation:
    """The error of ``command`` on an account whose vendor does not offer it."""
    return errors.UnsupportedOperation(
        f"{command}: account {provider.account} ({provider.provider}) does not offer it"
    )


def with_hub(ctx: Context, body: Callable[[RunnerHub], Awaitable[int]]) -> int:
    """Run ``body`` on the hub of the accounts, closing it however ``body`` ends."""
    hub = load_accounts(ctx).hub()

    async def run() -> int:
        async with hub:
            return await body(hub)

    return asyncio.run(run())


# -- finding a runner -----------------------------------------------------------------------


async def locate(ctx: Context, hub: RunnerHub, ref: str) -> tuple[RunnerProvider, str]:
    """The account and id of ``ref``: ``ACCOUNT/ID``, or an id under ``--account``, or a
    bare id looked up in every account.

    Raises:
        UsageError: for an unknown account, or an id found in several accounts
            (the message lists them).
        RunnerHubError: when no account has the id (naming it and the accounts).
    """
    labels = [p.account for p in hub.providers]
    account, sep, rest = ref.partition("/")
    if sep and account in labels and rest:
        return hub.providers[labels.index(account)], rest
    chosen: Sequence[RunnerProvider] = select(hub, ctx.args.account or None)
    if len(chosen) == 1:
        return chosen[0], ref
    found, failed = await _search(chosen, ref)
    if len(found) == 1:
        return found[0], ref
    if found:
        matches = ", ".join(f"{p.account}/{ref}" for p in found)
        raise errors.UsageError(f"runner id {ref!r} is in several accounts: {matches}; name one")
    searched = ", ".join(p.account for p in chosen)
    detail = "".join(f"; {error_text(e)}" for e in failed)
    raise errors.RunnerHubError(f"no runner {ref!r} in any account ({searched}){detail}")


async def _search(
    providers: Sequence[RunnerProvider], runner_id: str
) -> tuple[list[RunnerProvider], list[errors.RunnerHubError]]:
    async def probe(provider: RunnerProvider) -> RunnerProvider | errors.RunnerHubError | None:
        try:
            await provider.get_runner(runner_id)
        except errors.NotFoundError:
            return None
        except errors.RunnerHubError as exc:
            return exc
        return provider

    results = await asyncio.gather(*(probe(p) for p in providers))
    found = [r for r in results if r is not None and not isinstance(r, errors.RunnerHubError)]
    failed = [r for r in results if isinstance(r, errors.RunnerHubError)]
    return found, failed


def not_found(
    error: errors.NotFoundError, provider: RunnerProvider, runner_id: str
) -> errors.RunnerHubError:
    """``error`` restated to name the runner and its account, the status once."""
    said = f": {error.message}" if error.message else ""
    trace = f", trace id {error.trace_id}" if error.trace_id else ""
    return errors.RunnerHubError(
        f"no runner {runner_id!r} in account {provider.account} (HTTP {error.status}{said}{trace})"
    )


def on_runner(
    ctx: Context, body: Callable[[RunnerProvider, str], Awaitable[int]], ref: str | None = None
) -> int:
    """Find the runner of ``ref`` (default: the ``ID`` argument), then run ``body`` on it.

    A 404 from ``body`` is restated to name the runner and its account.
    """
    wanted: str = ctx.args.runner_id if ref is None else ref

    async def run(hub: RunnerHub) -> int:
        provider, runner_id = await locate(ctx, hub, wanted)
        try:
            return await body(provider, runner_id)
        except errors.NotFoundError as exc:
            raise not_found(exc, provider, runner_id) from None

    return with_hub(ctx, run)


def resolve(ctx: Context) -> tuple[str, str]:
    """The account label and id of the ``ID`` argument, looked up before a prompt."""

    async def run(hub: RunnerHub) -> tuple[str, str]:
        provider, runner_id = await locate(ctx, hub, ctx.args.runner_id)
        return provider.account, runner_id

    hub = load_accounts(ctx).hub()

    async def closing() -> tuple[str, str]:
        async with hub:
            return await run(hub)

    return asyncio.run(closing())
