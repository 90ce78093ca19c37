"""The status page: escaping, filters and ordering, then the real thing in headless Chromium."""

from __future__ import annotations

import asyncio
import re
import shutil
from collections import Counter
from collections.abc import AsyncIterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import aiohttp
import attrs
import pytest
import pytest_asyncio

from runnerhub import KubiyaProvider, RunnerHub, SodaProvider
from runnerhub.monitor import FleetMonitor, serve
from runnerhub.provider import RunnerProvider
from runnerhub.sandbox import Fault, FaultKind, KubiyaOrg, Sandbox, SodaOrg

from .conftest import KUBIYA_LIMITS, SODA_LIMITS, TIME_SCALE

ROOT = Path(__file__).resolve().parent.parent
SCREENSHOT = ROOT / ".artifacts" / "status-page.png"
HOSTILE = '<img src=x onerror="alert(1)">&"\''
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


@attrs.frozen
class Served:
    """A monitor of a sandbox fleet, refreshed once, and the page's URL."""

    sandbox: Sandbox
    soda: SodaOrg
    kubiya: KubiyaOrg
    monitor: FleetMonitor
    url: str


@pytest_asyncio.fixture
async def served() -> AsyncIterator[Served]:
    """40 Soda runners (one with a hostile name), 12 Kubiya runners, monitored and served."""
    sandbox = Sandbox(seed=4, time_scale=TIME_SCALE)
    soda = sandbox.add_org("soda", "acme-eu", runners=40)
    kubiya = sandbox.add_org("kubiya", "kubiya-prod", runners=12, unhealthy=3)
    hostile = next(iter(soda.runners.values()))
    hostile["name"] = HOSTILE
    async with sandbox.serve() as base_url:
        providers: list[RunnerProvider] = [
            SodaProvider(
                soda.api_key_id,
                soda.api_key_secret,
                base_url=base_url,
                account="acme-eu",
                rate_limits=SODA_LIMITS,
            ),
            KubiyaProvider(
                kubiya.api_key, base_url=base_url, account="kubiya-prod", rate_limits=KUBIYA_LIMITS
            ),
        ]
        limits: dict[str, Any] = {"acme-eu": SODA_LIMITS, "kubiya-prod": KUBIYA_LIMITS}
        async with RunnerHub(providers) as hub:
            monitor = FleetMonitor(hub, interval=0.3, limits=limits, seed=1)
            async with monitor, serve(monitor, port=0) as url:
                while (  # noqa: ASYNC110 - polls the monitor's state
                    not monitor.ready or monitor.accounts()["kubiya-prod"].health_checked_at is None
                ):
                    await asyncio.sleep(0.01)
                monitor.stop()  # hold the data still while the page is read
            async with serve(monitor, port=0) as url:
                yield Served(sandbox, soda, kubiya, monitor, url)


class Cells(HTMLParser):
    """Collects ``data-count`` tiles, ``data-field`` cells by account, and runner rows."""

    def __init__(self) -> None:
        super().__init__()
        self.counts: dict[str, int] = {}
        self.fields: dict[str, dict[str, str]] = {}
        self.runner_rows: list[list[str]] = []
        self.body: dict[str, str | None] = {}
        self._target: tuple[str, str] | None = None
        self._account: str | None = None
        self._row: list[str] | None = None
        self._text = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "body":
            self.body = found
        if tag == "tr" and found.get("data-account"):
            self._account = found["data-account"]
        if tag == "tr" and found.get("data-runner"):
            self._row = []
        if tag == "td" and self._row is not None:
            self._text = ""
        if found.get("data-count"):
            self._target, self._text = ("count", found["data-count"] or ""), ""
        elif found.get("data-field") and self._account is not None:
            self._target, self._text = ("field", found["data-field"] or ""), ""

    def handle_data(self, data: str) -> None:
        self._text += data

    def handle_endtag(self, tag: str) -> None:
        if self._target is not None and tag in ("b", "td", "span"):
            kind, name = self._target
            if kind == "count":
                self.counts[name] = int(self._text.replace(",", ""))
            elif self._account is not None:
                self.fields.setdefault(self._account, {})[name] = self._text.strip()
            self._target = None
        if tag == "td" and self._row is not None:
            self._row.append(self._text.strip())
        if tag == "tr":
            if self._row is not None:
                self.runner_rows.append(self._row)
            self._account, self._row = None, None


def parse(html: str) -> Cells:
    """The page's numbers."""
    cells = Cells()
    cells.feed(html)
    return cells


async def fetch(url: str) -> tuple[str, Any]:
    """A page's text and headers."""
    async with aiohttp.ClientSession() as client, client.get(url) as response:
        assert response.status == 200
        return await response.text(), response.headers


def expected(served: Served) -> dict[str, Counter[str]]:
    """Status counts per account, from the monitor's own inventory."""
    counts: dict[str, Counter[str]] = {"acme-eu": Counter(), "kubiya-prod": Counter()}
    for runner in served.monitor.inventory().runners:
        counts[runner.account][runner.status.value] += 1
    return counts


async def test_page_counts_equal_the_sandbox(served: Served) -> None:
    """Tiles and account rows hold the sandbox's runner totals and the inventory's statuses."""
    html, headers = await fetch(served.url + "/")
    cells = parse(html)
    want = expected(served)
    assert cells.counts["runners"] == len(served.soda.runners) + len(served.kubiya.runners) == 52
    assert cells.counts["accounts"] == 2
    assert cells.counts["accounts-up"] == 2
    for status in ("online", "offline", "degraded", "unknown"):
        assert cells.counts[status] == want["acme-eu"][status] + want["kubiya-prod"][status]
    assert cells.fields["acme-eu"]["runners"] == "40"
    assert cells.fields["kubiya-prod"]["runners"] == "12"
    unhealthy = sum(1 for state in served.kubiya.health.values() if state != "ok")
    kubiya = cells.fields["kubiya-prod"]
    not_online = sum(int(kubiya[s]) for s in ("offline", "degraded", "unknown"))
    assert not_online == unhealthy
    assert headers["Content-Type"].startswith("text/html")
    assert "script-src 'sha256-" in headers["Content-Security-Policy"]


