"""RunnerHub over several accounts of both vendors, against one served sandbox."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import attrs
import pytest
import pytest_asyncio

from runnerhub import (
    FleetEventKind,
    KubiyaProvider,
    PartialFailure,
    RunnerHub,
    RunnerStatus,
    SodaProvider,
    errors,
)
from runnerhub.sandbox import Fault, FaultKind, Sandbox

from .conftest import KUBIYA_LIMITS, SODA_LIMITS, TIME_SCALE


@attrs.define
class Fleet:
    """A sandbox with two Soda orgs and one Kubiya org, and a hub over them."""

    sandbox: Sandbox
    base_url: str

    def hub(self, *, bad_account: str | None = None, **options: object) -> RunnerHub:
        """A hub over the three accounts; ``bad_account`` gets a wrong key."""
        eu = self.sandbox.service("soda").orgs["soda-eu"]
        us = self.sandbox.service("soda").orgs["soda-us"]
        kubiya = self.sandbox.service("kubiya").orgs["kubiya-prod"]

        def secret(label: str, value: str) -> str:
            return "wrong" if label == bad_account else value

        common = {"base_url": self.base_url, "max_retries": 1}
        return RunnerHub(
            [
                SodaProvider(
                    eu.api_key_id,
                    secret("soda-eu", eu.api_key_secret),
                    account="soda-eu",
                    rate_limits=SODA_LIMITS,
                    **common,  # type: ignore[arg-type]
                ),
                SodaProvider(
                    us.api_key_id,
                    secret("soda-us", us.api_key_secret),
                    account="soda-us",
                    rate_limits=SODA_LIMITS,
                    **common,  # type: ignore[arg-type]
                ),
                KubiyaProvider(
                    secret("kubiya-prod", kubiya.api_key),
                    account="kubiya-prod",
                    rate_limits=KUBIYA_LIMITS,
                    **common,  # type: ignore[arg-type]
                ),
            ],
            **options,  # type: ignore[arg-type]
        )


@pytest_asyncio.fixture
async def fleet() -> AsyncIterator[Fleet]:
    """1,200 + 300 Soda runners and 20 Kubiya runners (5 unhealthy)."""
    sandbox = Sandbox(seed=3, time_scale=TIME_SCALE)
    sandbox.add_org("soda", "soda-eu", runners=1200)
    sandbox.add_org("soda", "soda-us", runners=300)
    sandbox.add_org("kubiya", "kubiya-prod", runners=20, unhealthy=5)
    async with sandbox.serve() as base_url:
        yield Fleet(sandbox, base_url)


async def test_inventory_has_every_runner_once(fleet: Fleet) -> None:
    """The inventory holds every runner of every account exactly once."""
    async with fleet.hub() as hub:
        inventory = await hub.inventory()
    assert inventory.complete
    assert inventory.by_account() == {"soda-eu": 1200, "soda-us": 300, "kubiya-prod": 20}
    keys = [(r.account, r.id) for r in inventory.runners]
    assert len(keys) == len(set(keys)) == 1520
    assert inventory.by_provider() == {"soda": 1500, "kubiya": 20}


async def test_accounts_are_fetched_concurrently(fleet: Fleet) -> None:
    """Each account's first request arrives before any account's slow first answer returns."""
    fleet.sandbox.faults.add(Fault(FaultKind.LATENCY, delay=0.3, method="GET"))
    async with fleet.hub() as hub:
        await hub.inventory()
    firsts: dict[str | None, float] = {}
    for record in fleet.sandbox.requests:
        firsts.setdefault(record.org, record.t)
    assert len(firsts) == 3
    assert max(firsts.values()) - min(firsts.values()) < 0.3


async def test_one_failing_account_loses_nothing_else(fleet: Fleet) -> None:
    """A wrong key fails only its account; the error is keyed by its label."""
    async with fleet.hub(bad_account="soda-us") as hub:
        inventory = await hub.inventory()
    assert set(inventory.errors) == {"soda-us"}
    assert isinstance(inventory.errors["soda-us"], errors.AuthenticationError)
    assert inventory.by_account() == {"soda-eu": 1200, "soda-us": 0, "kubiya-prod": 20}
    assert not inventory.complete


async def test_health_fills_statuses_where_the_vendor_has_an_endpoint(fleet: Fleet) -> None:
    """health=True calls Kubiya's health route per runner; Soda's listing already has status."""
    async with fleet.hub() as hub:
        inventory = await hub.inventory(health=True)
    kubiya = [r for r in inventory.runners if r.provider == "kubiya"]
    assert fleet.sandbox.count(vendor="kubiya", operation="runner_health") == 20
    assert fleet.sandbox.count(vendor="soda", operation="get_runner") == 0
    states = fleet.sandbox.service("kubiya").orgs["kubiya-prod"].health
    for runner in kubiya:
        expected = {
            "ok": RunnerStatus.ONLINE,
            "degraded": RunnerStatus.DEGRADED,
            "non-responsive": RunnerStatus.OFFLINE,
            "missing": RunnerStatus.UNKNOWN,
        }[states[runner.id]]
        assert runner.status is expected, runner.id
    missing = {name for name, state in states.items() if state == "missing"}
    assert {f.runner_id for f in inventory.health_failures} == missing


async def test_summary_and_json_have_no_secrets(fleet: Fleet) -> None:
    """The summary counts add up and the JSON form carries no credential or payload."""
    async with fleet.hub() as hub:
        inventory = await hub.inventory()
    summary = inventory.summary()
    assert summary["runners"] == 1520
    assert sum(summary["statuses"].values()) == 1520
    assert summary["offline"] == len(inventory.offline()) > 0
    assert summary["version_drift"] > 0
    text = json.dumps(inventory.to_json())
    secrets = [o.api_key_secret for o in fleet.sandbox.service("soda").orgs.values()]
    secrets += [o.token for o in fleet.sandbox.service("soda").orgs.values()]
    secrets += [o.api_key for o in fleet.sandbox.service("kubiya").orgs.values()]
    passwords = [
        r["gateway_password"]
        for r in fleet.sandbox.service("kubiya").orgs["kubiya-prod"].runners.values()
        if r.get("gateway_password")
    ]
    assert passwords
    for secret in secrets + passwords:
        assert secret not in text
    assert '"raw"' not in text


async def test_version_drift_names_older_runners(fleet: Fleet) -> None:
    """Every drift entry is older than the newest version seen for its vendor and component."""
    async with fleet.hub() as hub:
        inventory = await hub.inventory()
    newest = inventory.newest_versions()
    for drift in inventory.version_drift():
        assert drift.newest == newest[(drift.runner.provider, drift.component)]
        assert drift.version != drift.newest


async def test_stream_yields_all_and_collects_errors(fleet: Fleet) -> None:
    """stream() yields every runner of the good accounts and records the failed one."""
    failed: dict[str, errors.RunnerHubError] = {}
    async with fleet.hub(bad_account="kubiya-prod") as hub:
        ids = [r.id async for r in hub.stream(collect_errors=failed)]
    assert len(ids) == 1500
    assert set(failed) == {"kubiya-prod"}


async def test_stream_raises_partial_failure_at_the_end(fleet: Fleet) -> None:
    """Without collect_errors, a failed account raises PartialFailure after the rest."""
    seen: list[str] = []

    async def consume(hub: RunnerHub) -> None:
        async for runner in hub.stream():
            seen.append(runner.id)

    async with fleet.hub(bad_account="soda-eu") as hub:
        with pytest.raises(PartialFailure) as info:
            await consume(hub)
    assert len(seen) == 320
    assert set(info.value.errors) == {"soda-eu"}


async def test_breaking_out_of_stream_leaves_no_task(fleet: Fleet) -> None:
    """Leaving stream() early cancels its producers; no task is left pending."""
    async with fleet.hub() as hub:
        stream = hub.stream()
        async for _ in stream:
            break
        await stream.aclose()
        await asyncio.sleep(0)
        others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        assert not [t for t in others if t.get_name().startswith("runnerhub:")]
        inventory = await hub.inventory()  # still usable
    assert len(inventory.runners) == 1520


async def test_cancelling_an_inventory_stops_everything(fleet: Fleet) -> None:
    """Cancelling inventory() mid-flight cancels every request; the hub stays usable."""
    fault = fleet.sandbox.faults.add(Fault(FaultKind.LATENCY, delay=5.0))
    async with fleet.hub() as hub:
        task = asyncio.create_task(hub.inventory())
        await asyncio.sleep(0.2)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        assert not [t for t in others if t.get_name().startswith("runnerhub:")]
        fleet.sandbox.faults.remove(fault)
        inventory = await hub.inventory()
    assert inventory.complete


async def test_watch_reports_changes(fleet: Fleet) -> None:
    """watch() yields ADDED first, then REMOVED and STATUS_CHANGED as the fleet changes."""
    eu = fleet.sandbox.service("soda").orgs["soda-eu"]
    async with fleet.hub() as hub:
        events = hub.watch(interval=0.01, accounts=["soda-eu"])
        first = [await anext(events) for _ in range(1200)]
        assert {e.kind for e in first} == {FleetEventKind.ADDED}
        gone, flipped = list(eu.runners)[5:7]
        eu.remove_runner(gone)
        eu.runners[flipped]["isOnline"] = not eu.runners[flipped].get("isOnline", False)
        changes = [await anext(events) for _ in range(2)]
        await events.aclose()
    kinds = {(e.kind, e.runner.id if e.runner else None) for e in changes}
    assert (FleetEventKind.REMOVED, gone) in kinds
    assert (FleetEventKind.STATUS_CHANGED, flipped) in kinds


async def test_watch_reports_a_failed_account_without_removing_its_runners(fleet: Fleet) -> None:
    """An account that fails mid-watch yields ACCOUNT_FAILED, not REMOVED for its runners."""
    async with fleet.hub() as hub:
        events = hub.watch(interval=0.01, accounts=["kubiya-prod"], initial=False)
        fleet.sandbox.faults.add(
            Fault(FaultKind.STATUS, status=403, vendor="kubiya", times=1)
        )
        event = await anext(events)
        await events.aclose()
    assert event.kind is FleetEventKind.ACCOUNT_FAILED
    assert isinstance(event.error, errors.PermissionDeniedError)


async def test_labels_must_be_unique(fleet: Fleet) -> None:
    """Two providers with the same account label are refused."""
    org = fleet.sandbox.service("soda").orgs["soda-eu"]
    with pytest.raises(errors.UsageError, match="unique"):
        RunnerHub(
            [
                SodaProvider(org.api_key_id, org.api_key_secret, account="x"),
                SodaProvider(org.api_key_id, org.api_key_secret, account="x"),
            ]
        )


async def test_select_unknown_account(fleet: Fleet) -> None:
    """Asking for an account the hub lacks is a UsageError."""
    async with fleet.hub() as hub:
        with pytest.raises(errors.UsageError, match="nope"):
            await hub.inventory(accounts=["nope"])
        assert hub.get("soda-us").account == "soda-us"
        assert [p.account for p in hub.select(providers=["kubiya"])] == ["kubiya-prod"]
