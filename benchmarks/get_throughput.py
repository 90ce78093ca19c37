"""Benchmark 2: ``get_runner`` requests per second at concurrency 1, 16 and 64.

runnerhub ``SodaProvider.get_runner`` (limiter, retry wrapper, error mapping
and ``Runner`` mapping all active; the get limit raised out of the way) against
raw aiohttp GET + ``json.loads``, on one keep-alive session each.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import aiohttp
import orjson

from runnerhub import RateLimit, SodaProvider
from runnerhub.vendors.soda import runner_from_wire

from . import _baselines
from ._report import (
    KEY_ID,
    KEY_SECRET,
    Check,
    Section,
    at_least,
    interleaved,
    median,
    paired_ratio,
    table,
)
from ._server import base_url, fast_server

TARGET = 0.90
CONCURRENCY = (1, 16, 64)
RUNNER_ID = "00000000-0000-4000-8000-000000000001"
# Far above what the server can answer, so the limiter works but never waits; the short
# window keeps its log near the size of Soda's real get bucket (1,000 entries).
OUT_OF_THE_WAY = RateLimit(10_000, 0.1)
# Informational clients that split runnerhub's cost into its parts.
MAPPED = "aiohttp + orjson + runner_from_wire"
UNLIMITED = "runnerhub, limiter off"


async def _drive(concurrency: int, requests: int, call: Callable[[], Awaitable[object]]) -> float:
    """Seconds for ``requests`` calls made by ``concurrency`` workers."""
    per_worker = requests // concurrency

    async def worker() -> None:
        for _ in range(per_worker):
            await call()

    loop = asyncio.get_running_loop()
    started = loop.time()
    async with asyncio.TaskGroup() as group:
        for _ in range(concurrency):
            group.create_task(worker())
    return loop.time() - started


async def _measure(
    url: str, concurrency: int, requests: int, repetitions: int
) -> dict[str, list[float]]:
    pool = max(concurrency, 1)
    async with (
        aiohttp.ClientSession(
            headers=_baselines.AUTH, connector=aiohttp.TCPConnector(limit=pool)
        ) as session,
        aiohttp.ClientSession(
            headers=_baselines.AUTH, connector=aiohttp.TCPConnector(limit=pool)
        ) as mapped_session,
        SodaProvider(
            KEY_ID,
            KEY_SECRET,
            base_url=url,
            rate_limits={"get_runner": OUT_OF_THE_WAY},
            connector_limit=pool,
        ) as soda,
        SodaProvider(
            KEY_ID + "-2",
            KEY_SECRET,
            base_url=url,
            rate_limits={"get_runner": None},
            connector_limit=pool,
        ) as unlimited,
    ):

        async def raw() -> object:
            return await _baselines.aiohttp_get(session, url, RUNNER_ID)

        async def mapped() -> object:
            # aiohttp + orjson + runnerhub's own mapping: all runnerhub adds but its HTTP core.
            path = f"{url}/api/v1/runners/{RUNNER_ID}"
            async with mapped_session.get(path) as response:
                response.raise_for_status()
                return runner_from_wire(orjson.loads(await response.read())["runner"], "x")

        async def hub() -> object:
            return await soda.get_runner(RUNNER_ID)

        async def hub_unlimited() -> object:
            return await unlimited.get_runner(RUNNER_ID)

        clients: dict[str, Callable[[], Awaitable[object]]] = {
            "raw aiohttp + json": raw,
            "runnerhub": hub,
            MAPPED: mapped,
            UNLIMITED: hub_unlimited,
        }
        def round_of(client: Callable[[], Awaitable[object]]) -> Callable[[], Awaitable[float]]:
            return lambda: _drive(concurrency, requests, client)

        for client in clients.values():  # opens the connections each client keeps
            await _drive(concurrency, concurrency * 20, client)
        seconds = await interleaved(
            {name: round_of(client) for name, client in clients.items()}, repetitions
        )
    done = requests // concurrency * concurrency
    return {name: [done / s for s in values] for name, values in seconds.items()}


async def _all(quick: bool) -> dict[int, dict[str, list[float]]]:
    results = {}
    with fast_server() as root:
        url = base_url(root)
        for concurrency in CONCURRENCY:
            if quick:
                requests, repetitions = concurrency * 4, 2
            else:
                requests, repetitions = (800 if concurrency == 1 else 2000), 15
            results[concurrency] = await _measure(url, concurrency, requests, repetitions)
    return results


def run(quick: bool = False) -> Section:
    """Measure and report; ``quick`` sends a few requests per worker."""
    results = asyncio.run(_all(quick))
    checks = []
    rows = []
    numbers = {}
    for concurrency, rates in results.items():
        raw = median(rates["raw aiohttp + json"])
        hub = median(rates["runnerhub"])
        ratio = paired_ratio(rates["runnerhub"], rates["raw aiohttp + json"])
        target, passed = at_least(ratio, TARGET)
        checks.append(
            Check(
                f"concurrency {concurrency}",
                f"raw aiohttp + json: {raw:,.0f} req/s",
                f"{hub:,.0f} req/s",
                ratio,
                target,
                passed,
            )
        )
        baseline = rates["raw aiohttp + json"]
        for name, values in rates.items():
            rows.append(
                [
                    str(concurrency),
                    name,
                    f"{median(values):,.0f}",
                    f"{min(values):,.0f}-{max(values):,.0f}",
                    f"{1e6 / median(values):.0f}",
                    f"{paired_ratio(values, baseline):.2f}",
                ]
            )
            # Microseconds a request costs more than the raw baseline's.
            extra = median([1e6 / v - 1e6 / b for v, b in zip(values, baseline, strict=True)])
            numbers[f"extra_us[{concurrency}][{name}]"] = extra
        numbers[f"rps[{concurrency}][raw]"] = raw
        numbers[f"rps[{concurrency}][runnerhub]"] = hub
    method = """
