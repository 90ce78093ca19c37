"""The OpenTelemetry hooks: what they record; they need neither Prometheus nor aiohttp.web."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from runnerhub.hooks import Hooks
from runnerhub.monitor.otel import OTelHooks


def _points(reader: InMemoryMetricReader) -> dict[str, list[tuple[dict[str, Any], Any]]]:
    data = reader.get_metrics_data()
    assert data is not None
    found: dict[str, list[tuple[dict[str, Any], Any]]] = {}
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                for point in metric.data.data_points:
                    found.setdefault(metric.name, []).append((dict(point.attributes or {}), point))
    return found


def test_hooks_record_otel_instruments() -> None:
    """Attempts, retries, refusals and waits land in their instruments, without the account."""
    reader = InMemoryMetricReader()
    hooks = OTelHooks(MeterProvider(metric_readers=[reader]).get_meter("test"))
    assert isinstance(hooks, Hooks)
    hooks.on_attempt("soda", "acme-eu", "list_runners", "200", 0.05)
    hooks.on_attempt("soda", "acme-eu", "list_runners", "200", 0.15)
    hooks.on_attempt("soda", "acme-eu", "list_runners", "429", 0.01)
    hooks.on_retry("soda", "acme-eu", "list_runners")
    hooks.on_rate_limited("soda", "acme-eu", "list_runners")
    hooks.on_limiter_wait("soda", "acme-eu", "list_runners", 2.0)
    found = _points(reader)
    where = {"provider": "soda", "operation": "list_runners"}
    requests = {attrs["code"]: point.value for attrs, point in found["runnerhub.requests"]}
    assert requests == {"200": 2, "429": 1}
    assert [p.value for _, p in found["runnerhub.retries"]] == [1]
    assert [p.value for _, p in found["runnerhub.rate_limited"]] == [1]
    [(attrs, duration)] = found["runnerhub.request.duration"]
    assert attrs == where
    assert duration.count == 3
    assert duration.sum == pytest.approx(0.21)
    [(_, wait)] = found["runnerhub.limiter.wait"]
    assert wait.sum == 2.0
    for points in found.values():
        assert all("account" not in attrs for attrs, _ in points)


def test_default_meter_is_the_global_one() -> None:
    """Without a meter the global provider's is used (a no-op until an SDK is set up)."""
    OTelHooks().on_attempt("kubiya", "k", "runner_health", "error", 1.0)


def test_otel_module_loads_neither_prometheus_nor_aiohttp_web() -> None:
    """runnerhub.monitor.otel works without the serve extra's imports."""
    code = (
        "import sys, runnerhub.monitor.otel\n"
        "heavy = [m for m in ('prometheus_client', 'aiohttp.web') if m in sys.modules]\n"
        "sys.exit(1 if heavy else 0)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], check=False)  # noqa: S603 - ours
    assert result.returncode == 0
