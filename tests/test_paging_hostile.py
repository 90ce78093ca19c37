"""Soda listings always end, against servers whose envelopes never say "last" honestly.

Each hostile server answers ``GET /api/v1/runners?page=N&size=S`` on 127.0.0.1
with a Spring page envelope built to keep a naive pager going forever. The
listing must end (cleanly when the data proves it complete, else with
``ResponseFormatError``), yield each runner at most once, and send few requests.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from aiohttp import web

from runnerhub import Runner, SodaProvider, errors

from ._hostile import serve

SIZE = 10
# Far more requests than any of these listings needs; a pager past it is not ending.
RUNAWAY = 200

PageFn = Callable[[int], dict[str, Any]]


def _envelope(number: int, ids: list[str], *, total: int, pages: int, last: bool = False) -> Any:
    content = [{"id": i, "name": i, "type": "SELF_HOSTED", "isOnline": True} for i in ids]
    return {
        "content": content,
        "first": number == 0,
        "last": last,
        "number": number,
        "size": SIZE,
        "totalElements": total,
        "totalPages": pages,
    }


def _ids(prefix: str, number: int) -> list[str]:
    return [f"{prefix}{number}-{i}" for i in range(SIZE)]


async def _list(page: PageFn, *, consistent: bool = False) -> tuple[list[Runner], int, Any]:
    """List against a server built from ``page``; return runners, requests and any error."""
    requests = 0

    async def handler(request: web.Request) -> web.StreamResponse:
        nonlocal requests
        requests += 1
        if requests > RUNAWAY:
            return web.json_response({"code": "runaway", "message": "stop"}, status=400)
        return web.json_response(page(int(request.query["page"])))

    runners: list[Runner] = []
    error: Exception | None = None
    async with serve(handler) as served:
        provider = SodaProvider(
            "key-id", "key-secret", base_url=served.base_url, rate_limits={"list_runners": None}
        )
        async with provider:
            try:
                async with asyncio.timeout(10):
                    async for runner in provider.list_runners(
                        page_size=SIZE, consistent=consistent
                    ):
                        runners.append(runner)
            except errors.RunnerHubError as exc:
                error = exc
    return runners, requests, error


def _once(runners: list[Runner]) -> None:
    repeated = [i for i, n in Counter(r.id for r in runners).items() if n > 1]
    assert repeated == []


@pytest.mark.parametrize("consistent", [False, True])
async def test_a_repeated_page_with_its_number_echoed_ends_the_listing(consistent: bool) -> None:
    """Every page is page 0's runners with the asked number: error after page 1, no duplicate."""

    def page(number: int) -> Any:
        return _envelope(number, _ids("a", 0), total=10_000, pages=1_000)

    runners, requests, error = await _list(page, consistent=consistent)
    assert isinstance(error, errors.ResponseFormatError)
    assert "no runner not already listed" in error.message
    _once(runners)
    assert requests <= 3


@pytest.mark.parametrize("consistent", [False, True])
async def test_last_never_set_stops_cleanly_when_the_count_is_reached(consistent: bool) -> None:
    """25 runners, ``last`` always false, totalPages 999, later pages repeat: 25 listed, once."""
    data = [f"r{i}" for i in range(25)]

    def page(number: int) -> Any:
        chunk = data[number * SIZE : (number + 1) * SIZE] or data[-SIZE:]
        return _envelope(number, chunk, total=25, pages=999)

    runners, requests, error = await _list(page, consistent=consistent)
    assert error is None
    assert sorted(r.id for r in runners) == sorted(data)
    assert requests <= 5


async def test_last_never_set_and_pages_past_the_data_repeat_ends() -> None:
    """``totalElements`` lies high and past the data every page repeats the last: an error."""
    data = [f"r{i}" for i in range(25)]

    def page(number: int) -> Any:
        chunk = data[number * SIZE : (number + 1) * SIZE] or data[-SIZE:]
        return _envelope(number, chunk, total=100_000, pages=10_000)

    runners, requests, error = await _list(page)
    assert isinstance(error, errors.ResponseFormatError)
    assert sorted(r.id for r in runners) == sorted(data)
    assert requests <= 5


@pytest.mark.parametrize("consistent", [False, True])
async def test_ever_rising_totals_hit_the_page_cap(consistent: bool) -> None:
    """Fresh runners on every page and totals one page ahead: the cap of 2x page 0 + 2 ends it."""

    def page(number: int) -> Any:
        return _envelope(number, _ids("g", number), total=(number + 2) * SIZE, pages=number + 2)

    runners, requests, error = await _list(page, consistent=consistent)
    assert isinstance(error, errors.ResponseFormatError)
    assert "cap of 6 pages" in error.message
    _once(runners)
    assert len(runners) <= 6 * SIZE
    assert requests <= 6


async def test_total_pages_past_what_total_elements_allows() -> None:
    """totalPages keeps rising while totalElements stays 20: page 2 is past what 20 allows."""

    def page(number: int) -> Any:
        return _envelope(number, _ids("p", number), total=20, pages=number + 2)

    runners, requests, error = await _list(page)
    # Two full pages of 10 reach totalElements=20: the data proves the listing complete.
    assert error is None
    assert len(runners) == 20
    assert requests == 2


async def test_total_pages_past_total_elements_with_data_missing() -> None:
    """Pages of 5 while claiming 20 and rising totalPages: past 2 pages it is an error."""

    def page(number: int) -> Any:
        return _envelope(number, _ids("h", number)[:5], total=20, pages=number + 2)

    runners, requests, error = await _list(page)
    assert isinstance(error, errors.ResponseFormatError)
    assert "totalElements=20 allows" in error.message
    _once(runners)
    assert requests == 2


async def test_a_cycle_of_pages_is_caught() -> None:
    """Pages cycle through three sets of runners: the repeat brings nothing new and ends it."""

    def page(number: int) -> Any:
        return _envelope(number, _ids("c", number % 3), total=1_000, pages=100)

    runners, requests, error = await _list(page)
    assert isinstance(error, errors.ResponseFormatError)
    _once(runners)
    assert len(runners) == 30
    assert requests == 4


async def test_an_honest_listing_is_unchanged() -> None:
    """A well-formed 3-page listing yields every runner once and reads 3 pages."""
    data = [f"ok{i}" for i in range(25)]

    def page(number: int) -> Any:
        chunk = data[number * SIZE : (number + 1) * SIZE]
        return _envelope(number, chunk, total=25, pages=3, last=number == 2)

    runners, requests, error = await _list(page)
    assert error is None
    assert [r.id for r in runners] == data
    assert requests == 3
