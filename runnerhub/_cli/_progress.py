"""The progress display of an inventory, on stderr only.

On a terminal it appears once the inventory has taken more than a moment
(``delay``) and shows, per account, runners received, requests sent and
requests waiting on the rate limit; it is erased when the inventory ends, so
the table that follows starts clean. rich draws it when installed; otherwise
one line is rewritten in place. When stderr is not a terminal (and progress
was asked for with ``--progress``) each update is one plain line instead.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Sequence
from types import TracebackType
from typing import Final, Protocol, TextIO

import attrs

from ..fleet import AccountProgress
from ..provider import RunnerProvider, SupportsStats

__all__ = ["InventoryProgress"]

_SPINNER: Final = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"


@attrs.frozen
class _Row:
    account: str
    runners: int
    requests: int
    waiting: int
    done: bool
    failed: bool
    health_done: int = 0
    health_total: int = 0

    def state(self) -> str:
        if self.failed:
            return "failed"
        if self.done:
            return "done"
        if self.health_total:
            checked = f"health {self.health_done:,}/{self.health_total:,}"
            return f"{checked}, waiting on the rate limit" if self.waiting else checked
        if self.waiting:
            return f"waiting on the rate limit ({self.waiting})"
        return "fetching"


class _Renderer(Protocol):
    def draw(self, rows: Sequence[_Row], tick: int) -> None: ...

    def close(self) -> None: ...


class _RichRenderer:
    def __init__(self, stream: TextIO) -> None:
        from rich.console import Console  # noqa: PLC0415 - rich is the optional [cli] extra
        from rich.live import Live  # noqa: PLC0415

        # No refresh thread: the inventory's own loop redraws, so no state is shared.
        self._live = Live(console=Console(file=stream), transient=True, auto_refresh=False)
        self._live.start()

    def draw(self, rows: Sequence[_Row], tick: int) -> None:
        from rich.table import Table  # noqa: PLC0415
        from rich.text import Text  # noqa: PLC0415

        grid = Table.grid(padding=(0, 2))
        for justify in ("left", "left", "right", "right", "left"):
            grid.add_column(justify=justify)
        for row in rows:
            mark = "✓" if row.done and not row.failed else "✗" if row.failed else None
            spinner = _SPINNER[tick % len(_SPINNER)]
            style = "red" if row.failed else "yellow" if row.waiting else ""
            grid.add_row(
                Text(mark or spinner, style="green" if mark == "✓" else style),
                Text(row.account),
                Text(f"{row.runners:,} runners"),
                Text(f"{row.requests:,} requests"),
                Text(row.state(), style=style),
            )
        self._live.update(grid, refresh=True)

    def close(self) -> None:
        self._live.stop()


class _LineRenderer:
    """One line rewritten in place, for a terminal without rich."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def draw(self, rows: Sequence[_Row], tick: int) -> None:
        width = shutil.get_terminal_size().columns - 1
        text = " | ".join(
            f"{row.account} {row.runners:,} runners {row.requests:,} req"
            + ("" if row.state() == "fetching" else f" {row.state()}")
            for row in rows
        )
        spinner = _SPINNER[tick % len(_SPINNER)]
        self._stream.write(f"\r\x1b[K{spinner} {text}"[: width + 4])
        self._stream.flush()

    def close(self) -> None:
        self._stream.write("\r\x1b[K")
        self._stream.flush()


class InventoryProgress:
    """An ``AccountProgress`` callback that draws on ``stream`` while an inventory runs.

    Use as ``async with InventoryProgress(...) as progress:`` around
    ``hub.inventory(progress=progress)``.

    Args:
        providers: The accounts being fetched (their live ``stats`` are read).
        stream: stderr.
        delay: Seconds before a live display appears.
        interval: Seconds between redraws.
    """

    def __init__(
        self,
        providers: Sequence[RunnerProvider],
        stream: TextIO,
        *,
        delay: float = 0.4,
        interval: float = 0.1,
    ) -> None:
        self._providers = {p.account: p for p in providers}
        self._states = {p.account: AccountProgress(p.account, 0) for p in providers}
        self._stream = stream
        self._live = stream.isatty()
        self._delay = delay
        self._interval = interval
        self._task: asyncio.Task[None] | None = None

    def __call__(self, update: AccountProgress) -> None:
        self._states[update.account] = update
        if not self._live:
            row = self._row(update.account)
            detail = f": {update.error}" if update.error is not None else ""
            self._stream.write(
                f"runnerhub: progress: {row.account}: {row.runners:,} runners, "
                f"{row.requests:,} requests, {row.state()}{detail}\n"
            )
            self._stream.flush()

    def _row(self, account: str) -> _Row:
        state = self._states[account]
        provider = self._providers[account]
        stats = provider.stats if isinstance(provider, SupportsStats) else None
        return _Row(
            account=account,
            runners=state.runners,
            requests=stats.requests if stats is not None else state.requests,
            waiting=0 if state.done else stats.waiting if stats is not None else state.waiting,
            done=state.done,
            failed=state.error is not None,
            health_done=state.health_done,
            health_total=state.health_total,
        )

    async def _draw(self) -> None:
        await asyncio.sleep(self._delay)
        renderer: _Renderer
        try:
            renderer = _RichRenderer(self._stream)
        except ImportError:
            renderer = _LineRenderer(self._stream)
        tick = 0
        try:
            while True:
                renderer.draw([self._row(account) for account in self._states], tick)
                tick += 1
                await asyncio.sleep(self._interval)
        finally:
            renderer.close()

    async def __aenter__(self) -> InventoryProgress:
        if self._live and self._states:
            self._task = asyncio.create_task(self._draw(), name="runnerhub:progress")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
