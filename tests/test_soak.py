"""Fault soak: a 20,000-runner fleet inventory under seeded random faults, and a dead account.

Run with ``pytest tests/test_soak.py -s`` to see the figures each soak prints
(they are also attached to the JUnit report as properties); docs/hardening.md
records them from one run.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import attrs
import pytest

from runnerhub import (
    Inventory,
    KubiyaProvider,
    RateLimit,
    RetryPolicy,
    Runner,
    RunnerHub,
    SodaProvider,
    errors,
)
from runnerhub.provider import RunnerProvider
from runnerhub.sandbox import Fault, FaultKind, FaultSet, Sandbox

# Sandbox windows run 600x faster than the vendors': 60 list calls per 0.1 s.
TIME_SCALE = 600.0
SEED = 2035
SODA_ORGS: Mapping[str, int] = {"soda-eu": 10_000, "soda-us": 6_000, "soda-ap": 3_000}
KUBIYA_ORG = ("kubiya-prod", 1_000)
EXPECTED_RUNNERS = sum(SODA_ORGS.values()) + KUBIYA_ORG[1]

# Random faults on 10% of requests, every kind the issue names; explicit rules
# win first, so the Retry-After 429 rule adds ~2% on top.
FAULT_RATE = 0.10
RETRY_AFTER_429_RATE = 0.02
FAULT_KINDS = (FaultKind.STATUS, FaultKind.RESET, FaultKind.STALL, FaultKind.TRUNCATED)
FAULT_STATUSES = (500, 502, 503, 504, 429, 429)  # 429 drawn twice as often
STALL_SECONDS = 2.0
TIMEOUT = 0.5
POLICY = RetryPolicy(max_retries=8, base_delay=0.01, max_delay=0.1, max_total=30)
SOAK_BOUND_SECONDS = 120.0
DOWN_TIMEOUT = 0.2  # the dead account's per-attempt timeout, so a stalled one gives up sooner

SODA_LIMITS = {
    "list_runners": RateLimit(60, 60 / TIME_SCALE),
    "get_runner": RateLimit(1000, 60 / TIME_SCALE),
}
KUBIYA_LIMITS = {"*": (RateLimit(100, 60 / TIME_SCALE), RateLimit(20, 10 / TIME_SCALE))}


class TalliedFaults(FaultSet):
    """The sandbox's fault set, counting every fault it hands out by a readable label."""

    def __init__(self, seed: int) -> None:
        super().__init__(seed)
        self.tally: Counter[str] = Counter()

    def pick(self, vendor: Any, method: str, path: str) -> Fault | None:
        """The parent's choice, tallied: ``"503"``, ``"429 + Retry-After"``, ``"stall"``..."""
        fault = super().pick(vendor, method, path)
        if fault is not None:
            self.tally[_label(fault)] += 1
        return fault


def _label(fault: Fault) -> str:
    if fault.kind is not FaultKind.STATUS:
        return fault.kind.value
    if fault.status == 429:
        return "429 + Retry-After" if fault.retry_after is not None else "429 (no Retry-After)"
    return str(fault.status)


class PagedSoda(SodaProvider):
    """A Soda provider whose listing uses a fixed page size (the hub calls list_runners())."""

    page_size = 1000

    def list_runners(self, **options: Any) -> AsyncIterator[Runner]:
        """Soda's listing with this instance's page size unless one is given."""
        options.setdefault("page_size", self.page_size)
        return super().list_runners(**options)


def _options(base_url: str) -> dict[str, Any]:
    return {"base_url": base_url, "timeout": TIMEOUT, "retry": POLICY}


def _faulty_sandbox(seed: int) -> tuple[Sandbox, TalliedFaults]:
    sandbox = Sandbox(seed=seed, time_scale=TIME_SCALE)
    faults = TalliedFaults(seed)
    sandbox.faults = faults
    faults.add(
        Fault(FaultKind.STATUS, status=429, retry_after="0.05", probability=RETRY_AFTER_429_RATE)
    )
    faults.random(
        rate=FAULT_RATE,
        seed=seed,
        kinds=FAULT_KINDS,
        statuses=FAULT_STATUSES,
        stall=STALL_SECONDS,
    )
    return sandbox, faults


