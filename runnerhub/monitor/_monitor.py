"""FleetMonitor: every account refreshed on its own schedule, within a share of its budget.

Scheduling: account ``i`` of ``n`` is first due at ``(i + u) / n * interval``
with ``u`` uniform in [0, 1) (stratified jitter: the accounts are spread evenly
over the interval, never two on one instant by construction), then every
``Cadence.list_seconds`` after its previous due time. One loop pops due
accounts off a heap and starts their listings, at most ``concurrency`` at a
time; a listing that overruns its slot is next due when it finishes, so an
account never overlaps itself. Health passes (vendors with
``Capability.HEALTH_CHECK``) run beside the listings, one per account at a
time and at most ``concurrency`` health calls in flight overall, every
``Cadence.health_seconds``: less often than listings when the budget share
cannot pay for one health call per runner per interval.

Failures: a :class:`runnerhub.errors.RunnerHubError` marks the account
stale (its last good runners are kept); any other exception is a bug and
stops the monitor.
"""

from __future__ import annotations

import asyncio
import functools
import heapq
import logging
import math
import random
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Self

import attrs

from .. import errors
from ..fleet import HealthFailure, Inventory, RunnerHub, VersionDrift
from ..limits import LocalLimiter
from ..models import Runner, RunnerStatus
from ..provider import Capability, RunnerProvider, SupportsHealth, SupportsRateLimits
from ._budget import AccountBudget, Limits
from ._metrics import MonitorMetrics
from ._state import AccountStatus

__all__ = ["FleetMonitor"]

logger = logging.getLogger("runnerhub")

_LIST = "list_runners"
_HEALTH = "runner_health"


