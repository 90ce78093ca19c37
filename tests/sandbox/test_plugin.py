"""Options reach the ``runnerhub_sandbox`` fixture through ``runnerhub_sandbox_options``."""

from __future__ import annotations

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
    url = f"{runnerhub_sandbox.base_url}/api/v3/runners/ghost/describe"
    async with http.get(url, headers=headers) as resp:
        assert await resp.json() == {"detail": "runner not found"}
