"""The ``runnerhub_sandbox`` fixture: options, and sync and async tests alike."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

import aiohttp
import pytest

from runnerhub.sandbox import Sandbox


@pytest.fixture
def runnerhub_sandbox_options() -> dict[str, Any]:
    """Overrides the plugin's options for this module."""
    return {"seed": 5, "vendor_options": {"kubiya": {"error_style": "detail"}}}


async def test_fixture_uses_overridden_options(
    runnerhub_sandbox: Sandbox, http: aiohttp.ClientSession
) -> None:
    """An overriding ``runnerhub_sandbox_options`` fixture configures the served sandbox."""
    assert runnerhub_sandbox.seed == 5
    org = runnerhub_sandbox.add_org("kubiya", "kubiya-prod")
    headers = {"Authorization": f"UserKey {org.api_key}"}
    url = f"{runnerhub_sandbox.url('kubiya')}/api/v3/runners/ghost/describe"
    async with http.get(url, headers=headers) as resp:
        assert await resp.json() == {"detail": "runner not found"}


def test_fixture_in_a_sync_test(runnerhub_sandbox: Sandbox) -> None:
    """In a plain sync test the fixture serves from its own thread; urllib reaches it."""
    org = runnerhub_sandbox.add_org("kubiya", "kubiya-prod", runners=2)
    request = urllib.request.Request(  # noqa: S310 - loopback http URL from the fixture
        f"{runnerhub_sandbox.url('kubiya')}/api/v3/runners",
        headers={"Authorization": f"UserKey {org.api_key}"},
    )
    with urllib.request.urlopen(request, timeout=5) as resp:  # noqa: S310 - as above
        assert len(json.load(resp)) == 2
    assert runnerhub_sandbox.base_url is not None
    assert runnerhub_sandbox.base_url.startswith("http://127.0.0.1:")