def _providers(sandbox: Sandbox, base_url: str, page_size: int) -> list[RunnerProvider]:
    providers: list[RunnerProvider] = []
    for name, org in sandbox.service("soda").orgs.items():
        soda = PagedSoda(
            org.api_key_id,
            org.api_key_secret,
            account=name,
            rate_limits=SODA_LIMITS,
            **_options(base_url),
        )
        soda.page_size = page_size
        providers.append(soda)
    for name, korg in sandbox.service("kubiya").orgs.items():
        providers.append(
            KubiyaProvider(
                korg.api_key, account=name, rate_limits=KUBIYA_LIMITS, **_options(base_url)
            )
        )
    return providers


def _expected_ids(sandbox: Sandbox) -> dict[str, set[str]]:
    return {
        name: set(org.runners)
        for vendor in ("soda", "kubiya")
        for name, org in sandbox.service(vendor).orgs.items()
    }


def _assert_exactly_once(inventory: Inventory, expected: Mapping[str, set[str]]) -> None:
    counts = Counter((r.account, r.id) for r in inventory.runners)
    repeated = [key for key, n in counts.items() if n > 1]
    assert not repeated, f"{len(repeated)} runners returned more than once, e.g. {repeated[:3]}"
    for account, ids in expected.items():
        got = {rid for (acc, rid) in counts if acc == account}
        assert got == ids, f"{account}: {len(ids - got)} missing, {len(got - ids)} unexpected"


@attrs.frozen
class SoakFigures:
    """What one soak run measured."""

    page_size: int
    requests: int
    client_attempts: int
    faults: Mapping[str, int]
    retries: int
    runners_returned: int
    runners_expected: int
    wall_seconds: float

    @property
    def injected(self) -> int:
        """Faults injected in total."""
        return sum(self.faults.values())

    def lines(self) -> Iterator[str]:
        """The figures as report lines."""
        share = self.injected / self.requests
        yield f"soak (page_size={self.page_size})"
        yield f"  requests received by the sandbox : {self.requests}"
        yield f"  attempts sent by the clients     : {self.client_attempts}"
        yield f"  faults injected                  : {self.injected} ({share:.1%})"
        for label, count in sorted(self.faults.items()):
            yield f"    {label:<28} : {count}"
        yield f"  retries                          : {self.retries}"
        returned = f"{self.runners_returned} / {self.runners_expected}"
        yield f"  runners returned / expected      : {returned}"
        yield f"  wall time                        : {self.wall_seconds:.2f} s"


@pytest.fixture
def report(
    record_property: Callable[[str, object], None], capsys: pytest.CaptureFixture[str]
) -> Iterator[list[SoakFigures]]:
    """Figures appended by a soak test are printed (visible with -s) and recorded."""
    figures: list[SoakFigures] = []
    yield figures
    for figure in figures:
        text = "\n".join(figure.lines())
        record_property(f"soak_{figure.page_size}", text)
        with capsys.disabled():
            print("\n" + text)  # noqa: T201 - the soak's figures are its report


