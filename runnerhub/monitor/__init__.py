"""A fleet monitor: fresh inventory within a share of each vendor budget, for Prometheus and people.

Needs the ``serve`` extra (``pip install runnerhub[serve]``)::

    metrics = MonitorMetrics()
    hub = RunnerHub.from_config("runnerhub.toml", hooks=metrics)
    async with hub, FleetMonitor(hub, metrics=metrics) as monitor, serve(monitor, port=9464):
        ...  # /metrics, /healthz, /readyz, /api/inventory and the status page at /

See ``docs/serve.md``.
"""

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
