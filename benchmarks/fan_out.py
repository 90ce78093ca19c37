"""Benchmark 4: fleet fan-out over 10 accounts that each answer after 50 ms.

``RunnerHub.inventory()`` over ten Soda accounts at once, against the slowest
of those accounts fetched alone, and against all ten fetched one after
another (the sum of the single-account times). A second, larger fleet shows
where the client's own CPU, not the latency, sets the fleet's time.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

import attrs

from runnerhub import RunnerHub, SodaProvider

from ._report import KEY_SECRET, Check, Section, at_most, median, table
from ._server import base_url, fast_server

TARGET = 1.2
LATENCY_MS = 50


@attrs.frozen
class Fleet:
    """Runners per account, and how many rounds to measure."""

    label: str
    sizes: tuple[int, ...]
    repetitions: int


# Accounts of 10 to 100 runners (one page each): the time is all latency.
SMALL = Fleet("10 accounts of 10-100 runners", tuple(range(10, 101, 10)), 7)
# Accounts of 400 to 4,000 runners (1 to 4 pages of 1,000): mapping ~22,000 runners
# takes the client ~0.1 s of CPU, which no amount of concurrency hides.
LARGE = Fleet("10 accounts of 400-4,000 runners", tuple(range(400, 4001, 400)), 3)
QUICK = Fleet("3 accounts of 10-30 runners", (10, 20, 30), 2)


def _providers(root: str, sizes: Sequence[int], latency_ms: int) -> list[SodaProvider]:
    return [
        SodaProvider(
            f"bench-key-{i}",
            KEY_SECRET,
            base_url=base_url(root, total=size, latency_ms=latency_ms),
            account=f"account-{i:02d}",
        )
        for i, size in enumerate(sizes)
    ]


async def _inventory(providers: Sequence[SodaProvider], expected: int) -> float:
    started = time.perf_counter()
    async with RunnerHub(providers) as hub:
        inventory = await hub.inventory()
    seconds = time.perf_counter() - started
    if len(inventory.runners) != expected or not inventory.complete:
        raise RuntimeError(f"inventory incomplete: {len(inventory.runners)} of {expected}")
    return seconds


async def _round(root: str, sizes: Sequence[int], latency_ms: int) -> tuple[list[float], float]:
    """One account at a time (each its own hub), then all at once; fresh connections each."""
    singles = []
    for provider, size in zip(_providers(root, sizes, latency_ms), sizes, strict=True):
        singles.append(await _inventory([provider], size))
    fleet = await _inventory(_providers(root, sizes, latency_ms), sum(sizes))
    return singles, fleet


@attrs.frozen
class Result:
    """Medians over the rounds, in seconds."""

    per_account: tuple[float, ...]
    slowest: float
    sequential: float
    fleet: float


def _measure(root: str, fleet: Fleet, latency_ms: int) -> Result:
    async def measure() -> list[tuple[list[float], float]]:
        await _round(root, fleet.sizes[:2], latency_ms)  # warm-up
        return [await _round(root, fleet.sizes, latency_ms) for _ in range(fleet.repetitions)]

    rounds = asyncio.run(measure())
    return Result(
        per_account=tuple(
            median([singles[i] for singles, _ in rounds]) for i in range(len(fleet.sizes))
        ),
        slowest=median([max(singles) for singles, _ in rounds]),
        sequential=median([sum(singles) for singles, _ in rounds]),
        fleet=median([total for _, total in rounds]),
    )


def run(quick: bool = False) -> Section:
    """Measure and report; ``quick`` uses three tiny accounts and 5 ms latency."""
    fleets, latency_ms = ((QUICK,), 5) if quick else ((SMALL, LARGE), LATENCY_MS)
    with fast_server() as root:
        results = {fleet: _measure(root, fleet, latency_ms) for fleet in fleets}
    main = fleets[0]
    result = results[main]
    ratio = result.fleet / result.slowest
    target, passed = at_most(ratio, TARGET)
    checks = [
        Check(
            f"{main.label}, {latency_ms} ms per request",
            f"slowest account alone: {result.slowest * 1000:.0f} ms",
            f"{result.fleet * 1000:.0f} ms",
            ratio,
            target,
            passed,
        )
    ]
    summary = [
        [
            fleet.label,
            f"{sum(fleet.sizes):,}",
            f"{r.slowest * 1000:.0f}",
            f"{r.sequential * 1000:.0f} ({r.sequential / r.slowest:.2f}x)",
            f"{r.fleet * 1000:.0f} ({r.fleet / r.slowest:.2f}x)",
            "target" if fleet is main else "shown, no target (CPU-bound)",
        ]
        for fleet, r in results.items()
    ]
    accounts = [
        [f"account-{i:02d}"]
        + [
            f"{fleet.sizes[i]:,} / {r.per_account[i] * 1000:.0f} ms"
            for fleet, r in results.items()
        ]
        for i in range(len(main.sizes))
    ]
    details = (
        table(
            [
                "fleet",
                "runners",
                "slowest account alone, ms",
                "one after another, ms",
                "RunnerHub.inventory(), ms",
                "",
            ],
            summary,
        ),
        table(
            ["account"] + [f"{fleet.label}: runners / alone" for fleet in results], accounts
        ),
        "In the larger fleet every account's first page arrives at the same moment and the "
        "client maps them one after another (~5 µs per runner kept in an inventory): that "
        "CPU, about 0.1 s for 22,000 runners, is what the fleet adds to its slowest account. "
        "Concurrency hides latency, not the work of a single-threaded client.",
    )
    method = f"""
Soda accounts on the benchmark server, each with its own credential and session, answering
every request after {latency_ms} ms; `RunnerHub.inventory()` lists with Soda's maximum page
of 1,000. Each round fetches every account alone through its own `RunnerHub`, one after
another (their sum is the sequential baseline, their maximum the slowest account), then all
of them through one `RunnerHub.inventory()`; fresh connections every time. Medians over
{main.repetitions} rounds ({LARGE.repetitions} for the larger fleet).
"""
    return Section(
        name="fan_out",
        title="Fleet fan-out",
        method=method,
        checks=tuple(checks),
        details=details,
        numbers={
            "slowest": result.slowest,
            "sequential": result.sequential,
            "fleet": result.fleet,
        },
    )
