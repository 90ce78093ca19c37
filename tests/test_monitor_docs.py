"""What operators load: the Grafana dashboard and alert rules use only metrics that exist."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from runnerhub import RunnerHub, SodaProvider
from runnerhub.monitor import METRIC_NAMES, FleetMonitor
from runnerhub.sandbox import Sandbox

from .conftest import SODA_LIMITS, TIME_SCALE

DOCS = Path(__file__).resolve().parent.parent / "docs"
OPERATOR_FILES = ("grafana-dashboard.json", "prometheus-alerts.yml", "serve.md")
# Series names a histogram or counter family exposes beside its own name.
_SUFFIXES = {"histogram": ("_bucket", "_sum", "_count", "_created"), "counter": ("_created",)}


async def exposed_names() -> set[str]:
    """Every series name /metrics can hold, from a monitor run on the sandbox (per-runner on)."""
    sandbox = Sandbox(seed=2, time_scale=TIME_SCALE)
    org = sandbox.add_org("soda", "acme", runners=3)
    async with sandbox.serve() as base_url:
        provider = SodaProvider(
            org.api_key_id, org.api_key_secret, base_url=base_url, rate_limits=SODA_LIMITS
        )
        async with RunnerHub([provider]) as hub:
            monitor = FleetMonitor(hub, interval=0.2, per_runner=True)
            async with monitor:
                while not monitor.ready:  # noqa: ASYNC110 - polls the monitor's state
                    await asyncio.sleep(0.01)
                text = monitor.metrics.exposition().decode()
    names = set()
    for kind_line in re.findall(r"^# TYPE (\S+) (\S+)$", text, flags=re.M):
        name, kind = kind_line
        names.add(name)
        names.update(name + suffix for suffix in _SUFFIXES.get(kind, ()))
    return names


def used_names(text: str) -> set[str]:
    """The runnerhub_* metric names a document mentions."""
    return set(re.findall(r"\brunnerhub_[a-z_]+[a-z]\b", text))


async def test_every_metric_the_docs_use_is_exposed() -> None:
    """Dashboard, alert rules and docs/serve.md name only series /metrics exposes."""
    names = await exposed_names()
    assert set(METRIC_NAMES) <= names
    for file in OPERATOR_FILES:
        used = used_names((DOCS / file).read_text(encoding="utf-8"))
        assert used, file
        assert used <= names, (file, used - names)


def test_dashboard_is_grafana_json_with_queries() -> None:
    """The dashboard parses, has a uid, and every panel queries the templated data source."""
    dashboard = json.loads((DOCS / "grafana-dashboard.json").read_text(encoding="utf-8"))
    assert dashboard["uid"] == "runnerhub-fleet"
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        assert panel["datasource"]["uid"] == "${datasource}"
        assert all(target["expr"] for target in panel["targets"])


def test_alerts_cover_what_operators_expect() -> None:
    """Account down, runners offline, version drift and rate limiting each have a rule."""
    text = (DOCS / "prometheus-alerts.yml").read_text(encoding="utf-8")
    for alert in (
        "RunnerhubAccountDown",
        "RunnerhubRunnersOffline",
        "RunnerhubVersionDrift",
        "RunnerhubRateLimited",
    ):
        assert f"alert: {alert}" in text


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool (Debian: prometheus)")
def test_promtool_accepts_and_tests_the_rules() -> None:
    """promtool checks the rules and runs their unit tests (docs/prometheus-alerts.test.yml)."""
    promtool = shutil.which("promtool")
    assert promtool is not None
    for command in (
        ["check", "rules", "prometheus-alerts.yml"],
        ["test", "rules", "prometheus-alerts.test.yml"],
    ):
        result = subprocess.run(  # noqa: S603 - a fixed command on files of this repository
            [promtool, *command], cwd=DOCS, capture_output=True, text=True, check=False
        )
        assert result.returncode == 0, result.stdout + result.stderr
