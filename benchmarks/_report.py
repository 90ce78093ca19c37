"""What a benchmark returns, how repetitions are run, and how RESULTS.md is written."""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime
from importlib import metadata

import attrs

# The credential every benchmark client presents; the fast server does not check it.
KEY_ID = "bench-key"
KEY_SECRET = "bench-secret"  # noqa: S105 - a fake credential for a local server

PACKAGES = (
    "runnerhub",
    "aiohttp",
    "attrs",
    "cattrs",
    "orjson",
    "aiolimiter",
    "backoff",
    "httpx",
    "pydantic",
    "matplotlib",
)


@attrs.frozen
class Check:
    """One target: what runnerhub measured against its baseline, and whether it passes.

    Attributes:
        case: What was measured, e.g. ``"concurrency 16"``.
        baseline: The baseline's figure, as text with units.
        runnerhub: runnerhub's figure, as text with units.
        ratio: The number the target bounds.
        target: The target as text, e.g. ``"≤ 1.60x"``.
        passed: Whether ``ratio`` meets it.
    """

    case: str
    baseline: str
    runnerhub: str
    ratio: float
    target: str
    passed: bool


@attrs.frozen
class Section:
    """One benchmark's results.

    Attributes:
        name: Module name, e.g. ``"bulk_listing"``.
        title: Heading in RESULTS.md.
        method: What was measured and how (markdown).
        checks: The targets.
        details: Further markdown (tables of every client, notes).
        numbers: Raw figures by name, for tests and plots.
    """

    name: str
    title: str
    method: str
    checks: tuple[Check, ...]
    details: tuple[str, ...] = ()
    numbers: Mapping[str, float] = attrs.field(factory=dict)


def at_most(ratio: float, bound: float) -> tuple[str, bool]:
    """The target text and verdict for ``ratio ≤ bound``."""
    return f"≤ {bound:.2f}x", ratio <= bound


def at_least(ratio: float, bound: float) -> tuple[str, bool]:
    """The target text and verdict for ``ratio ≥ bound``."""
    return f"≥ {bound:.2f}x", ratio >= bound


def median(values: Sequence[float]) -> float:
    """The median of a non-empty sequence."""
    return statistics.median(values)


def paired_ratio(numerators: Sequence[float], denominators: Sequence[float]) -> float:
    """The median of round-by-round ratios.

    The two measurements of one round ran back to back, so each ratio sees the
    same machine; the median then drops rounds that another process disturbed.
    """
    return median([n / d for n, d in zip(numerators, denominators, strict=True)])


async def interleaved(
    cases: Mapping[str, Callable[[], Awaitable[float]]], repetitions: int
) -> dict[str, list[float]]:
    """Run each case ``repetitions`` times, rotating the order every round.

    Each case returns its own measurement (seconds, usually). Rotating cancels
    slow drifts of the machine (frequency, other load) between cases.
    """
    names = list(cases)
    results: dict[str, list[float]] = {name: [] for name in names}
    for round_ in range(repetitions):
        shift = round_ % len(names)
        for name in names[shift:] + names[:shift]:
            results[name].append(await cases[name]())
    return results


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def checks_table(
    checks: Sequence[Check], *, with_section: Mapping[Check, str] | None = None
) -> str:
    """The targets as a markdown table (optionally led by the benchmark's name)."""
    header = ["case", "baseline", "runnerhub", "ratio", "target", "result"]
    rows = []
    for check in checks:
        row = [
            check.case,
            check.baseline,
            check.runnerhub,
            f"{check.ratio:.2f}",
            check.target,
            "pass" if check.passed else "**FAIL**",
        ]
        if with_section is not None:
            row.insert(0, with_section[check])
        rows.append(row)
    if with_section is not None:
        header.insert(0, "benchmark")
    return table(header, rows)


def cpu_model() -> str:
    """The CPU model name (Linux), else the platform's processor string."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def versions() -> dict[str, str]:
    """Installed versions of the packages the benchmarks touch ("-" when absent)."""
    found = {}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "-"
    return found


def machine() -> str:
    """One paragraph naming the machine, OS, Python and package versions."""
    packages = ", ".join(f"{name} {version}" for name, version in versions().items())
    return (
        f"{cpu_model()}, {os.cpu_count()} logical CPUs; {platform.system()} "
        f"{platform.release()}; Python {platform.python_version()} "
        f"({platform.python_implementation()}). Packages: {packages}."
    )


def render(sections: Sequence[Section], *, elapsed: float, plot: str | None) -> str:
    """RESULTS.md for ``sections``."""
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    all_checks = [check for section in sections for check in section.checks]
    owner = {check: section.title for section in sections for check in section.checks}
    passed = sum(check.passed for check in all_checks)
    parts = [
        "# runnerhub benchmarks",
        "",
        f"Written by `nox -s bench` (`python -m benchmarks`) on {now}; the run took "
        f"{elapsed:.0f} s. Every ratio below was measured in that same run, baseline and "
        "runnerhub interleaved; figures are medians of the repetitions. Servers run in "
        "their own process on 127.0.0.1, so the client's CPU is measured alone.",
        "",
        f"**Machine**: {machine()}",
        "",
        f"## Summary: {passed} of {len(all_checks)} targets met",
        "",
        checks_table(all_checks, with_section=owner),
    ]
    if plot is not None:
        parts += ["", f"Rate-limit plot: [{plot}]({plot})"]
    for number, section in enumerate(sections, 1):
        parts += ["", f"## {number}. {section.title}", "", section.method.strip(), ""]
        parts.append(checks_table(section.checks))
        for detail in section.details:
            parts += ["", detail.strip()]
    return "\n".join(parts) + "\n"


class Stopwatch:
    """Wall and process-CPU time of a block: ``with Stopwatch() as sw: ...; sw.wall``."""

    wall: float
    cpu: float

    def __enter__(self) -> Stopwatch:
        self._wall = time.perf_counter()
        self._cpu = time.process_time()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.wall = time.perf_counter() - self._wall
        self.cpu = time.process_time() - self._cpu
