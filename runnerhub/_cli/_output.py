"""Writing results: JSON, NDJSON, CSV, tables and the inventory summary.

Results go to stdout and nothing else does; notes, warnings, errors, prompts
and progress go to stderr. Tables use rich when stdout is a terminal and rich
is installed (the ``[cli]`` extra), else plain columns separated by three
spaces, which read well in a terminal and survive ``grep``/``awk``.
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Final, TextIO

from ..fleet import Inventory
from ..models import Runner, RunnerStatus

__all__ = [
    "CSV_FIELDS",
    "RUNNER_HEADERS",
    "Output",
    "ago",
    "columns",
    "csv_row",
    "runner_row",
    "runner_version",
    "summary_lines",
    "truncate",
]

RUNNER_HEADERS: Final = (
    "ACCOUNT",
    "ID",
    "NAME",
    "KIND",
    "STATUS",
    "VERSION",
    "LAST SEEN",
    "DESCRIPTION",
)
CSV_FIELDS: Final = (
    "account",
    "provider",
    "id",
    "name",
    "kind",
    "status",
    "version",
    "last_seen",
    "description",
)
_DESCRIPTION_WIDTH: Final = 32
_NAMED_FAILURES: Final = 10
_VERSION_COMPONENTS: Final = ("runner", "agent", "generation")
_STATUS_STYLES: Final = {
    RunnerStatus.ONLINE.value: "green",
    RunnerStatus.DEGRADED.value: "yellow",
    RunnerStatus.OFFLINE.value: "red",
    RunnerStatus.UNKNOWN.value: "dim",
}


class Output:
    """The two streams of a command, looked up at write time (tests swap ``sys.stdout``)."""

    @property
    def stdout(self) -> TextIO:
        """Where results go."""
        return sys.stdout

    @property
    def stderr(self) -> TextIO:
        """Where everything else goes."""
        return sys.stderr

    def write(self, text: str) -> None:
        """Write ``text`` to stdout as is."""
        self.stdout.write(text)

    def line(self, text: str = "") -> None:
        """Write one line to stdout."""
        self.stdout.write(text + "\n")

    def json(self, data: Any) -> None:
        """Write ``data`` as indented JSON to stdout."""
        self.stdout.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")

    def ndjson(self, data: Any) -> None:
        """Write ``data`` as one compact JSON line to stdout."""
        self.stdout.write(json.dumps(data, ensure_ascii=False, separators=(",", ":")) + "\n")

    def flush(self) -> None:
        """Flush stdout (a pipe is block-buffered; ``sandbox`` and ``watch`` print as they go)."""
        self.stdout.flush()

    def note(self, text: str) -> None:
        """A human note on stderr."""
        self.stderr.write(text + "\n")
        self.stderr.flush()

    def warning(self, message: str) -> None:
        """``runnerhub: warning: <message>`` on stderr."""
        self.note(f"runnerhub: warning: {message}")

    def error(self, message: str) -> None:
        """``runnerhub: error: <message>`` on stderr, one line."""
        self.note(f"runnerhub: error: {' '.join(message.split())}")

    def table(
        self,
        headers: Sequence[str],
        rows: Iterable[Sequence[str]],
        *,
        status_column: int | None = None,
        headers_shown: bool = True,
    ) -> None:
        """A table on stdout: rich when stdout is a terminal and rich is installed."""
        table = [list(row) for row in rows]
        if self.stdout.isatty() and _rich_table(
            self.stdout, headers, table, status_column, headers_shown=headers_shown
        ):
            return
        lines = columns(headers, table)
        for text in lines if headers_shown else lines[1:]:
            self.line(text)

    def csv(
        self, fields: Sequence[str], rows: Iterable[Mapping[str, Any]], *, header: bool = True
    ) -> None:
        """A header line (unless ``header`` is false) and one line per row (RFC 4180)."""
        writer = csv.DictWriter(self.stdout, fieldnames=list(fields), lineterminator="\n")
        if header:
            writer.writeheader()
        writer.writerows(rows)


def columns(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """Plain aligned columns, three spaces apart, the last one unpadded."""
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=True)]
    lines = []
    for row in [headers, *rows]:
        padded = [cell.ljust(w) for cell, w in zip(row[:-1], widths, strict=False)]
        lines.append("   ".join([*padded, row[-1]]).rstrip())
    return lines


def _rich_table(
    stream: TextIO,
    headers: Sequence[str],
    rows: list[list[str]],
    status_column: int | None,
    *,
    headers_shown: bool = True,
) -> bool:
    try:
        from rich import box  # noqa: PLC0415 - rich is the optional [cli] extra
        from rich.console import Console  # noqa: PLC0415
        from rich.table import Table  # noqa: PLC0415
        from rich.text import Text  # noqa: PLC0415
    except ImportError:
        return False
    table = Table(
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        show_edge=False,
        header_style="bold",
        show_header=headers_shown,
    )
    for index, header in enumerate(headers):
        last = index == len(headers) - 1
        table.add_column(header, no_wrap=not last, overflow="ellipsis")
    for row in rows:
        # Text, not markup: a description may hold "[...]".
        cells = [Text(cell) for cell in row]
        if status_column is not None:
            cells[status_column].stylize(_STATUS_STYLES.get(row[status_column], ""))
        table.add_row(*cells)
    Console(file=stream, highlight=False).print(table)
    return True


def ago(when: datetime | None, now: datetime | None = None) -> str:
    """``"42s ago"``, ``"3m ago"``, ``"5h ago"``, ``"12d ago"``; ``"-"`` when unknown."""
    if when is None:
        return "-"
    seconds = ((now or datetime.now(UTC)) - when).total_seconds()
    if seconds < 0:
        return "just now"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit} ago"
    return f"{int(seconds)}s ago"


def truncate(text: str | None, width: int = _DESCRIPTION_WIDTH) -> str:
    """One line of at most ``width`` characters, ``…`` marking a cut."""
    flat = " ".join((text or "").split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def runner_version(runner: Runner) -> str:
    """The version a fleet owner means: ``runner``, else ``agent``, else ``generation``."""
    for component in _VERSION_COMPONENTS:
        if component in runner.versions:
            return runner.versions[component]
    return "-"


def runner_row(runner: Runner, now: datetime) -> list[str]:
    """The cells of one runner under :data:`RUNNER_HEADERS`."""
    return [
        runner.account,
        runner.id,
        runner.name,
        runner.kind.value,
        runner.status.value,
        runner_version(runner),
        ago(runner.last_seen, now),
        truncate(runner.description),
    ]


def csv_row(runner: Runner) -> dict[str, str]:
    """One runner under :data:`CSV_FIELDS`."""
    return {
        "account": runner.account,
        "provider": runner.provider,
        "id": runner.id,
        "name": runner.name,
        "kind": runner.kind.value,
        "status": runner.status.value,
        "version": "" if runner_version(runner) == "-" else runner_version(runner),
        "last_seen": runner.last_seen.isoformat() if runner.last_seen else "",
        "description": runner.description or "",
    }


def _counts(counts: Mapping[str, int]) -> str:
    if not counts:
        return "-"
    return "   ".join(f"{label} {count:,}" for label, count in counts.items())


def summary_lines(inventory: Inventory) -> list[str]:
    """The block printed under an inventory table: counts, offline, drift, failures."""
    summary = inventory.summary()
    statuses = {
        s.value: summary["statuses"][s.value]
        for s in RunnerStatus
        if s.value in summary["statuses"]
    }
    drifted = summary["version_drift"]
    newest = ", ".join(_headline_versions(inventory))
    failed = summary["failed_accounts"]
    rows = [
        ("accounts", _counts(summary["accounts"])),
        ("status", _counts(statuses)),
        ("kind", _counts(summary["kinds"])),
        ("offline", f"{summary['offline']:,}"),
        (
            "version drift",
            f"{drifted:,} runner(s) behind the newest ({newest})" if drifted else "none",
        ),
    ]
    failures = inventory.health_failures
    if failures:
        names = ", ".join(f"{f.account}/{f.runner_id}" for f in failures[:_NAMED_FAILURES])
        more = len(failures) - _NAMED_FAILURES
        rows.append(
            (
                "health",
                f"{len(failures):,} health check(s) failed ({names}"
                f"{f' and {more:,} more' if more > 0 else ''}); those runners show as unknown",
            )
        )
    rows.append(("failed accounts", ", ".join(sorted(failed)) if failed else "none"))
    accounts = len(inventory.accounts)
    head = (
        f"{summary['runners']:,} runner(s) in {accounts} account(s), "
        f"inventoried in {inventory.duration_seconds:.1f} s"
    )
    width = max(len(label) for label, _ in rows)
    return [head, *(f"  {label.ljust(width)}   {value}" for label, value in rows)]


def _headline_versions(inventory: Inventory) -> list[str]:
    # The newest of the component the VERSION column shows, per vendor.
    newest = inventory.newest_versions()
    shown = []
    for vendor in sorted({vendor for vendor, _ in newest}):
        for component in _VERSION_COMPONENTS:
            if (vendor, component) in newest:
                shown.append(f"{vendor} {component} {newest[(vendor, component)]}")
                break
    return shown
