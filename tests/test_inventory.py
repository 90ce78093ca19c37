"""runnerhub.inventory: snapshot analytics, runners told apart by (account, id)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from runnerhub import RunnerHub, SodaProvider

from ._hostile import serve


def _page(versions: dict[str, str]) -> dict[str, Any]:
    content = [
        {"id": rid, "name": rid, "type": "SELF_HOSTED", "isOnline": True, "versions": {"agent": v}}
        for rid, v in versions.items()
    ]
    total = len(content)
    return {
        "content": content,
        "first": True,
        "last": True,
        "number": 0,
        "size": 1000,
        "totalElements": total,
        "totalPages": 1,
    }


async def test_version_drift_counts_identical_ids_in_two_accounts() -> None:
    """Two accounts each with an outdated "r1": the summary counts two drifting runners."""

    async def handler(request: web.Request) -> web.StreamResponse:
        return web.json_response(_page({"r1": "1.0.0", "r2": "2.0.0"}))

    async with serve(handler) as served:
        providers = [
            SodaProvider(
                "key-id",
                "key-secret",
                base_url=served.base_url,
                account=label,
                rate_limits={"list_runners": None},
            )
            for label in ("acme-a", "acme-b")
        ]
        async with RunnerHub(providers) as hub:
            inventory = await hub.inventory()
    summary = inventory.summary()
    assert summary["runners"] == 4
    assert summary["version_drift"] == 2
    assert {(d.runner.account, d.runner.id) for d in inventory.version_drift()} == {
        ("acme-a", "r1"),
        ("acme-b", "r1"),
    }
    assert inventory.to_json()["summary"]["version_drift"] == 2
