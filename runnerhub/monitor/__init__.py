"""A fleet monitor: fresh inventory within a share of each vendor budget, for Prometheus and people.

Needs the ``serve`` extra (``pip install runnerhub[serve]``)::

    metrics = MonitorMetrics()
    hub = RunnerHub(providers)          # each built with hooks=metrics
    async with hub, FleetMonitor(hub, metrics=metrics) as monitor, serve(monitor, port=9464):
        ...  # /metrics, /healthz, /readyz, /api/inventory and the status page at /

``runnerhub.monitor.otel`` (the ``otel`` extra) sends the same request metrics
to OpenTelemetry instead; it does not need the serve extra. See ``docs/serve.md``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._app import make_app, serve
    from ._budget import AccountBudget, Cadence
    from ._metrics import METRIC_NAMES, MonitorMetrics
    from ._monitor import FleetMonitor
    from ._state import AccountState, AccountStatus

__all__ = [
    "METRIC_NAMES",
    "AccountBudget",
    "AccountState",
    "AccountStatus",
    "Cadence",
    "FleetMonitor",
    "MonitorMetrics",
    "make_app",
    "serve",
]

# Loaded on first use, so that ``runnerhub.monitor.otel`` imports neither
# prometheus_client nor aiohttp.web.
_HOMES = {
    "make_app": "_app",
    "serve": "_app",
    "AccountBudget": "_budget",
    "Cadence": "_budget",
    "METRIC_NAMES": "_metrics",
    "MonitorMetrics": "_metrics",
    "FleetMonitor": "_monitor",
    "AccountState": "_state",
    "AccountStatus": "_state",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{home}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
