"""``runnerhub serve`` and ``runnerhub demo --serve``: the fleet monitor behind HTTP.

Registered by :func:`add_commands`; each command sets ``args.run`` to its
function, which ``runnerhub.cli.main`` calls. aiohttp.web, prometheus_client
and the monitor are imported only when one of these commands runs.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import signal
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final

from .. import errors

if TYPE_CHECKING:
    from ..monitor import MonitorMetrics
    from ..provider import RunnerProvider
    from ._common import Context

__all__ = ["add_commands", "cmd_demo_serve", "cmd_serve", "parse_listen"]

DEFAULT_LISTEN: Final = "127.0.0.1:9464"
_STOP_SIGNALS: Final = (signal.SIGTERM, signal.SIGINT)


def parse_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:9464`` for IPv6) as ``(host, port)``.

    Raises:
        UsageError: when it is not of that form.
    """
    host, sep, port = text.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) < 65536:
        raise errors.UsageError(f"--listen wants HOST:PORT, e.g. {DEFAULT_LISTEN}; got {text!r}")
    return host, int(port)


def _monitor_options(parser: argparse._ActionsContainer) -> None:
    parser.add_argument(
        "--listen",
        default=DEFAULT_LISTEN,
        metavar="HOST:PORT",
        help=f"address of /metrics and the status page (default: {DEFAULT_LISTEN}; port 0: any)",
    )
    parser.add_argument(
        "--interval",
        type=float,
        default=60.0,
        metavar="S",
        help="seconds between refreshes of each account, budget permitting (default: 60)",
    )
    parser.add_argument(
        "--budget-share",
        type=float,
        default=0.5,
        metavar="F",
        help="fraction of each vendor rate limit the monitor may use (default: 0.5)",
    )
    parser.add_argument(
        "--per-runner",
        action="store_true",
        help="also export runnerhub_runner_up, one series per runner",
    )
    parser.add_argument(
        "--no-health", action="store_true", help="do not call runners' health checks"
    )


class _ServeDemo(argparse.Action):
    # ``demo --serve``: the flag switches the command's function.
    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        namespace.serve = True
        namespace.run = cmd_demo_serve


def add_commands(
    command: Callable[[str, str], argparse.ArgumentParser],
    commands: argparse._SubParsersAction[Any],
) -> None:
    """Add ``serve`` and the ``--serve`` options of ``demo`` to the parser."""
    serve = command("serve", "monitor every account: Prometheus /metrics and a status page")
    _monitor_options(serve)
    serve.set_defaults(run=cmd_serve)
    demo = commands.choices["demo"]
    group = demo.add_argument_group("monitor (with --serve)")
    group.add_argument(
        "--serve",
        nargs=0,
        action=_ServeDemo,
        default=False,
        help="run the monitor on the demo fleet until Ctrl-C instead of listing it once",
    )
    _monitor_options(group)


def _check(args: argparse.Namespace) -> tuple[str, int]:
    if not args.interval > 0:
        raise errors.UsageError("--interval must be > 0 seconds")
    if not 0 < args.budget_share <= 1:
        raise errors.UsageError("--budget-share must be in (0, 1]")
    return parse_listen(args.listen)


def _monitor_package() -> Any:
    # runnerhub.monitor needs prometheus_client (the serve extra); say so rather than crash.
    from .. import monitor  # noqa: PLC0415 - only for these commands

    try:
        # The parts that need the extra load on first use: load them here.
        importlib.import_module(f"{monitor.__name__}._app")
    except ImportError as exc:
        raise errors.UsageError(
            f"this command needs the serve extra ({exc.name} is missing): "
            "pip install 'runnerhub[serve]'"
        ) from None
    return monitor


def _on_stop(callback: Callable[[], None]) -> None:
    # SIGTERM and Ctrl-C stop the monitor the same way; only possible in the main thread.
    loop = asyncio.get_running_loop()
    for signum in _STOP_SIGNALS:
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(signum, callback)


async def _serve(
    ctx: Context,
    providers: Sequence[RunnerProvider],
    address: tuple[str, int],
    *,
    metrics: MonitorMetrics,
    limits: Mapping[str, Any] | None = None,
    banner: str = "",
) -> int:
    monitoring = _monitor_package()
    args = ctx.args
    monitor = monitoring.FleetMonitor(
        providers,
        metrics=metrics,
        interval=args.interval,
        budget_share=args.budget_share,
        per_runner=args.per_runner,
        health=not args.no_health,
        limits=limits,
    )
    _on_stop(monitor.stop)
    host, port = address
    try:
        async with monitoring.serve(monitor, host, port) as url:
            if banner:
                ctx.out.line(banner)
            ctx.out.line(
                f"runnerhub monitor serving at {url}/ ({len(providers)} accounts, every "
                f"{args.interval:g} s, budget share {args.budget_share:g}); metrics at "
                f"{url}/metrics. Ctrl-C stops it."
            )
            ctx.out.flush()
            await monitor.run()
    except OSError as exc:
        raise errors.RunnerHubError(
            f"cannot serve on {args.listen}: {exc.strerror or exc}"
        ) from None
    return 0


def cmd_serve(ctx: Context) -> int:
    """Monitor the accounts of the accounts file until SIGTERM or Ctrl-C (exit 0)."""
    from ._common import load_accounts, select  # noqa: PLC0415 - loads the vendors when run

    address = _check(ctx.args)
    # The exporter exists before the providers so that they can report requests to it.
    metrics = _monitor_package().MonitorMetrics()
    hub = load_accounts(ctx, hooks=metrics).hub()

    async def run() -> int:
        async with hub:
            chosen = select(hub, ctx.args.account or None)
            return await _serve(ctx, chosen, address, metrics=metrics)

    return asyncio.run(run())


def cmd_demo_serve(ctx: Context) -> int:
    """The monitor on the demo fleet of the embedded sandbox, until SIGTERM or Ctrl-C."""
    from ..fleet import RunnerHub  # noqa: PLC0415 - as the other commands, on demand
    from ..sandbox import Sandbox  # noqa: PLC0415 - aiohttp.web only for this command
    from ..vendors import provider_class  # noqa: PLC0415 - likewise
    from ._sandbox import DEMO_TIME_SCALE, demo_providers, scaled_limits  # noqa: PLC0415

    address = _check(ctx.args)
    metrics = _monitor_package().MonitorMetrics()
    sandbox = Sandbox.demo(ctx.args.seed, time_scale=DEMO_TIME_SCALE)

    async def run() -> int:
        async with sandbox.serve():
            providers = demo_providers(sandbox, hooks=metrics)
            limits = {
                p.account: scaled_limits(provider_class(p.provider).default_limits, DEMO_TIME_SCALE)
                for p in providers
            }
            async with RunnerHub(providers) as hub:
                return await _serve(
                    ctx,
                    hub.providers,
                    address,
                    metrics=metrics,
                    limits=limits,
                    banner=(
                        f"Demo fleet on the embedded sandbox (seed {ctx.args.seed}, rate limits "
                        f"at {DEMO_TIME_SCALE:g}x vendor speed)."
                    ),
                )

    return asyncio.run(run())
