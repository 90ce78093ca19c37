"""Benchmark 1: list 100,000 Soda runners (100 pages of 1,000) into objects.

runnerhub ``list_runners()`` into ``Runner`` objects against raw aiohttp +
``json`` into dicts (the target's baseline), raw aiohttp + orjson (for
reference: runnerhub parses with orjson when installed), and httpx + pydantic
v2 models (``model_validate_json``), the client a user would write by hand.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Awaitable, Callable

import orjson

from runnerhub import SodaProvider

from . import _baselines
from ._report import (
    KEY_ID,
    KEY_SECRET,
    Check,
    Section,
    Stopwatch,
    at_most,
    interleaved,
    median,
    paired_ratio,
    table,
)
from ._server import base_url, fast_server

TARGET = 1.6
PAGE_SIZE = 1000


async def _runnerhub(url: str) -> int:
    count = 0
    async with SodaProvider(
        KEY_ID, KEY_SECRET, base_url=url, rate_limits={"list_runners": None}
    ) as soda:
        async for _runner in soda.list_runners(page_size=PAGE_SIZE):
            count += 1
    return count


async def _measure(total: int, repetitions: int) -> tuple[dict[str, list[float]], dict[str, float]]:
    cpu: dict[str, list[float]] = {}
    with fast_server() as root:
        url = base_url(root, total=total)
        clients: dict[str, Callable[[], Awaitable[int]]] = {
            "raw aiohttp + json": lambda: _baselines.aiohttp_listing(url, PAGE_SIZE),
            "raw aiohttp + orjson": lambda: _baselines.aiohttp_listing(
                url, PAGE_SIZE, orjson.loads
            ),
            "runnerhub": lambda: _runnerhub(url),
        }
        by_hand = _baselines.httpx_pydantic()
        if by_hand is not None:
            clients["httpx + pydantic"] = lambda: by_hand(url, PAGE_SIZE)

        def timed(
            name: str, client: Callable[[], Awaitable[int]]
        ) -> Callable[[], Awaitable[float]]:
            async def run() -> float:
                gc.collect()
                with Stopwatch() as watch:
                    count = await client()
                if count != total:
                    raise RuntimeError(f"{name} listed {count} runners, expected {total}")
                cpu.setdefault(name, []).append(watch.cpu)
                return watch.wall

            return run

        for name, client in clients.items():  # warm-up: connections, caches, code paths
            await timed(name, client)()
        cpu.clear()
        walls = await interleaved(
            {name: timed(name, client) for name, client in clients.items()}, repetitions
        )
    return walls, {name: median(values) for name, values in cpu.items()}


def run(quick: bool = False) -> Section:
    """Measure and report; ``quick`` lists 3,000 runners twice instead of 100,000 nine times."""
    total, repetitions = (3_000, 2) if quick else (100_000, 9)
    walls, cpu = asyncio.run(_measure(total, repetitions))
    wall = {name: median(values) for name, values in walls.items()}
    per_runner = {name: seconds / total * 1e6 for name, seconds in wall.items()}
    raw = "raw aiohttp + json"
    ratio = paired_ratio(walls["runnerhub"], walls[raw])
    target, passed = at_most(ratio, TARGET)
    checks = [
        Check(
            f"{total:,} runners, pages of {PAGE_SIZE:,}",
            f"{raw}: {per_runner[raw]:.2f} µs/runner",
            f"{per_runner['runnerhub']:.2f} µs/runner",
            ratio,
            target,
            passed,
        )
    ]
    hand = "httpx + pydantic"
    if hand in wall:
        ratio = paired_ratio(walls["runnerhub"], walls[hand])
        target, passed = at_most(ratio, 1.0)
        checks.append(
            Check(
                "same, against the client a user would write",
                f"{hand}: {per_runner[hand]:.2f} µs/runner",
                f"{per_runner['runnerhub']:.2f} µs/runner",
                ratio,
                target,
                passed,
            )
        )
    rows = [
        [
            name,
            f"{wall[name] * 1000:.0f}",
            f"{per_runner[name]:.2f}",
            f"{cpu[name] / total * 1e6:.2f}",
            f"{paired_ratio(walls[name], walls[raw]):.2f}",
            f"{min(walls[name]) * 1000:.0f}-{max(walls[name]) * 1000:.0f}",
        ]
        for name in sorted(wall, key=wall.__getitem__)
    ]
    details = table(
        ["client", "wall ms", "µs/runner", "client CPU µs/runner", "x raw json", "range ms"],
        rows,
    )
    if hand not in wall:
        details += "\n\nhttpx + pydantic: not installed (`pip install -e '.[bench]'`), not run."
    fast = "raw aiohttp + orjson"
    mapping = median(
        [(h - f) / total * 1e6 for h, f in zip(walls["runnerhub"], walls[fast], strict=True)]
    )
    details += (
        f"\n\nWhere runnerhub's time goes: the raw aiohttp + orjson client does the same HTTP "
        f"and parsing in {per_runner[fast]:.2f} µs/runner; the other {mapping:.2f} µs/runner "
        "(median per-round difference) is checking every id of a page before yielding any, "
        "remembering ids across pages (no runner is yielded twice), and mapping each DTO "
        "into a frozen `Runner` (enum and status tables, parsing `lastSeenTimestamp`, "
        "copying `versions`, filling ten slots). Filling the slots of a frozen attrs "
        "instance is the largest single part (~1 µs: `build_runner` sets them through their "
        "descriptors, twice as fast as the generated `__init__`)."
    )
    method = f"""
{total:,} runners served as {total // PAGE_SIZE} pages of {PAGE_SIZE:,} by the benchmark
server (pre-built bytes of seeded Soda runner DTOs, ~240 bytes each), listed one page
after another as each client does. runnerhub: `SodaProvider.list_runners(page_size=1000)`
with the list limit removed, yielding frozen `Runner` objects (timestamps parsed,
enums mapped, versions copied). Raw: `aiohttp` + `json.loads`, dicts only. By hand:
`httpx.AsyncClient` + pydantic v2 models of the DTO and page (`model_validate_json`).
After one warm-up each, {repetitions} rounds of all clients back to back (order rotating);
times are each client's median, ratios the median of per-round ratios (robust to other
processes' load, and so not always the ratio of the two medians). The server busy-polls
its socket, so the time measured is the client's own.
"""
    return Section(
        name="bulk_listing",
        title="Bulk listing",
        method=method,
        checks=tuple(checks),
        details=(details,),
        numbers={f"us_per_runner[{name}]": value for name, value in per_runner.items()},
    )