class FleetMonitor:
    """Keeps a fleet's inventory fresh in the background; see the module docstring.

    Run it inside an asyncio application with ``async with monitor:`` (it
    runs while the block does) or ``await monitor.run()`` (until
    :meth:`stop` or cancellation). The monitor never closes the hub or the
    providers it was given.

    Args:
        source: A :class:`RunnerHub`, or providers (labels must be unique).
        interval: Seconds between refreshes of an account, when its budget allows.
        budget_share: Fraction of each vendor limit the monitor may use, in (0, 1].
        per_runner: Also export one ``runnerhub_runner_up`` series per runner.
        health: Run health passes where the vendor offers them.
        concurrency: Listings in flight at once over all accounts, and likewise
            health calls.
        health_concurrency: Health calls in flight per account.
        limits: Limits by account label, replacing the ones the provider keeps
            (its vendor's, with any ``rate_limits=`` override applied).
        metrics: The exporter; by default a new :class:`MonitorMetrics`. Pass the
            same instance as ``hooks=`` to the providers to count their requests.
        seed: Seeds the schedule's jitter (tests).
        clock: Monotonic clock in seconds.

    Raises:
        UsageError: for an interval or share out of range, or duplicate labels.
    """

    def __init__(
        self,
        source: RunnerHub | Iterable[RunnerProvider],
        *,
        interval: float = 60.0,
        budget_share: float = 0.5,
        per_runner: bool = False,
        health: bool = True,
        concurrency: int = 64,
        health_concurrency: int = 4,
        limits: Mapping[str, Mapping[str, Limits]] | None = None,
        metrics: MonitorMetrics | None = None,
        seed: int | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not interval > 0 or math.isinf(interval):
            raise errors.UsageError(f"interval must be > 0 seconds, got {interval!r}")
        if not 0 < budget_share <= 1:
            raise errors.UsageError(f"budget_share must be in (0, 1], got {budget_share!r}")
        if concurrency < 1 or health_concurrency < 1:
            raise errors.UsageError("concurrency and health_concurrency must be at least 1")
        self.hub = source if isinstance(source, RunnerHub) else RunnerHub(source)
        self.interval = float(interval)
        self.budget_share = float(budget_share)
        self.health = health
        self.metrics = metrics if metrics is not None else MonitorMetrics()
        self.metrics.watch(self, per_runner=per_runner)
        self._concurrency = concurrency
        self._health_concurrency = health_concurrency
        self._clock = clock
        self._rng = random.Random(seed)  # noqa: S311 - schedule jitter, not security
        self._limiter = LocalLimiter(clock=clock)
        overrides = limits or {}
        self._providers = {p.account: p for p in self.hub.providers}
        self._budgets = {
            label: AccountBudget(
                label,
                overrides.get(label, _declared_limits(provider)),
                self.budget_share,
                self._limiter,
            )
            for label, provider in self._providers.items()
        }
        self._status = {
            label: AccountStatus(label, p.provider) for label, p in self._providers.items()
        }
        # Health statuses of each account's last pass, by runner id.
        self._health: dict[str, dict[str, RunnerStatus]] = {}
        self._health_due: dict[str, float] = {}
        self._health_tasks: dict[str, asyncio.Task[None]] = {}
        self._stopping: asyncio.Event | None = None
        self._wake = asyncio.Event()
        self._health_gate = asyncio.Semaphore(concurrency)
        self._failed: list[BaseException] = []
        self._runner: asyncio.Task[None] | None = None
        self._version = 0
        self._snapshot: tuple[int, Inventory] | None = None
        self._drift: tuple[int, Mapping[tuple[str, str], tuple[VersionDrift, ...]]] | None = None

    def __repr__(self) -> str:
        return (
            f"<FleetMonitor accounts={len(self._providers)} interval={self.interval:g} "
            f"budget_share={self.budget_share:g}>"
        )

    # -- what it knows --------------------------------------------------------------------

    @property
    def version(self) -> int:
        """Increases whenever an account's status changes."""
        return self._version

    def accounts(self) -> Mapping[str, AccountStatus]:
        """Every account's current status, by label, in the hub's order."""
        return dict(self._status)

    @property
    def ready(self) -> bool:
        """True once every account has been tried at least once."""
        return all(status.tried for status in self._status.values())

    def inventory(self) -> Inventory:
        """The fleet as last seen: each account's last good runners.

        A stale account's runners are included and its last error is in
        ``errors``; an account not yet tried counts in ``accounts`` with no runners.
        """
        cached = self._snapshot
        if cached is not None and cached[0] == self._version:
            return cached[1]
        statuses = list(self._status.values())
        times = [s.last_attempt for s in statuses if s.last_attempt is not None]
        inventory = Inventory(
            runners=tuple(r for s in statuses for r in s.runners),
            errors={s.account: s.error for s in statuses if s.error is not None},
            accounts=tuple(s.account for s in statuses),
            taken_at=min(times) if times else datetime.now(UTC),
            duration_seconds=0.0,
            health_failures=tuple(f for s in statuses for f in s.health_failures),
        )
        self._snapshot = (self._version, inventory)
        return inventory

    def version_drift(self) -> Mapping[tuple[str, str], tuple[VersionDrift, ...]]:
        """Runners behind the newest version of their vendor, by (account, runner id)."""
        cached = self._drift
        if cached is not None and cached[0] == self._version:
            return cached[1]
        found: dict[tuple[str, str], list[VersionDrift]] = {}
        for drift in self.inventory().version_drift():
            found.setdefault((drift.runner.account, drift.runner.id), []).append(drift)
        result = {key: tuple(value) for key, value in found.items()}
        self._drift = (self._version, result)
        return result

    def _update(self, label: str, **changes: Any) -> AccountStatus:
        status = self._status[label] = attrs.evolve(self._status[label], **changes)
        self._version += 1
        return status

    # -- running ----------------------------------------------------------------------------

    async def run(self) -> None:
        """Refresh every account on its schedule until :meth:`stop` or cancellation.

        In-flight requests are cancelled when it stops.

        Raises:
            RuntimeError: when the monitor is already running.
        """
        if self._stopping is not None:
            raise RuntimeError("the monitor is already running")
        stopping = self._stopping = asyncio.Event()
        self._failed = []
        self._wake = asyncio.Event()
        self._health_gate = asyncio.Semaphore(self._concurrency)
        listings: set[asyncio.Task[None]] = set()
        try:
            await self._schedule(stopping, listings)
        finally:
            tasks = [*listings, *self._health_tasks.values()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self._health_tasks.clear()
            self._stopping = None
        if self._failed:
            raise self._failed[0]

    def _failure(self, task: asyncio.Task[None]) -> bool:
        # A task's end: True if it was cancelled or failed, and a failure (a bug) stops run().
        self._wake.set()
        if task.cancelled():
            return True
        exc = task.exception()
        if exc is not None:
            self._failed.append(exc)
        return exc is not None

    def stop(self) -> None:
        """Ask :meth:`run` to return; safe to call from a signal handler, and more than once."""
        if self._stopping is not None:
            self._stopping.set()

    async def _schedule(self, stopping: asyncio.Event, listings: set[asyncio.Task[None]]) -> None:
        labels = list(self._providers)
        start = self._clock()
        count = len(labels)
        heap = [
            (start + (i + self._rng.random()) / count * self.interval, i, label)
            for i, label in enumerate(labels)
        ]
        heapq.heapify(heap)
        wake = self._wake

        def finished(task: asyncio.Task[None], label: str, due: float, order: int) -> None:
            listings.discard(task)
            if self._failure(task):
                return
            period = self._status[label].list_seconds or self.interval
            heapq.heappush(heap, (max(due + period, self._clock()), order, label))

        while not stopping.is_set() and not self._failed:
            if len(listings) >= self._concurrency or not heap:
                wait = math.inf
            else:
                wait = heap[0][0] - self._clock()
            if wait > 0:
                # Callbacks run only while we await, so nothing is missed between the
                # computation above and this clear.
                wake.clear()
                await _first(stopping, wake, seconds=wait)
                continue
            due, order, label = heapq.heappop(heap)
            task = asyncio.create_task(self._refresh(label), name=f"runnerhub-monitor:{label}")
            listings.add(task)
            task.add_done_callback(functools.partial(finished, label=label, due=due, order=order))

    async def __aenter__(self) -> Self:
        self._runner = asyncio.create_task(self.run(), name="runnerhub-monitor")
        await asyncio.sleep(0)  # let run() start, so stop() works at once
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        runner, self._runner = self._runner, None
        if runner is None:
            return
        self.stop()
        if exc is not None:
            runner.cancel()
        try:
            await runner
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise

    # -- one account ----------------------------------------------------------------------

    async def _refresh(self, label: str) -> None:
        provider = self._providers[label]
        budget = self._budgets[label]
        attempted = datetime.now(UTC)
        before = self.metrics.attempts(label, _LIST)
        runners: list[Runner] = []
        try:
            async with budget.spend(_LIST):
                async for runner in provider.list_runners():
                    runners.append(runner)
        except errors.RunnerHubError as exc:
            # Said once when an account starts failing, not at every interval after.
            was_up = self._status[label].up or not self._status[label].tried
            level = logging.WARNING if was_up else logging.DEBUG
            logger.log(level, "monitor: refresh of %s failed: %s", label, exc)
            self._update(label, up=False, tried=True, last_attempt=attempted, error=exc)
            await budget.charge(_LIST, self.metrics.attempts(label, _LIST) - before - 1)
            return
        list_cost = max(1, self.metrics.attempts(label, _LIST) - before)
        checks = (
            self.health
            and isinstance(provider, SupportsHealth)
            and Capability.HEALTH_CHECK in provider.capabilities
        )
        cadence = budget.cadence(
            self.interval, list_cost=list_cost, health_cost=len(runners) if checks else 0
        )
        self._update(
            label,
            runners=self._with_health(label, runners),
            up=True,
            tried=True,
            last_success=attempted,
            last_attempt=attempted,
            error=None,
            list_seconds=cadence.list_seconds,
            health_seconds=cadence.health_seconds,
        )
        await budget.charge(_LIST, list_cost - 1)
        now = self._clock()
        if (
            checks
            and runners
            and label not in self._health_tasks
            and now >= self._health_due.get(label, now)
            and not math.isinf(cadence.health_seconds)
        ):
            self._health_due[label] = now + cadence.health_seconds
            task = asyncio.create_task(
                self._health_pass(label, [r.id for r in runners]),
                name=f"runnerhub-monitor-health:{label}",
            )
            self._health_tasks[label] = task
            task.add_done_callback(self._health_done)

    def _health_done(self, task: asyncio.Task[None]) -> None:
        label = task.get_name().partition(":")[2]
        self._health_tasks.pop(label, None)
        self._failure(task)

    def _with_health(self, label: str, runners: Iterable[Runner]) -> tuple[Runner, ...]:
        health = self._health.get(label)
        if not health:
            return tuple(runners)
        return tuple(attrs.evolve(r, status=health[r.id]) if r.id in health else r for r in runners)

    async def _health_pass(self, label: str, runner_ids: list[str]) -> None:
        provider = self._providers[label]
        if not isinstance(provider, SupportsHealth):
            return
        budget = self._budgets[label]
        statuses: dict[str, RunnerStatus] = {}
        failures: list[HealthFailure] = []
        before = self.metrics.attempts(label, _HEALTH)
        # Workers share one iterator: next() never awaits, so each id is taken once.
        pending = iter(runner_ids)

        async def worker() -> None:
            for runner_id in pending:
                # The account's budget first: a call waiting for it holds no global slot.
                async with budget.spend(_HEALTH), self._health_gate:
                    try:
                        health = await provider.runner_health(runner_id)
                    except errors.RunnerHubError as exc:
                        failures.append(HealthFailure(label, runner_id, exc))
                        statuses[runner_id] = RunnerStatus.UNKNOWN
                    else:
                        statuses[runner_id] = health.status

        async with asyncio.TaskGroup() as group:
            for _ in range(min(self._health_concurrency, len(runner_ids))):
                group.create_task(worker())
        self._health[label] = statuses
        status = self._status[label]
        self._update(
            label,
            runners=self._with_health(label, status.runners),
            health_checked_at=datetime.now(UTC),
            health_failures=tuple(failures),
        )
        extra = self.metrics.attempts(label, _HEALTH) - before - len(runner_ids)
        await budget.charge(_HEALTH, extra)


def _declared_limits(provider: RunnerProvider) -> Mapping[str, Limits]:
    # The limits the provider keeps (its vendor's, with any rate_limits= override); a
    # provider that does not say is not limited by the monitor either.
    return provider.rate_limits if isinstance(provider, SupportsRateLimits) else {}


async def _first(stopping: asyncio.Event, wake: asyncio.Event, *, seconds: float) -> None:
    # Wait until either event is set or ``seconds`` pass.
    waiters = [asyncio.ensure_future(stopping.wait()), asyncio.ensure_future(wake.wait())]
    try:
        await asyncio.wait(
            waiters,
            timeout=None if math.isinf(seconds) else seconds,
            return_when=asyncio.FIRST_COMPLETED,
        )
    finally:
        for waiter in waiters:
            waiter.cancel()
        await asyncio.gather(*waiters, return_exceptions=True)
