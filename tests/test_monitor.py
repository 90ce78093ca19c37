"""FleetMonitor on the served sandbox: schedule, budget share, metrics, readiness, staleness."""

from __future__ import annotations

import asyncio
import math
import re
from collections import Counter
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import attrs
import pytest
import pytest_asyncio

from runnerhub import KubiyaProvider, RateLimit, RetryPolicy, RunnerHub, SodaProvider
from runnerhub.hooks import Hooks
from runnerhub.limits import LocalLimiter
from runnerhub.monitor import (
    AccountBudget,
    AccountState,
    FleetMonitor,
    MonitorMetrics,
    serve,
)
from runnerhub.provider import RunnerProvider
from runnerhub.sandbox import Fault, FaultKind, KubiyaOrg, Sandbox, SodaOrg

from .conftest import KUBIYA_LIMITS, SODA_LIMITS, TIME_SCALE

FAST_RETRY = RetryPolicy(base_delay=0.01, max_delay=0.05, max_total=2)
PLANTED_SECRET = "planted-monitor-secret-R8t3"
PLANTED_KEY = "planted-monitor-kubiya-key-V2n6"


@attrs.frozen
class Fleet:
    """A served sandbox with two Soda orgs and a Kubiya org, and providers for them."""

    sandbox: Sandbox
    base_url: str
    eu: SodaOrg
    us: SodaOrg
    kubiya: KubiyaOrg
    providers: tuple[RunnerProvider, ...]

    @property
    def limits(self) -> dict[str, Any]:
        """The providers' (sandbox-scaled) limits, by account, for the monitor's budget."""
        return {
            p.account: SODA_LIMITS if p.provider == "soda" else KUBIYA_LIMITS
            for p in self.providers
        }

    def monitor(self, **options: Any) -> FleetMonitor:
        """A monitor of every account with the sandbox-scaled limits."""
        options.setdefault("interval", 0.2)
        options.setdefault("seed", 3)
        return FleetMonitor(self.providers, limits=self.limits, **options)


@pytest_asyncio.fixture
async def fleet() -> AsyncIterator[Fleet]:
    """25 + 12 Soda runners and 12 Kubiya runners (3 unhealthy), served on loopback."""
    sandbox = Sandbox(seed=5, time_scale=TIME_SCALE)
    eu = sandbox.add_org("soda", "acme-eu", runners=25, api_key_secret=PLANTED_SECRET)
    us = sandbox.add_org("soda", "acme-us", runners=12)
    kubiya = sandbox.add_org("kubiya", "kubiya-prod", runners=12, unhealthy=3, api_key=PLANTED_KEY)
    async with sandbox.serve() as base_url:
        options: dict[str, Any] = {"base_url": base_url, "retry": FAST_RETRY, "timeout": 5.0}
        providers: tuple[RunnerProvider, ...] = (
            SodaProvider(
                eu.api_key_id,
                eu.api_key_secret,
                account="acme-eu",
                rate_limits=SODA_LIMITS,
                **options,
            ),
            SodaProvider(
                us.api_key_id,
                us.api_key_secret,
                account="acme-us",
                rate_limits=SODA_LIMITS,
                **options,
            ),
            KubiyaProvider(
                kubiya.api_key, account="kubiya-prod", rate_limits=KUBIYA_LIMITS, **options
            ),
        )
        async with RunnerHub(providers):
            yield Fleet(sandbox, base_url, eu, us, kubiya, providers)


async def until(predicate: Callable[[], bool]) -> None:
    """Wait until ``predicate()`` holds (the per-test timeout bounds the wait)."""
    while not predicate():  # noqa: ASYNC110 - polls state the monitor changes, no event to wait on
        await asyncio.sleep(0.01)


