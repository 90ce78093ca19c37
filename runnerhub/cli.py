# PYTHON_ARGCOMPLETE_OK
"""The ``runnerhub`` command: the library's fleet operations from a shell.

Entry point of the console script and of ``python -m runnerhub``; see
``docs/cli.md``. Global options go before or after the command
(``runnerhub --config a.toml ls`` and ``runnerhub ls --config a.toml`` are the
same). Results go to stdout; errors, warnings, prompts and progress to stderr.
An error is one line, ``runnerhub: error: <message>``, never a traceback and
never a credential.

Completion (commands, flags, account labels) comes from argcomplete:
``eval "$(register-python-argcomplete runnerhub)"``. A mistyped command,
choice, flag or account gets a "did you mean" from :mod:`difflib`.
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import logging
import os
import re
import sys
import tomllib
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, Final, NoReturn

from . import __version__, errors
from ._cli._output import CSV_FIELDS
from .vendors import vendor_names

__all__ = ["main"]

_EPILOG = """\
exit codes:
  0    success (health checks that failed are reported, not fatal)
  1    partial: some accounts failed, the others were listed
  2    usage: bad arguments or accounts file, unknown account, operation the vendor lacks
  3    authentication or permission refused (for ls: by every account)
  4    any other error (not found, server, network, ...)
  130  interrupted (Ctrl-C); watch and sandbox exit 0 when stopped that way

accounts:
  --config PATH, else $RUNNERHUB_CONFIG, else ./runnerhub.toml; without a file,
  each vendor's credential variables (e.g. SODA_API_KEY_ID + SODA_API_KEY_SECRET,
  KUBIYA_API_KEY). "runnerhub accounts" shows what is configured.

examples:
  runnerhub demo
  runnerhub ls --status offline -o json | jq '.runners[].id'
  runnerhub ls -o ndjson | jq -r 'select(.kind == "self_hosted") | .name'
  runnerhub health kubiya-prod/edge-1
"""

_INVENTORY_FORMATS = ("table", "json", "ndjson", "csv")
_RECORD_FORMATS = ("table", "json")
_INVALID_CHOICE: Final = re.compile(
    r"invalid choice: '?(?P<value>[^']*)'? \(choose from (?P<choices>.*)\)"
)
_UNRECOGNIZED: Final = re.compile(r"unrecognized arguments: (?P<args>.*)")
# Stopping these with Ctrl-C is how they are meant to end.
_STOPPED_BY_INTERRUPT = frozenset({"watch", "sandbox"})


class _ArgumentError(Exception):
    """An argparse complaint, turned into one line by :func:`main`."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise _ArgumentError(f"{message}{_suggestion(self, message)} (see '{self.prog} --help')")


def _option_strings(parser: argparse.ArgumentParser) -> set[str]:
    found: set[str] = set()
    # argparse has no public walk of its actions and subparsers.
    for action in parser._actions:
        found.update(s for s in action.option_strings if s.startswith("--"))
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                found |= _option_strings(sub)
    return found


def _suggestion(parser: argparse.ArgumentParser, message: str) -> str:
    """``"; did you mean 'ls'?"`` for a mistyped command, choice or flag, else ``""``."""
    candidates: Iterable[str] = ()
    wrong = ""
    if match := _INVALID_CHOICE.search(message):
        wrong = match["value"]
        candidates = [c.strip(" '") for c in match["choices"].split(",")]
    elif match := _UNRECOGNIZED.search(message):
        wrong = next((a for a in match["args"].split() if a.startswith("--")), "")
        wrong = wrong.partition("=")[0]
        candidates = _option_strings(parser) if wrong else ()
    close = difflib.get_close_matches(wrong, list(candidates), n=1) if wrong else []
    return f"; did you mean {close[0]!r}?" if close else ""


def _account_labels(prefix: str, parsed_args: argparse.Namespace, **_: Any) -> list[str]:
    """Completion of ``--account``: the labels of the accounts file, read without secrets."""
    path = getattr(parsed_args, "config", None) or os.environ.get("RUNNERHUB_CONFIG")
    path = path or "runnerhub.toml"
    try:
        with Path(path).open("rb") as handle:
            accounts = tomllib.load(handle).get("accounts", {})
    except (OSError, tomllib.TOMLDecodeError):
        return []
    return [label for label in accounts if label.startswith(prefix)]


