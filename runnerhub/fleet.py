"""The hub: many accounts of many vendors, fetched concurrently, with partial results.

Accounts are fetched concurrently, at most ``max_concurrency`` at a time, by
worker tasks inside one :class:`asyncio.TaskGroup`: with fewer accounts than
that, the wall time is close to the slowest account; cancelling the caller
cancels every request. A :class:`runnerhub.errors.RunnerHubError` from one
account is recorded against its label and never loses the others; any other
exception is a bug and propagates.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from collections import Counter
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from types import TracebackType
from typing import Self

import attrs

from . import errors
from ._pool import SessionPool
from .inventory import HealthFailure, Inventory, VersionDrift
from .limits import Limiter
from .models import Runner, RunnerHealth, RunnerStatus
from .provider import Capability, RunnerProvider, SupportsHealth, SupportsStats

__all__ = [
    "AccountProgress",
    "FleetEvent",
    "FleetEventKind",
    "HealthFailure",
    "Inventory",
    "PartialFailure",
    "RunnerHub",
    "VersionDrift",
]
# HealthFailure, Inventory and VersionDrift live in runnerhub.inventory; they are
# re-exported here because the hub returns them.

logger = logging.getLogger("runnerhub")

_STREAM_BUFFER = 1000
DEFAULT_MAX_CONCURRENCY = 64
_PROGRESS_EVERY = 100  # runners between progress reports while listing


@attrs.frozen
class AccountProgress:
    """Where one account's fetch stands (for progress displays).

    Attributes:
        account: The account label.
        runners: Runners received so far.
        phase: ``"listing"``, ``"health"`` or ``"done"``.
        health_done: Health calls finished (health phase).
        health_total: Health calls to make (health phase).
        error: The account's error, if it failed.
        requests: Requests sent so far (retries included), when the provider counts them.
        waiting: Requests waiting for a rate-limit slot right now.
    """

    account: str
    runners: int
    phase: str = "listing"
    health_done: int = 0
    health_total: int = 0
    error: errors.RunnerHubError | None = None
    requests: int = 0
    waiting: int = 0

    @property
    def done(self) -> bool:
        """True once the account finished, successfully or not."""
        return self.phase == "done"


ProgressCallback = Callable[[AccountProgress], None]


class FleetEventKind(enum.Enum):
    """What :meth:`RunnerHub.watch` noticed."""

    ADDED = "added"
    REMOVED = "removed"
    STATUS_CHANGED = "status_changed"
    VERSION_CHANGED = "version_changed"
    ACCOUNT_FAILED = "account_failed"


@attrs.frozen
class FleetEvent:
    """One change between two snapshots.

    Attributes:
        kind: What changed.
        account: The account it happened in.
        runner: The runner now (or, for REMOVED, as last seen); None for ACCOUNT_FAILED.
        previous: The runner as it was, for changes.
        error: The account's error, for ACCOUNT_FAILED.
    """

    kind: FleetEventKind
    account: str
    runner: Runner | None = None
    previous: Runner | None = None
    error: errors.RunnerHubError | None = None


class PartialFailure(errors.RunnerHubError):
    """Raised at the end of :meth:`RunnerHub.stream` when accounts failed and no
    ``errors`` dict was given to collect them. ``errors`` maps labels to errors."""

    def __init__(self, failed: Mapping[str, errors.RunnerHubError]) -> None:
        super().__init__(f"{len(failed)} account(s) failed: {', '.join(sorted(failed))}")
        self.errors = dict(failed)


class RunnerHub:
    """Many providers, one inventory.

    Args:
        providers: One provider per account; labels (``provider.account``) must be unique.
        max_concurrency: Accounts fetched at once by :meth:`inventory` and
            :meth:`stream`; the others wait their turn, so 10,000 accounts never
            hold 10,000 tasks and their buffers at once.
        health_concurrency: Health calls in flight per account (the providers'
            rate limits still apply beneath this).
        limiters: Limiters the hub owns and closes (``runnerhub.config.load_hub`` passes them).
        pool: A :class:`~runnerhub.SessionPool` the hub owns and closes, typically
            the one its providers were given as ``session``.

    Raises:
        UsageError: when two providers share an account label, or a concurrency is below 1.
    """

    def __init__(
        self,
        providers: Iterable[RunnerProvider],
        *,
        max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
        health_concurrency: int = 8,
        limiters: Sequence[Limiter] = (),
        pool: SessionPool | None = None,
    ) -> None:
        self.providers: tuple[RunnerProvider, ...] = tuple(providers)
        self._index = {p.account: number for number, p in enumerate(self.providers)}
        if len(self._index) != len(self.providers):
            labels = Counter(p.account for p in self.providers)
            duplicates = sorted(label for label, count in labels.items() if count > 1)
            raise errors.UsageError(f"account labels must be unique: {duplicates}")
        if max_concurrency < 1:
            raise errors.UsageError("max_concurrency must be at least 1")
        if health_concurrency < 1:
            raise errors.UsageError("health_concurrency must be at least 1")
        self._max_concurrency = max_concurrency
        self._health_concurrency = health_concurrency
        self._limiters = tuple(limiters)
        self._pool = pool

    def __repr__(self) -> str:
        return f"<RunnerHub accounts={[p.account for p in self.providers]}>"

    def select(
        self, *, accounts: Iterable[str] | None = None, providers: Iterable[str] | None = None
    ) -> tuple[RunnerProvider, ...]:
        """The providers matching the given account labels and vendor names (all if None).

        Raises:
            UsageError: for an account label the hub does not have.
        """
        chosen = self.providers
        if accounts is not None:
            wanted = set(accounts)
            unknown = wanted - self._index.keys()
            if unknown:
                raise errors.UsageError(f"unknown account(s): {sorted(unknown)}")
            # Found by label, in hub order: a monitor may select one account at a time.
            chosen = tuple(self.providers[i] for i in sorted(self._index[a] for a in wanted))
        if providers is not None:
            vendors = set(providers)
            chosen = tuple(p for p in chosen if p.provider in vendors)
        return chosen

    def get(self, account: str) -> RunnerProvider:
        """The provider of one account label.

        Raises:
            UsageError: when there is no such account.
        """
        return self.select(accounts=[account])[0]

    async def inventory(
        self,
        *,
        health: bool = False,
        accounts: Iterable[str] | None = None,
        providers: Iterable[str] | None = None,
        progress: ProgressCallback | None = None,
    ) -> Inventory:
        """Fetch every account, ``max_concurrency`` at a time, and return one snapshot.

        Args:
            health: Also call each runner's health endpoint where the vendor
                has one (``Capability.HEALTH_CHECK``) and use its status.
            accounts: Only these account labels.
            providers: Only these vendors.
            progress: Called with an :class:`AccountProgress` as accounts advance.
        """
        chosen = self.select(accounts=accounts, providers=providers)
        taken_at = datetime.now(UTC)
        started = time.monotonic()
        results: dict[str, list[Runner]] = {}
        failed: dict[str, errors.RunnerHubError] = {}
        health_failures: list[HealthFailure] = []

        async def fetch(provider: RunnerProvider) -> None:
            runners: list[Runner] = []
            try:
                if progress is not None:
                    progress(_progress(provider, 0))
                async for runner in provider.list_runners():
                    runners.append(runner)
                    if progress is not None and len(runners) % _PROGRESS_EVERY == 0:
                        progress(_progress(provider, len(runners)))
                if health and Capability.HEALTH_CHECK in provider.capabilities:
                    runners = await self._with_health(
                        provider, runners, health_failures, progress
                    )
            except errors.RunnerHubError as exc:
                failed[provider.account] = exc
                logger.warning("inventory of %s failed: %s", provider.account, exc)
                if progress is not None:
                    progress(_progress(provider, len(runners), phase="done", error=exc))
                return
            results[provider.account] = runners
            if progress is not None:
                progress(_progress(provider, len(runners), phase="done"))

        await self._each(chosen, fetch, "inventory")
        runners = tuple(r for p in chosen for r in results.get(p.account, ()))
        return Inventory(
            runners=runners,
            errors={p.account: failed[p.account] for p in chosen if p.account in failed},
            accounts=tuple(p.account for p in chosen),
            taken_at=taken_at,
            duration_seconds=time.monotonic() - started,
            health_failures=tuple(health_failures),
        )

    async def _each(
        self,
        providers: Sequence[RunnerProvider],
        work: Callable[[RunnerProvider], Awaitable[None]],
        what: str,
    ) -> None:
        """Run ``work`` on every provider, at most ``max_concurrency`` at a time."""
        # A few workers take accounts from one iterator in turn (the event loop runs
        # one at a time, so each account is taken once): no task, frame or buffer
        # exists for an account that is not being fetched.
        pending = iter(providers)

        async def worker() -> None:
            for provider in pending:
                await work(provider)

        async with asyncio.TaskGroup() as group:
            for number in range(min(self._max_concurrency, len(providers))):
                group.create_task(worker(), name=f"runnerhub:{what}-{number}")

    async def _with_health(
        self,
        provider: RunnerProvider,
        runners: list[Runner],
        failures: list[HealthFailure],
        progress: ProgressCallback | None,
    ) -> list[Runner]:
        if not isinstance(provider, SupportsHealth):
            return runners
        runner_health = provider.runner_health
        gate = asyncio.Semaphore(self._health_concurrency)
        finished = 0

        def report() -> None:
            if progress is not None:
                progress(
                    _progress(
                        provider,
                        len(runners),
                        phase="health",
                        health_done=finished,
                        health_total=len(runners),
                    )
                )

        async def check(runner: Runner) -> Runner:
            nonlocal finished
            async with gate:
                try:
                    health: RunnerHealth = await runner_health(runner.id)
                except errors.RunnerHubError as exc:
                    failures.append(HealthFailure(provider.account, runner.id, exc))
                    return attrs.evolve(runner, status=RunnerStatus.UNKNOWN)
                finally:
                    finished += 1
                    report()
            return attrs.evolve(runner, status=health.status)

        report()

        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(check(runner)) for runner in runners]
        return [task.result() for task in tasks]

    async def stream(
        self,
        *,
        accounts: Iterable[str] | None = None,
        providers: Iterable[str] | None = None,
        collect_errors: dict[str, errors.RunnerHubError] | None = None,
    ) -> AsyncGenerator[Runner, None]:
        """Yield runners as they arrive, across accounts, holding at most a bounded buffer.

        Args:
            accounts: Only these account labels.
            providers: Only these vendors.
            collect_errors: A dict that receives failed accounts' errors. Without it,
                :class:`PartialFailure` is raised after the last runner if any
                account failed.
        """
        chosen = self.select(accounts=accounts, providers=providers)
        queue: asyncio.Queue[Runner | None] = asyncio.Queue(_STREAM_BUFFER)
        failed: dict[str, errors.RunnerHubError] = {} if collect_errors is None else collect_errors
        pending = iter(chosen)

        async def produce() -> None:
            # Accounts are taken in turn from one iterator, max_concurrency at a time.
            try:
                for provider in pending:
                    try:
                        async for runner in provider.list_runners():
                            await queue.put(runner)
                    except errors.RunnerHubError as exc:
                        failed[provider.account] = exc
                        logger.warning("stream of %s failed: %s", provider.account, exc)
            finally:
                # The end-of-worker marker, unless the stream is being torn down:
                # then nobody reads the queue and a full one would block forever.
                task = asyncio.current_task()
                if task is None or not task.cancelling():
                    await queue.put(None)

        tasks = [
            asyncio.create_task(produce(), name=f"runnerhub:stream-{number}")
            for number in range(min(self._max_concurrency, len(chosen)))
        ]
        try:
            remaining = len(tasks)
            while remaining:
                item = await queue.get()
                if item is None:
                    remaining -= 1
                else:
                    yield item
            for task in tasks:
                await task  # surface a producer's unexpected exception
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        if failed and collect_errors is None:
            raise PartialFailure(failed)

    async def watch(
        self,
        interval: float = 60.0,
        *,
        health: bool = False,
        initial: bool = True,
        accounts: Iterable[str] | None = None,
    ) -> AsyncGenerator[FleetEvent, None]:
        """Take an inventory every ``interval`` seconds and yield what changed.

        The first snapshot yields ADDED for every runner when ``initial`` is
        true. A failed account yields ACCOUNT_FAILED and keeps its last known
        runners (they are not reported REMOVED).
        """
        known: dict[tuple[str, str], Runner] = {}
        first = True
        labels = list(accounts) if accounts is not None else None
        while True:
            snapshot = await self.inventory(health=health, accounts=labels)
            for label, error in snapshot.errors.items():
                yield FleetEvent(FleetEventKind.ACCOUNT_FAILED, label, error=error)
            current = {(r.account, r.id): r for r in snapshot.runners}
            for key, runner in current.items():
                before = known.get(key)
                if before is None:
                    if not first or initial:
                        yield FleetEvent(FleetEventKind.ADDED, runner.account, runner)
                elif before.status != runner.status:
                    yield FleetEvent(FleetEventKind.STATUS_CHANGED, runner.account, runner, before)
                elif before.versions != runner.versions:
                    yield FleetEvent(
                        FleetEventKind.VERSION_CHANGED, runner.account, runner, before
                    )
            for key, runner in list(known.items()):
                if key not in current and runner.account not in snapshot.errors:
                    yield FleetEvent(FleetEventKind.REMOVED, runner.account, runner)
                    del known[key]
            known.update(current)
            first = False
            await asyncio.sleep(interval)

    async def aclose(self) -> None:
        """Close every provider, then the limiters and the connection pool the hub owns."""
        results = await asyncio.gather(
            *(p.aclose() for p in self.providers), return_exceptions=True
        )
        await asyncio.gather(*(lim.aclose() for lim in self._limiters), return_exceptions=True)
        if self._pool is not None:
            await self._pool.aclose()
        for result in results:
            if isinstance(result, BaseException) and not isinstance(result, Exception):
                raise result

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()



def _progress(
    provider: RunnerProvider,
    runners: int,
    *,
    phase: str = "listing",
    health_done: int = 0,
    health_total: int = 0,
    error: errors.RunnerHubError | None = None,
) -> AccountProgress:
    stats = provider.stats if isinstance(provider, SupportsStats) else None
    return AccountProgress(
        account=provider.account,
        runners=runners,
        phase=phase,
        health_done=health_done,
        health_total=health_total,
        error=error,
        requests=stats.requests if stats is not None else 0,
        waiting=stats.waiting if stats is not None else 0,
    )