def samples(exposition: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of a text exposition, by (name, labels)."""
    found = {}
    for line in exposition.splitlines():
        if not line or line.startswith("#"):
            continue
        match = re.fullmatch(r"([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)", line)
        assert match, line
        name, labels, value = match.groups()
        pairs = frozenset(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', labels or ""))
        found[(name, pairs)] = float(value)
    return found


def labels(**pairs: str) -> frozenset[tuple[str, str]]:
    """A label set as :func:`samples` keys it."""
    return frozenset(pairs.items())


async def reference(fleet: Fleet) -> dict[str, Counter[tuple[str, str]]]:
    """(status, kind) counts per account from the library's own inventory with health."""
    inventory = await RunnerHub(fleet.providers).inventory(health=True)
    counts: dict[str, Counter[tuple[str, str]]] = {p.account: Counter() for p in fleet.providers}
    for runner in inventory.runners:
        counts[runner.account][(runner.status.value, runner.kind.value)] += 1
    return counts


# -- the budget ---------------------------------------------------------------------------


def test_budget_scales_each_limit_and_keeps_at_least_one() -> None:
    """Each declared limit is scaled by the share, rounded down, never below one request."""
    budget = AccountBudget(
        "a",
        {"*": (RateLimit(100, 60), RateLimit(20, 10)), "list_runners": RateLimit(1, 60)},
        0.5,
        LocalLimiter(),
    )
    shared, listing = budget.buckets("list_runners")[1], budget.buckets("list_runners")[0]
    assert [limit.max_requests for limit in shared.limits] == [50, 10]
    assert [limit.max_requests for limit in listing.limits] == [1]
    assert budget.rate("runner_health") == pytest.approx(50 / 60)
    assert budget.rate("list_runners") == pytest.approx(1 / 60)


def test_budget_without_limits_is_unlimited() -> None:
    """A vendor that declares no bucket for an operation leaves the monitor's rate unbounded."""
    budget = AccountBudget(
        "a", {"create_runner": RateLimit(10, 60), "x": None}, 0.5, LocalLimiter()
    )
    assert budget.buckets("list_runners") == ()
    assert math.isinf(budget.rate("list_runners"))
    assert budget.cadence(60, list_cost=5, health_cost=0).list_seconds == 60


def test_health_is_checked_less_often_than_listing_when_the_budget_is_tight() -> None:
    """Kubiya's shared 100/min at half share cannot pay 200 health calls a minute."""
    budget = AccountBudget("k", KubiyaProvider.default_limits, 0.5, LocalLimiter())
    cadence = budget.cadence(60, list_cost=1, health_cost=200)
    assert cadence.list_seconds == 60
    spare = 50 / 60 - 1 / 60  # the listing draws from the same "*" bucket
    assert cadence.health_seconds == pytest.approx(200 / spare)
    roomy = budget.cadence(60, list_cost=1, health_cost=20)
    assert roomy.health_seconds == 60


def test_listing_slows_down_when_one_listing_costs_more_than_the_share() -> None:
    """A listing of 90 pages at 30 per minute is spaced three minutes apart, health off."""
    budget = AccountBudget("s", {"*": RateLimit(60, 60)}, 0.5, LocalLimiter())
    cadence = budget.cadence(60, list_cost=90, health_cost=10)
    assert cadence.list_seconds == pytest.approx(180)
    assert math.isinf(cadence.health_seconds)


async def test_monitor_stays_within_its_share_of_kubiyas_budget(fleet: Fleet) -> None:
    """Over many refreshes the sandbox never sees more than share x N of the monitor's calls."""
    kubiya = next(p for p in fleet.providers if p.provider == "kubiya")
    monitor = FleetMonitor(
        [kubiya], interval=0.1, budget_share=0.5, limits={"kubiya-prod": KUBIYA_LIMITS}
    )
    async with monitor:
        await until(lambda: fleet.sandbox.count(vendor="kubiya") >= 120)
    sandbox = fleet.sandbox
    assert sandbox.count(vendor="kubiya", status=429) == 0
    assert sandbox.max_in_window("kubiya", "*", 60 / TIME_SCALE) <= 50
    assert sandbox.max_in_window("kubiya", "*", 10 / TIME_SCALE) <= 10
    assert sandbox.count(vendor="kubiya", operation="runner_health") > 0


# -- schedule, readiness, metrics ------------------------------------------------------------


async def test_first_refreshes_are_spread_over_the_interval(fleet: Fleet) -> None:
    """Accounts start at distinct offsets within the first interval, not all at once."""
    monitor = fleet.monitor(interval=0.6, health=False)
    async with monitor:
        await until(lambda: monitor.ready)
    starts = sorted(
        s.last_attempt for s in monitor.accounts().values() if s.last_attempt is not None
    )
    assert len(set(starts)) == 3
    assert (starts[-1] - starts[0]).total_seconds() > 0


async def test_metrics_equal_the_sandbox_counts(fleet: Fleet) -> None:
    """runnerhub_runners per account, status and kind equals the library's own inventory."""
    monitor = fleet.monitor()
    async with monitor:
        await until(lambda: monitor.ready)
        await until(lambda: monitor.accounts()["kubiya-prod"].health_checked_at is not None)
        text = monitor.metrics.exposition().decode()
    expected = await reference(fleet)
    found = samples(text)
    sizes = {"acme-eu": 25, "acme-us": 12, "kubiya-prod": 12}
    for provider in fleet.providers:
        account = provider.account
        mine = {
            (dict(pairs)["status"], dict(pairs)["kind"]): value
            for (name, pairs), value in found.items()
            if name == "runnerhub_runners" and dict(pairs)["account"] == account
        }
        assert mine == {key: float(n) for key, n in expected[account].items()}
        assert sum(mine.values()) == sizes[account]
        pair = labels(account=account, provider=provider.provider)
        assert found[("runnerhub_account_up", pair)] == 1.0
        assert found[("runnerhub_account_last_success_timestamp_seconds", pair)] > 0
        assert ("runnerhub_runners_behind_newest_version", pair) in found
    unhealthy = sum(1 for state in fleet.kubiya.health.values() if state != "ok")
    kubiya_not_online = sum(
        n for (status, _), n in expected["kubiya-prod"].items() if status != "online"
    )
    assert kubiya_not_online == unhealthy
    assert not any(name == "runnerhub_runner_up" for name, _ in found)


async def test_version_drift_gauge_counts_runners_behind(fleet: Fleet) -> None:
    """runnerhub_runners_behind_newest_version equals the inventory's drifted runners."""
    monitor = fleet.monitor(health=False)
    async with monitor:
        await until(lambda: monitor.ready)
        found = samples(monitor.metrics.exposition().decode())
        inventory = monitor.inventory()
    behind = Counter(
        a for a, _ in {(d.runner.account, d.runner.id) for d in inventory.version_drift()}
    )
    assert sum(behind.values()) > 0
    for provider in fleet.providers:
        pair = labels(account=provider.account, provider=provider.provider)
        assert found[("runnerhub_runners_behind_newest_version", pair)] == behind[provider.account]


async def test_per_runner_series_only_when_asked(fleet: Fleet) -> None:
    """With per_runner, one runnerhub_runner_up per runner, 1 for online or degraded."""
    monitor = fleet.monitor(per_runner=True, health=False)
    async with monitor:
        await until(lambda: monitor.ready)
        found = samples(monitor.metrics.exposition().decode())
        runners = monitor.inventory().runners
    series = {
        dict(pairs)["runner"]: value
        for (name, pairs), value in found.items()
        if name == "runnerhub_runner_up"
    }
    assert len(series) == len(runners) == 49
    for runner in runners:
        up = runner.status.value in ("online", "degraded")
        assert series[runner.id] == (1.0 if up else 0.0)


async def test_failed_account_keeps_last_good_data_marked_stale(fleet: Fleet) -> None:
    """After a fault the account is down in metrics, stale on the page, its runners kept."""
    monitor = fleet.monitor(health=False)
    async with monitor:
        await until(lambda: monitor.ready)
        before = monitor.accounts()["acme-us"]
        fleet.sandbox.faults.add(Fault(FaultKind.STATUS, status=503, path="/api/v1/runners"))
        await until(lambda: monitor.accounts()["acme-us"].stale)
        after = monitor.accounts()["acme-us"]
        found = samples(monitor.metrics.exposition().decode())
    assert after.state is AccountState.STALE
    assert after.runners == before.runners
    assert after.last_success == before.last_success
    assert after.error is not None
    pair = labels(account="acme-us", provider="soda")
    assert found[("runnerhub_account_up", pair)] == 0.0
    total = sum(
        value
        for (name, pairs), value in found.items()
        if name == "runnerhub_runners" and dict(pairs)["account"] == "acme-us"
    )
    assert total == 12
    assert "acme-us" in monitor.inventory().errors


async def test_account_that_never_succeeded_is_down_and_ready_anyway(fleet: Fleet) -> None:
    """A failing account is tried, so the monitor becomes ready; it has no runners, state down."""
    fleet.sandbox.faults.add(Fault(FaultKind.STATUS, status=401, vendor="kubiya"))
    monitor = fleet.monitor()
    async with monitor:
        await until(lambda: monitor.ready)
        status = monitor.accounts()["kubiya-prod"]
        found = samples(monitor.metrics.exposition().decode())
    assert status.state is AccountState.DOWN
    assert status.runners == ()
    assert found[("runnerhub_account_up", labels(account="kubiya-prod", provider="kubiya"))] == 0
    assert not any(
        name == "runnerhub_account_last_success_timestamp_seconds"
        and dict(pairs)["account"] == "kubiya-prod"
        for name, pairs in found
    )


async def test_stop_cancels_requests_in_flight(fleet: Fleet) -> None:
    """stop() returns from run() while requests hang, and leaves no task behind."""
    fleet.sandbox.faults.add(Fault(FaultKind.STALL, vendor="soda", delay=60))
    monitor = fleet.monitor(interval=0.05)
    running = asyncio.create_task(monitor.run())
    await until(lambda: monitor.accounts()["kubiya-prod"].tried)
    monitor.stop()
    await running
    assert not monitor.accounts()["acme-eu"].tried
    leftover = [t for t in asyncio.all_tasks() if t.get_name().startswith("runnerhub-monitor")]
    assert leftover == []
    monitor.stop()  # a second stop is harmless


async def test_running_twice_at_once_is_refused(fleet: Fleet) -> None:
    """A monitor runs once at a time; after it stops it may run again."""
    monitor = fleet.monitor()
    async with monitor:
        with pytest.raises(RuntimeError, match="already running"):
            await monitor.run()
    async with monitor:
        await until(lambda: monitor.ready)


async def test_a_bug_in_a_refresh_stops_the_monitor(fleet: Fleet) -> None:
    """An exception that is not a RunnerHubError propagates out of run()."""

    class Broken(KubiyaProvider):
        def list_runners(self) -> Any:
            raise ZeroDivisionError("bug")

    broken = Broken("k", base_url=fleet.base_url, account="broken")
    monitor = FleetMonitor([broken], interval=0.05)
    with pytest.raises(ZeroDivisionError):
        await monitor.run()
    await broken.aclose()


def test_options_are_checked() -> None:
    """Intervals and shares out of range are usage errors, before anything runs."""
    from runnerhub.errors import UsageError

    for options in (
        {"interval": 0},
        {"budget_share": 0},
        {"budget_share": 1.5},
        {"concurrency": 0},
    ):
        with pytest.raises(UsageError):
            FleetMonitor([], **options)
    monitor = FleetMonitor([], interval=5)
    assert "interval=5" in repr(monitor)
    with pytest.raises(RuntimeError, match="already export"):
        monitor.metrics.watch(monitor)


# -- the request hooks -------------------------------------------------------------------------


def test_exporter_counts_what_the_hooks_report() -> None:
    """Each hook lands in its metric, labelled by vendor and operation, never by account."""
    metrics = MonitorMetrics()
    assert isinstance(metrics, Hooks)
    metrics.on_attempt("soda", "acme-eu", "list_runners", "200", 0.05)
    metrics.on_attempt("soda", "acme-eu", "list_runners", "429", 0.01)
    metrics.on_attempt("kubiya", "k", "runner_health", "error", 1.5)
    metrics.on_retry("soda", "acme-eu", "list_runners")
    metrics.on_rate_limited("soda", "acme-eu", "list_runners")
    metrics.on_limiter_wait("soda", "acme-eu", "list_runners", 0.0)
    metrics.on_limiter_wait("soda", "acme-eu", "list_runners", 3.0)
    found = samples(metrics.exposition().decode())
    soda = {"provider": "soda", "operation": "list_runners"}
    assert found[("runnerhub_requests_total", labels(**soda, code="200"))] == 1
    assert found[("runnerhub_requests_total", labels(**soda, code="429"))] == 1
    assert (
        found[
            (
                "runnerhub_requests_total",
                labels(provider="kubiya", operation="runner_health", code="error"),
            )
        ]
        == 1
    )
    assert found[("runnerhub_retries_total", labels(**soda))] == 1
    assert found[("runnerhub_rate_limited_total", labels(**soda))] == 1
    assert found[("runnerhub_limiter_wait_seconds_count", labels(**soda))] == 2
    assert found[("runnerhub_limiter_wait_seconds_sum", labels(**soda))] == 3.0
    assert found[("runnerhub_request_duration_seconds_count", labels(**soda))] == 2
    assert metrics.attempts("acme-eu", "list_runners") == 2
    assert all("acme-eu" not in dict(pairs).values() for _, pairs in found)


def test_two_exporters_do_not_share_state() -> None:
    """Each exporter has its own registry: nothing is registered globally."""
    first, second = MonitorMetrics(), MonitorMetrics()
    first.on_retry("soda", "a", "list_runners")
    assert b"runnerhub_retries_total{" in first.exposition()
    assert b"runnerhub_retries_total{" not in second.exposition()


# -- HTTP ----------------------------------------------------------------------------------


async def test_http_endpoints(fleet: Fleet) -> None:
    """/healthz at once; /readyz 503 then 200; /metrics and /api/inventory from the last refresh."""
    fleet.sandbox.faults.add(Fault(FaultKind.LATENCY, vendor="kubiya", delay=0.3, times=1))
    monitor = fleet.monitor(interval=0.3)
    async with aiohttp.ClientSession() as client, serve(monitor, port=0) as url:
        async with client.get(f"{url}/healthz") as response:
            assert response.status == 200
        async with client.get(f"{url}/readyz") as response:
            assert response.status == 503
            assert "not tried yet" in await response.text()
        async with monitor:
            await until(lambda: monitor.ready)
            async with client.get(f"{url}/readyz") as response:
                assert response.status == 200
            async with client.get(f"{url}/metrics") as response:
                assert response.status == 200
                assert response.headers["Content-Type"].startswith("text/plain")
                metrics = await response.text()
            async with client.get(f"{url}/api/inventory") as response:
                document = await response.json()
            async with client.get(f"{url}/") as response:
                page = await response.text()
                assert "Content-Security-Policy" in response.headers
    assert document["summary"]["runners"] == len(document["runners"]) == 49
    assert set(document["monitor"]["accounts"]) == {"acme-eu", "acme-us", "kubiya-prod"}
    assert document["monitor"]["accounts"]["acme-eu"]["state"] == "up"
    assert document["monitor"]["ready"] is True
    for secret in (PLANTED_SECRET, PLANTED_KEY, fleet.base_url):
        assert secret not in metrics
        assert secret not in page
        assert secret not in str(document)


async def test_inventory_document_has_the_ls_json_shape(fleet: Fleet) -> None:
    """/api/inventory is ``ls -o json``'s document plus a monitor section, cached per version."""
    from runnerhub._serialize import inventory_to_json

    monitor = fleet.monitor(health=False)
    async with aiohttp.ClientSession() as client, serve(monitor, port=0) as url, monitor:
        await until(lambda: monitor.ready)
        monitor.stop()
    async with serve(monitor, port=0) as url, aiohttp.ClientSession() as client:
        async with client.get(f"{url}/api/inventory") as response:
            first = await response.json()
        async with client.get(f"{url}/api/inventory") as response:
            second = await response.json()
    expected = inventory_to_json(monitor.inventory())
    assert set(first) == {"monitor", *expected}
    assert first == second
    assert first["runners"] == expected["runners"]


async def test_request_metrics_count_what_the_sandbox_received(fleet: Fleet) -> None:
    """Providers built with hooks=metrics: requests, 429s and retries equal the sandbox's log."""
    fleet.sandbox.faults.add(
        Fault(FaultKind.STATUS, status=429, retry_after="0", vendor="soda", times=1)
    )
    metrics = MonitorMetrics()
    org = fleet.eu
    options: dict[str, Any] = {"hooks": metrics, "retry": FAST_RETRY}
    provider = SodaProvider(
        org.api_key_id,
        org.api_key_secret,
        base_url=fleet.base_url,
        account="acme-eu",
        rate_limits=SODA_LIMITS,
        **options,
    )
    monitor = FleetMonitor([provider], metrics=metrics, limits={"acme-eu": SODA_LIMITS})
    async with provider, monitor:
        await until(lambda: monitor.ready)
    found = samples(metrics.exposition().decode())
    listing = {"provider": "soda", "operation": "list_runners"}
    sandbox = fleet.sandbox
    for code in (200, 429):
        sent = sandbox.count(vendor="soda", operation="list_runners", status=code)
        assert found[("runnerhub_requests_total", labels(**listing, code=str(code)))] == sent
    assert found[("runnerhub_rate_limited_total", labels(**listing))] == 1
    assert found[("runnerhub_retries_total", labels(**listing))] == 1
    assert found[("runnerhub_request_duration_seconds_count", labels(**listing))] == 2
    assert found[("runnerhub_limiter_wait_seconds_count", labels(**listing))] == 2


async def test_charged_requests_take_their_place_in_the_window() -> None:
    """After charging a full window's worth of requests, the next call waits for room."""
    budget = AccountBudget("a", {"list_runners": RateLimit(6, 3600)}, 0.5, LocalLimiter())
    await budget.charge("list_runners", 2)
    async with budget.spend("list_runners"):
        pass
    waiting = asyncio.create_task(budget.charge("list_runners", 1))
    for _ in range(10):
        await asyncio.sleep(0)
    assert not waiting.done()
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting


async def test_a_failing_account_is_logged_once(
    fleet: Fleet, caplog: pytest.LogCaptureFixture
) -> None:
    """One warning when an account starts failing, not one per retry at every interval."""
    fleet.sandbox.faults.add(Fault(FaultKind.STATUS, status=401, vendor="kubiya"))
    monitor = fleet.monitor(interval=0.05, health=False)
    attempts: set[object] = set()
    with caplog.at_level("DEBUG", logger="runnerhub"):
        async with monitor:

            def seen_three() -> bool:
                attempts.add(monitor.accounts()["kubiya-prod"].last_attempt)
                return len(attempts - {None}) >= 3

            await until(seen_three)
    failures = [r for r in caplog.records if "refresh of kubiya-prod failed" in r.getMessage()]
    assert len(failures) >= 3
    assert [r.levelname for r in failures].count("WARNING") == 1
    assert PLANTED_KEY not in caplog.text


def test_package_surface() -> None:
    """runnerhub.monitor lists its public names and refuses others."""
    import runnerhub.monitor as package

    assert dir(package) == sorted(package.__all__)
    assert all(getattr(package, name) is not None for name in package.__all__)
    with pytest.raises(AttributeError):
        _ = package.nothing_here


async def test_budget_share_follows_a_providers_rate_limits_override() -> None:
    """An account built with rate_limits= (as an accounts file can set) is budgeted from
    the limits the provider keeps, not from its vendor's defaults."""
    override = {"list_runners": RateLimit(8, 60)}
    provider = SodaProvider("key-id", "key-secret", account="tight", rate_limits=override)
    assert provider.rate_limits["list_runners"] == (RateLimit(8, 60),)
    assert provider.rate_limits["get_runner"] == SodaProvider.default_limits["get_runner"]
    monitor = FleetMonitor([provider], budget_share=0.5)
    budget = monitor._budgets["tight"]
    assert budget.rate("list_runners") == pytest.approx(4 / 60)
    await provider.aclose()