@pytest.mark.slow
@pytest.mark.parametrize("page_size", [1000, 100])
async def test_fleet_inventory_survives_random_faults(
    page_size: int, report: list[SoakFigures]
) -> None:
    """20,000 runners over four accounts under >= 5% seeded faults: each runner exactly once."""
    sandbox, faults = _faulty_sandbox(SEED)
    for name, count in SODA_ORGS.items():
        sandbox.add_org("soda", name, runners=count)
    sandbox.add_org("kubiya", KUBIYA_ORG[0], runners=KUBIYA_ORG[1])
    expected = _expected_ids(sandbox)
    assert sum(map(len, expected.values())) == EXPECTED_RUNNERS >= 20_000

    async with sandbox.serve() as base_url:
        providers = _providers(sandbox, base_url, page_size)
        async with RunnerHub(providers) as hub:
            started = time.monotonic()
            async with asyncio.timeout(SOAK_BOUND_SECONDS):
                inventory = await hub.inventory()
            wall = time.monotonic() - started

    assert inventory.errors == {}
    _assert_exactly_once(inventory, expected)
    recorded = Counter(r.fault for r in sandbox.requests if r.fault is not None)
    injected = sum(recorded.values())
    assert injected == sum(faults.tally.values())  # every fault handed out was served
    assert injected >= 0.05 * len(sandbox.requests)
    figures = SoakFigures(
        page_size=page_size,
        requests=len(sandbox.requests),
        client_attempts=sum(p.stats.requests for p in providers),  # type: ignore[attr-defined]
        faults=dict(faults.tally),
        retries=sum(p.stats.retries for p in providers),  # type: ignore[attr-defined]
        runners_returned=len(inventory.runners),
        runners_expected=EXPECTED_RUNNERS,
        wall_seconds=wall,
    )
    report.append(figures)
    # Every fault is retried, except where aiohttp itself resends: a reset, and the request a
    # stall left on the wire, which the client keeps (and aiohttp may resend once the stall
    # drops it) after its own timeout and retry: a fault drawn there reaches nobody.
    assert figures.retries >= injected - faults.tally["reset"] - faults.tally["stall"]
    assert wall < 60.0
    if page_size == 100:
        # Enough requests that every kind the issue names was injected at least once.
        wanted = {
            "500",
            "502",
            "503",
            "504",
            "429 (no Retry-After)",
            "429 + Retry-After",
            "reset",
            "stall",
            "truncated",
        }
        assert wanted <= set(faults.tally)


def _closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@asynccontextmanager
async def _down_base_url(how: str) -> AsyncIterator[str]:
    """A base URL that never answers successfully: refused, 503 forever, or stalled."""
    if how == "refused":
        yield f"http://127.0.0.1:{_closed_port()}"
        return
    dead = Sandbox(seed=SEED + 1)
    if how == "503":
        dead.faults.add(Fault(FaultKind.STATUS, status=503))
    else:
        dead.faults.add(Fault(FaultKind.STALL, delay=STALL_SECONDS))
    async with dead.serve() as base_url:
        yield base_url


@pytest.mark.parametrize(
    ("how", "error_type"),
    [
        ("refused", errors.TransportError),
        ("503", errors.ServerError),
        ("stall", errors.TransportError),
    ],
)
async def test_an_account_that_stays_down_is_reported(
    how: str, error_type: type[errors.RunnerHubError]
) -> None:
    """One account down for good: the others complete under faults and its error is reported."""
    sandbox, _ = _faulty_sandbox(SEED + 2)
    sandbox.add_org("soda", "soda-eu", runners=2_000)
    sandbox.add_org("soda", "soda-us", runners=1_000)
    sandbox.add_org("kubiya", "kubiya-prod", runners=200)
    expected = _expected_ids(sandbox)
    async with AsyncExitStack() as stack:
        base_url = await stack.enter_async_context(sandbox.serve())
        down_url = await stack.enter_async_context(_down_base_url(how))
        providers = _providers(sandbox, base_url, 100)
        options = {**_options(down_url), "timeout": DOWN_TIMEOUT}
        down = SodaProvider("down-key", "down-secret", account="soda-down", **options)
        async with RunnerHub([*providers, down]) as hub:
            started = time.monotonic()
            async with asyncio.timeout(SOAK_BOUND_SECONDS):
                inventory = await hub.inventory()
            wall = time.monotonic() - started

    assert set(inventory.errors) == {"soda-down"}
    error = inventory.errors["soda-down"]
    assert type(error) is error_type
    assert error.account == "soda-down"
    assert error.operation == "list_runners"
    assert inventory.by_account()["soda-down"] == 0
    _assert_exactly_once(inventory, expected)
    assert down.stats.retries == POLICY.max_retries  # it was tried as often as allowed
    # Nine attempts of at most DOWN_TIMEOUT each, plus back-offs of at most max_delay.
    assert wall < (POLICY.max_retries + 1) * (DOWN_TIMEOUT + POLICY.max_delay) + 5.0