def _non_negative(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def _global_options(parser: argparse.ArgumentParser, *, top: bool) -> None:
    # Declared on the main parser with real defaults and again on every command
    # with SUPPRESS defaults, so they may come before or after the command.
    def default(value: object) -> object:
        return value if top else argparse.SUPPRESS

    group = parser.add_argument_group("global options")
    group.add_argument(
        "--config",
        metavar="PATH",
        default=default(None),
        help="accounts file (default: $RUNNERHUB_CONFIG, else ./runnerhub.toml)",
    )
    account = group.add_argument(
        "--account",
        metavar="LABEL",
        action="append",
        default=default(None),
        help="account to act on (a label or a glob like 'prod-*'); repeat for ls and watch",
    )
    account.completer = _account_labels  # type: ignore[attr-defined]  # read by argcomplete
    group.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        default=default(False),
        help="log requests and retries to stderr (never credentials)",
    )
    group.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=default(None),
        help="progress display on stderr (default: only when stderr is a terminal)",
    )


def _output(parser: argparse.ArgumentParser, formats: Sequence[str]) -> None:
    parser.add_argument(
        "-o",
        "--output",
        choices=formats,
        default=formats[0],
        help=f"output format (default: {formats[0]})",
    )


_Command = Callable[[str, str], argparse.ArgumentParser]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``runnerhub`` and its commands."""
    parser = _Parser(
        prog="runnerhub",
        description=f"Inventory and manage the runners of {', '.join(vendor_names())} accounts.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"runnerhub {__version__}")
    _global_options(parser, top=True)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(
            name,
            help=help_text,
            description=help_text,
            epilog=_EPILOG,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        _global_options(sub, top=False)
        return sub

    _account_commands(command)
    _fleet_commands(command)
    _runner_commands(command)
    _watch_command(command)
    _sandbox_commands(command)
    from ._cli._serve import add_commands  # noqa: PLC0415 - the CLI's insides load on use

    add_commands(command, commands)  # serve, demo --serve: they set args.run
    return parser


def _account_commands(command: _Command) -> None:
    accounts = command("accounts", "list the configured accounts and where their secrets come from")
    accounts.add_argument(
        "--check", action="store_true", help="verify each credential with one cheap request"
    )
    _output(accounts, _RECORD_FORMATS)


def _fleet_commands(command: _Command) -> None:
    ls = command("ls", "list the runners of every account (concurrently)")
    ls.add_argument(
        "--provider", action="append", choices=vendor_names(), help="only this vendor (repeatable)"
    )
    ls.add_argument(
        "--name",
        action="append",
        metavar="GLOB",
        help="only runners whose name matches (repeatable)",
    )
    ls.add_argument(
        "--offline-for",
        metavar="DURATION",
        help="only runners not seen for at least this long, e.g. 30m, 2h, 1d",
    )
    ls.add_argument(
        "--sort",
        choices=CSV_FIELDS,
        metavar="FIELD",
        help=f"sort by one of: {', '.join(CSV_FIELDS)}",
    )
    ls.add_argument(
        "--columns", metavar="A,B,...", help="only these columns, in this order (table, csv, json)"
    )
    ls.add_argument("--no-headers", action="store_true", help="no header line (table and csv)")
    ls.add_argument(
        "--status",
        action="append",
        choices=("online", "degraded", "offline", "unknown"),
        help="only runners with this status (repeatable)",
    )
    ls.add_argument(
        "--kind",
        action="append",
        choices=("self_hosted", "managed", "unknown"),
        help="only runners of this kind (repeatable)",
    )
    ls.add_argument(
        "--health", action="store_true", help="ask each runner's health check for its status"
    )
    _output(ls, _INVENTORY_FORMATS)


def _runner_commands(command: _Command) -> None:
    def runner_command(name: str, help_text: str) -> argparse.ArgumentParser:
        sub = command(name, help_text)
        sub.add_argument(
            "runner_id",
            metavar="ID",
            help="ACCOUNT/ID, or an id looked up in every account (a name, where runners have one)",
        )
        return sub

    _output(runner_command("get", "show one runner"), _RECORD_FORMATS)
    _output(
        runner_command("describe", "show every field, version and health check of a runner"),
        _RECORD_FORMATS,
    )
    _output(runner_command("health", "show a runner's health and its checks"), _RECORD_FORMATS)

    create = command("create", "create a runner (a one-time secret, if any, is printed once)")
    create.add_argument(
        "name", metavar="NAME", nargs="?", help="runner name, for vendors that name runners"
    )
    _output(create, _RECORD_FORMATS)

    delete = runner_command("delete", "delete a runner (asks first unless --yes)")
    delete.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation")
    _output(delete, _RECORD_FORMATS)

    describe = runner_command("set-description", "set a runner's description")
    describe.add_argument("text", metavar="TEXT", help="the new description")
    _output(describe, _RECORD_FORMATS)

    runner_command("manifest", "print a runner's deployment manifest (YAML, as sent)")

    helm = runner_command("helm-values", "print a runner's Helm values (JSON, secrets masked)")
    helm.add_argument(
        "--show-secrets", action="store_true", help="print credentials instead of **********"
    )

    op = runner_command("op", "run a vendor operation on a runner, e.g. restart")
    op.add_argument("operation", metavar="OPERATION", help="e.g. restart, stop, start")
    op.add_argument(
        "--param",
        metavar="KEY=VALUE",
        action="append",
        help="operation parameter; VALUE is read as JSON if it parses, else as text",
    )


def _watch_command(command: _Command) -> None:
    watch = command("watch", "print fleet changes as they happen, until Ctrl-C")
    watch.add_argument(
        "--interval", type=float, default=60.0, metavar="S", help="seconds between inventories"
    )
    watch.add_argument("--health", action="store_true", help="use each runner's health check")
    watch.add_argument(
        "--changes-only", action="store_true", help="do not report the first snapshot as added"
    )
    watch.add_argument(
        "--max-events",
        type=_non_negative,
        default=0,
        metavar="N",
        help="stop after N events (default 0: never)",
    )
    _output(watch, ("text", "ndjson"))


def _sandbox_commands(command: _Command) -> None:
    sandbox = command("sandbox", "serve the vendor emulator for testing your own code")
    sandbox.add_argument("--host", default="127.0.0.1", help="address (default: 127.0.0.1)")
    sandbox.add_argument("--port", type=int, default=8080, help="port (default: 8080; 0: any)")
    sandbox.add_argument("--seed", type=int, default=0, help="seed of credentials and runners")
    sandbox.add_argument(
        "--time-scale",
        type=float,
        default=1.0,
        metavar="X",
        help="run rate-limit windows X times faster than the vendors' (default: 1)",
    )
    sandbox.add_argument(
        "--write-config",
        metavar="FILE",
        help="write the accounts file to FILE and its secrets to FILE.env (mode 0600)",
    )
    fleet = sandbox.add_mutually_exclusive_group()
    fleet.add_argument(
        "--demo-fleet",
        dest="demo_fleet",
        action="store_true",
        default=True,
        help="seed each vendor's demo accounts with runners (default)",
    )
    fleet.add_argument(
        "--empty",
        dest="demo_fleet",
        action="store_false",
        help="the same orgs and credentials, with no runners",
    )

    demo = command("demo", "inventory a seeded demo fleet on the embedded sandbox")
    demo.add_argument("--seed", type=int, default=0, help="seed of the demo fleet")
    _output(demo, _INVENTORY_FORMATS)


def _log_to_stderr(verbose: bool) -> Callable[[], None]:
    # Without -v a NullHandler keeps the library's warnings (already reported as
    # one-line errors) from reaching logging's last-resort handler.
    logger = logging.getLogger("runnerhub")
    handler: logging.Handler
    if verbose:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("runnerhub: %(levelname)s: %(message)s"))
    else:
        handler = logging.NullHandler()
    level = logger.level
    logger.addHandler(handler)
    if verbose:
        logger.setLevel(logging.DEBUG)

    def restore() -> None:
        logger.removeHandler(handler)
        logger.setLevel(level)

    return restore


def _silence_stdout() -> None:
    # The reader went away (``| head``): stop Python's exit-time flush from complaining.
    with contextlib.suppress(OSError, ValueError, AttributeError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``runnerhub`` command line and return its exit code.

    Args:
        argv: Arguments without the program name (default ``sys.argv[1:]``).
    """
    from ._cli._commands import (  # noqa: PLC0415 - the commands load only when one runs
        COMMANDS,
        Context,
        ExitCode,
        error_text,
        exit_code_for,
    )

    parser = build_parser()
    if "_ARGCOMPLETE" in os.environ:  # the shell is asking for completions
        import argcomplete  # noqa: PLC0415 - optional ([cli] extra), only when completing

        argcomplete.autocomplete(parser)
    ctx = Context(argparse.Namespace())
    try:
        args = parser.parse_args(argv)
    except _ArgumentError as exc:
        ctx.out.error(str(exc))
        return int(ExitCode.USAGE)
    except SystemExit as exc:  # --help and --version
        return exc.code if isinstance(exc.code, int) else int(ExitCode.USAGE)
    ctx.args = args
    restore = _log_to_stderr(args.verbose)
    try:
        return int((getattr(args, "run", None) or COMMANDS[args.command])(ctx))
    except errors.RunnerHubError as exc:
        ctx.out.error(error_text(exc))
        return int(exit_code_for(exc))
    except KeyboardInterrupt:
        if args.command in _STOPPED_BY_INTERRUPT:
            return int(ExitCode.OK)
        return int(ExitCode.INTERRUPTED)
    except BrokenPipeError:
        _silence_stdout()
        return int(ExitCode.BROKEN_PIPE)
    except Exception as exc:
        # A bug, not an expected failure: its message could hold anything, so only
        # the type is shown; -v logs the traceback.
        logging.getLogger("runnerhub").debug("unexpected error", exc_info=True)
        ctx.out.error(f"unexpected {type(exc).__name__}; run with -v for details")
        return int(ExitCode.ERROR)
    finally:
        restore()
