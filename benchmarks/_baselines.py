"""The clients runnerhub is compared with: raw aiohttp, and httpx + pydantic.

Each is what a careful user would write by hand for the same job, with the
same checks a listing needs (every page until ``last``) and nothing more.
httpx and pydantic are optional (the ``bench`` extra); without them that
baseline is reported as not run.
"""

from __future__ import annotations

import base64
import importlib
import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

import aiohttp

from ._report import KEY_ID, KEY_SECRET

AUTH = {"Authorization": "Basic " + base64.b64encode(f"{KEY_ID}:{KEY_SECRET}".encode()).decode()}


async def aiohttp_listing(
    base_url: str, page_size: int, loads: Callable[[bytes], Any] = json.loads
) -> int:
    """List every runner as dicts with aiohttp and ``loads``; return how many."""
    count = 0
    async with aiohttp.ClientSession(headers=AUTH) as session:
        page = 0
        while True:
            params = {"page": page, "size": page_size}
            async with session.get(f"{base_url}/api/v1/runners", params=params) as response:
                response.raise_for_status()
                data = loads(await response.read())
            for _runner in data["content"]:
                count += 1
            if data["last"] or not data["content"]:
                return count
            page += 1


async def aiohttp_get(session: aiohttp.ClientSession, base_url: str, runner_id: str) -> Any:
    """One ``GET /api/v1/runners/{id}`` parsed with ``json``; the runner dict."""
    async with session.get(f"{base_url}/api/v1/runners/{runner_id}") as response:
        response.raise_for_status()
        return json.loads(await response.read())["runner"]


def httpx_pydantic() -> Callable[[str, int], Any] | None:
    """The httpx + pydantic v2 listing, or None when either is not installed."""
    try:
        httpx = importlib.import_module("httpx")
        pydantic = importlib.import_module("pydantic")
    except ImportError:
        return None
    # The models a user would write for PublicApiRunnerDTO and its page.
    runner_model = pydantic.create_model(
        "RunnerDTO",
        id=(str, ...),
        name=(str | None, None),
        label=(str | None, None),
        type=(str | None, None),
        isOnline=(bool | None, None),
        lastSeenTimestamp=(datetime | None, None),
        versions=(dict[str, str], {}),
    )
    page_model = pydantic.create_model(
        "RunnerPage",
        content=(list[runner_model], ...),  # type: ignore[valid-type]
        first=(bool, ...),
        last=(bool, ...),
        number=(int, ...),
        size=(int, ...),
        totalElements=(int, ...),
        totalPages=(int, ...),
    )

    async def listing(base_url: str, page_size: int) -> int:
        count = 0
        async with httpx.AsyncClient(headers=AUTH) as client:
            page = 0
            while True:
                params = {"page": page, "size": page_size}
                response = await client.get(f"{base_url}/api/v1/runners", params=params)
                response.raise_for_status()
                parsed = page_model.model_validate_json(response.content)
                for _runner in parsed.content:
                    count += 1
                if parsed.last or not parsed.content:
                    return count
                page += 1

    return listing