async def test_everything_from_the_vendor_is_escaped(served: Served) -> None:
    """A runner name full of markup shows as text; no tag or attribute of it reaches the page."""
    html, _ = await fetch(served.url + "/?account=acme-eu")
    assert "<img" not in html
    assert "onerror=" not in html.replace("onerror=&quot;", "")
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;&amp;&quot;&#x27;" in html
    # Query values are escaped too, and an unknown status filter is ignored.
    html, _ = await fetch(served.url + '/?provider="><script>x</script>&status=<b>')
    assert "<script>x" not in html
    assert parse(html).counts["accounts"] == 0


async def test_filters_and_problem_runners_first(served: Served) -> None:
    """?account, ?provider and ?status narrow both tables; offline runners come first."""
    want = expected(served)
    html, _ = await fetch(served.url + "/?provider=kubiya")
    cells = parse(html)
    assert set(cells.fields) == {"kubiya-prod"}
    assert cells.counts["runners"] == 12
    html, _ = await fetch(served.url + "/?status=offline")
    cells = parse(html)
    offline = want["acme-eu"]["offline"] + want["kubiya-prod"]["offline"]
    assert cells.counts["runners"] == cells.counts["offline"] == offline
    assert len(cells.runner_rows) == offline
    assert {row[4] for row in cells.runner_rows} == {"offline"}
    html, _ = await fetch(served.url + "/")
    rows = parse(html).runner_rows
    statuses = [row[4] for row in rows]
    assert statuses[:offline] == ["offline"] * offline
    behind = [i for i, row in enumerate(rows) if row[6]]
    others = [i for i, row in enumerate(rows) if not row[6] and row[4] != "offline"]
    assert behind
    assert max(behind) < min(others)


async def test_stale_account_is_shown_stale_with_its_error(served: Served) -> None:
    """A failed refresh after a good one shows the account stale, counts kept, error shown."""
    served.sandbox.faults.add(Fault(FaultKind.STATUS, status=503, vendor="kubiya"))
    monitor = served.monitor
    async with monitor:
        while not monitor.accounts()["kubiya-prod"].stale:  # noqa: ASYNC110 - polls state
            await asyncio.sleep(0.01)
    html, _ = await fetch(served.url + "/")
    fields = parse(html).fields["kubiya-prod"]
    assert fields["state"] == "stale"
    assert fields["runners"] == "12"
    assert "503" in html
    readiness, _ = await fetch(served.url + "/readyz")
    assert readiness == "ready\n"


async def _chromium(*args: str, profile: Path) -> str:
    chromium = shutil.which("chromium")
    assert chromium is not None
    proc = await asyncio.create_subprocess_exec(
        chromium,
        *CHROMIUM_FLAGS,
        f"--user-data-dir={profile}",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 90)
    assert proc.returncode == 0, err.decode(errors="replace")[-2000:]
    return out.decode()


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("chromium") is None, reason="needs chromium (Debian package)")
async def test_page_in_headless_chromium(served: Served, tmp_path: Path) -> None:
    """Chromium renders the page, its script runs, the numbers match; a screenshot is kept."""
    dom = await _chromium("--dump-dom", served.url + "/", profile=tmp_path / "dom")
    cells = parse(dom)
    assert cells.body.get("data-script") == "ran"
    assert cells.counts["runners"] == 52
    want = expected(served)
    assert cells.counts["offline"] == want["acme-eu"]["offline"] + want["kubiya-prod"]["offline"]
    assert cells.fields["kubiya-prod"]["runners"] == "12"
    assert re.search(r"<time [^>]*>\d+ s ago</time>", dom)
    assert "<img" not in dom
    # Let the page's clock run past a few reloads of its content.
    dom = await _chromium(
        "--virtual-time-budget=12000", "--dump-dom", served.url + "/", profile=tmp_path / "dom"
    )
    cells = parse(dom)
    assert int(cells.body.get("data-reloads") or 0) >= 1
    assert cells.counts["runners"] == 52
    SCREENSHOT.parent.mkdir(exist_ok=True)
    SCREENSHOT.unlink(missing_ok=True)
    await _chromium(
        f"--screenshot={SCREENSHOT}",
        "--window-size=1280,900",
        "--hide-scrollbars",
        served.url + "/",
        profile=tmp_path / "shot",
    )
    assert SCREENSHOT.stat().st_size > 10_000


def test_a_large_fleet_page_stays_bounded() -> None:
    """Past 500 accounts the table is cut (failing first) and the account menu is a text field."""
    from runnerhub.monitor import AccountStatus
    from runnerhub.monitor._page import ACCOUNT_ROWS, Filters, render_page

    statuses = [AccountStatus(f"acct-{i:04d}", "soda") for i in range(ACCOUNT_ROWS + 20)]
    statuses[-1] = attrs.evolve(statuses[-1], tried=True)  # down: shown first
    html = render_page(statuses, {}, Filters(), ready=False, interval=60, refresh_seconds=30)
    cells = parse(html)
    assert len(cells.fields) == ACCOUNT_ROWS
    assert f"acct-{ACCOUNT_ROWS + 19:04d}" in cells.fields
    assert "20 more account(s) not shown" in html
    assert '<input name="account"' in html
    assert "have not been tried yet" in html
    assert "No runner matches." in html