`GET /api/v1/runners/{id}` against the benchmark server (a pre-built 250-byte answer), by
N workers sharing one keep-alive session (connection pool of N). runnerhub:
`SodaProvider.get_runner` with every layer on: the sliding-window limiter (get limit raised
to 10,000 per 0.1 s, so it never waits and its log stays as short as Soda's real 1,000/60 s
bucket's), the retry wrapper, error mapping, orjson, the mapping into `Runner`. Raw:
`session.get` + `json.loads` into a dict. Two informational clients split runnerhub's cost:
aiohttp + orjson + `runner_from_wire` (everything but runnerhub's HTTP core), and
runnerhub with the limiter off. After a warm-up, 15 rounds of 800 (N = 1) or 2,000
requests per client, all clients back to back in each round (order rotating). Ratios are
medians of per-round ratios, which cancels most of what other processes do to a single
round; the req/s figures are each client's own median, taken from different rounds, so on
a noisy machine they can disagree with the ratio. The server busy-polls its socket instead of
sleeping, so a request never pays for waking it: the time measured is the client's own.
"""
    details = table(
        ["concurrency", "client", "req/s", "range", "µs/request", "x raw (paired)"], rows
    )
    split = [
        [
            str(c),
            f"{numbers[f'extra_us[{c}][{MAPPED}]']:+.1f}",
            f"{numbers[f'extra_us[{c}][{UNLIMITED}]'] - numbers[f'extra_us[{c}][{MAPPED}]']:+.1f}",
            f"{numbers[f'extra_us[{c}][runnerhub]'] - numbers[f'extra_us[{c}][{UNLIMITED}]']:+.1f}",
            f"{numbers[f'extra_us[{c}][runnerhub]']:+.1f}",
        ]
        for c in results
    ]
    breakdown = table(
        [
            "concurrency",
            "orjson + mapping to Runner",
            "HTTP core (URL encoding, retry, error mapping, size check)",
            "sliding-window limiter",
            "runnerhub in all",
        ],
        split,
    )
    return Section(
        name="get_throughput",
        title="Single GET throughput",
        method=method,
        checks=tuple(checks),
        details=(
            details,
            "Where runnerhub's extra time per request goes, in µs against the raw client "
            "(medians of per-round differences; the two informational clients above peel "
            "the layers off):",
            breakdown,
        ),
        numbers=numbers,
    )
