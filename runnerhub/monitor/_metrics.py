"""Prometheus metrics: the providers' requests (as :class:`runnerhub.hooks.Hooks`) and the fleet.

Everything lives in the exporter's own :class:`prometheus_client.CollectorRegistry`;
nothing is registered globally, so two monitors in one process never mix.
Request metrics are labelled by vendor and operation, never by account (their
number would grow with the fleet) and never by URL; fleet gauges are computed
from the monitor's state at scrape time, so an account or runner that goes
away leaves no series behind.
"""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from ..hooks import Hooks
from ..models import RunnerStatus

if TYPE_CHECKING:
    from ._monitor import FleetMonitor

__all__ = ["METRIC_NAMES", "MonitorMetrics"]

# Limiter waits run from nothing (a free slot) to minutes (a full Kubiya window).
_WAIT_BUCKETS = (0.0, 0.005, 0.05, 0.25, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
_UP_STATUSES = frozenset({RunnerStatus.ONLINE, RunnerStatus.DEGRADED})

#: Every metric family the exporter can expose (``runnerhub_runner_up`` only with per_runner).
METRIC_NAMES = (
    "runnerhub_account_last_success_timestamp_seconds",
    "runnerhub_account_up",
    "runnerhub_limiter_wait_seconds",
    "runnerhub_rate_limited_total",
    "runnerhub_request_duration_seconds",
    "runnerhub_requests_total",
    "runnerhub_retries_total",
    "runnerhub_runner_up",
    "runnerhub_runners",
    "runnerhub_runners_behind_newest_version",
)


class MonitorMetrics(Hooks):
    """The Prometheus exporter: pass it as ``hooks=`` to providers, and to a FleetMonitor.

    Args:
        registry: Where the metrics are registered (default: a new registry).
    """

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        labels = ("provider", "operation")
        self._requests = Counter(
            "runnerhub_requests",
            "HTTP attempts sent, by vendor, operation and status (error: no status).",
            (*labels, "code"),
            registry=self.registry,
        )
        self._retries = Counter(
            "runnerhub_retries", "Attempts that were retries.", labels, registry=self.registry
        )
        self._rate_limited = Counter(
            "runnerhub_rate_limited",
            "Rate-limit refusals received (429s and rate-limit 403s).",
            labels,
            registry=self.registry,
        )
        self._waits = Histogram(
            "runnerhub_limiter_wait_seconds",
            "Time requests waited for a rate-limit slot.",
            labels,
            buckets=_WAIT_BUCKETS,
            registry=self.registry,
        )
        self._durations = Histogram(
            "runnerhub_request_duration_seconds",
            "Time of each HTTP attempt on the wire.",
            labels,
            registry=self.registry,
        )
        # Attempts by (account, operation): what the monitor charges its budget; not exported.
        self._attempts: Tally[tuple[str, str]] = Tally()
        self._fleet: _FleetCollector | None = None

    def watch(self, monitor: FleetMonitor, *, per_runner: bool = False) -> None:
        """Export ``monitor``'s fleet gauges (once; a second monitor is refused).

        Raises:
            RuntimeError: when the exporter already watches a monitor.
        """
        if self._fleet is not None:
            raise RuntimeError("these metrics already export a monitor")
        self._fleet = _FleetCollector(monitor, per_runner=per_runner)
        self.registry.register(self._fleet)

    def attempts(self, account: str, operation: str) -> int:
        """HTTP attempts seen so far for one account's operation."""
        return self._attempts[(account, operation)]

    def exposition(self) -> bytes:
        """The metrics in Prometheus' text format."""
        return generate_latest(self.registry)

    # -- Hooks ------------------------------------------------------------------------------

    def on_attempt(
        self, provider: str, account: str, operation: str, code: str, seconds: float
    ) -> None:
        """Count an attempt and time it."""
        self._attempts[(account, operation)] += 1
        self._requests.labels(provider, operation, code).inc()
        self._durations.labels(provider, operation).observe(seconds)

    def on_retry(self, provider: str, account: str, operation: str) -> None:
        """Count a retry."""
        self._retries.labels(provider, operation).inc()

    def on_rate_limited(self, provider: str, account: str, operation: str) -> None:
        """Count a rate-limit refusal."""
        self._rate_limited.labels(provider, operation).inc()

    def on_limiter_wait(self, provider: str, account: str, operation: str, seconds: float) -> None:
        """Record a wait for a rate-limit slot."""
        self._waits.labels(provider, operation).observe(seconds)


class _FleetCollector(Collector):
    """The fleet gauges, read from the monitor at scrape time."""

    def __init__(self, monitor: FleetMonitor, *, per_runner: bool) -> None:
        self._monitor = monitor
        self._per_runner = per_runner

    def collect(self) -> Iterator[Metric]:
        account_labels = ("account", "provider")
        runners = GaugeMetricFamily(
            "runnerhub_runners",
            "Runners by account, vendor, status and kind (stale accounts: last good data).",
            labels=(*account_labels, "status", "kind"),
        )
        up = GaugeMetricFamily(
            "runnerhub_account_up",
            "1 if the account's last refresh succeeded, 0 if it failed.",
            labels=account_labels,
        )
        last = GaugeMetricFamily(
            "runnerhub_account_last_success_timestamp_seconds",
            "When the account's last successful refresh started (Unix time).",
            labels=account_labels,
        )
        behind = GaugeMetricFamily(
            "runnerhub_runners_behind_newest_version",
            "Runners with a component older than the newest version seen for their vendor.",
            labels=account_labels,
        )
        runner_up = GaugeMetricFamily(
            "runnerhub_runner_up",
            "1 if the runner is online or degraded, 0 if offline or unknown.",
            labels=(*account_labels, "runner", "name"),
        )
        drift = Tally(account for account, _ in self._monitor.version_drift())
        for status in self._monitor.accounts().values():
            if not status.tried:
                continue
            labels = [status.account, status.provider]
            up.add_metric(labels, 1.0 if status.up else 0.0)
            if status.last_success is None:
                continue
            last.add_metric(labels, status.last_success.timestamp())
            behind.add_metric(labels, float(drift[status.account]))
            counts = Tally((r.status.value, r.kind.value) for r in status.runners)
            for (state, kind), count in sorted(counts.items()):
                runners.add_metric([*labels, state, kind], float(count))
            if self._per_runner:
                for runner in status.runners:
                    runner_up.add_metric(
                        [*labels, runner.id, runner.name],
                        1.0 if runner.status in _UP_STATUSES else 0.0,
                    )
        yield runners
        yield up
        yield last
        yield behind
        if self._per_runner:
            yield runner_up
