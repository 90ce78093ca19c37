"""The status page: server-rendered HTML, one small inline script, every value escaped.

The page lists accounts (counts, up/stale, last refresh) and then runners,
offline and version-behind ones first. Query parameters ``account``,
``provider`` and ``status`` filter both tables. The script renders times as
"3 s ago" and reloads the page's ``<main>`` every few seconds while the tab
is visible and the filter form is not in use; without it the page still
works (a ``<noscript>`` refresh).
The script and style are fixed text, allowed by hash in the
Content-Security-Policy (:data:`CSP`), so nothing injected could run.
"""

from __future__ import annotations

import base64
import hashlib
import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from html import escape
from typing import Final

import attrs

from ..fleet import VersionDrift
from ..models import Runner, RunnerStatus
from ._state import AccountState, AccountStatus

__all__ = ["CSP", "Filters", "render_page"]

RUNNER_ROWS: Final = 200
ACCOUNT_ROWS: Final = 500
_STATUSES: Final = tuple(s.value for s in RunnerStatus)
# Runners shown first: offline, then behind on version, then degraded, unknown, online.
_ORDER: Final = {
    RunnerStatus.OFFLINE: 0,
    RunnerStatus.DEGRADED: 2,
    RunnerStatus.UNKNOWN: 3,
    RunnerStatus.ONLINE: 4,
}

_STYLE: Final = """
:root{--fg:#1f2328;--muted:#59636e;--line:#d1d9e0;--bg:#f6f8fa;--ok:#1a7f37;--warn:#9a6700;
--bad:#cf222e;--unk:#6e7781}
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);
background:#fff}
header{display:flex;align-items:baseline;gap:16px;padding:14px 24px;
border-bottom:1px solid var(--line);background:var(--bg)}
header h1{font-size:18px;margin:0}
header .meta{color:var(--muted)}
main{padding:16px 24px 32px;max-width:1400px}
.tiles{display:flex;flex-wrap:wrap;gap:10px;margin:0 0 16px}
.tile{border:1px solid var(--line);border-radius:8px;padding:8px 14px;min-width:110px}
.tile b{display:block;font-size:22px;font-variant-numeric:tabular-nums}
.tile span{color:var(--muted);font-size:12px;text-transform:uppercase;letter-spacing:.04em}
.tile.bad b{color:var(--bad)}.tile.warn b{color:var(--warn)}.tile.ok b{color:var(--ok)}
form{display:flex;gap:10px;align-items:end;margin:0 0 16px;flex-wrap:wrap}
label{display:flex;flex-direction:column;font-size:12px;color:var(--muted);gap:2px}
select,input,button{font:inherit;padding:4px 8px;border:1px solid var(--line);border-radius:6px;
background:#fff}
button{background:var(--fg);color:#fff;border-color:var(--fg);cursor:pointer}
form a{color:var(--muted)}
h2{font-size:15px;margin:22px 0 8px}
table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:5px 10px;border-bottom:1px solid var(--line);white-space:nowrap}
th{font-size:12px;color:var(--muted);font-weight:600;background:var(--bg)}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
td.err{white-space:normal;color:var(--bad);min-width:200px;max-width:420px}
td.wrap{white-space:normal}
.scroll{overflow-x:auto}
.pill{display:inline-block;padding:0 8px;border-radius:10px;font-size:12px;font-weight:600;
border:1px solid currentColor}
.up,.online{color:var(--ok)}.stale,.degraded,.behind{color:var(--warn)}
.down,.offline{color:var(--bad)}.pending,.unknown{color:var(--unk)}
.note{color:var(--muted);margin:8px 0}
code{font-size:12px}
"""

_SCRIPT: Final = """
(function(){
  var reloads=0;
  function ago(){
    var now=Date.now();
    document.querySelectorAll("time[datetime]").forEach(function(t){
      var s=Math.max(0,Math.round((now-Date.parse(t.getAttribute("datetime")))/1000));
      t.textContent=s<90?s+" s ago":s<5400?Math.round(s/60)+" min ago":Math.round(s/3600)+" h ago";
    });
    document.body.setAttribute("data-script","ran");
  }
  function reload(){
    var busy=document.activeElement&&document.activeElement.closest("form");
    if(document.hidden||busy)return;
    fetch(location.href,{cache:"no-store"}).then(function(r){return r.ok?r.text():null})
    .then(function(text){
      if(!text)return;
      var page=new DOMParser().parseFromString(text,"text/html");
      var fresh=page.querySelector("main"),old=document.querySelector("main");
      if(fresh&&old){
        old.replaceWith(fresh);
        reloads+=1;
        document.body.setAttribute("data-reloads",String(reloads));
        ago();
      }
    }).catch(function(){});
  }
  ago();
  var every=parseInt(document.body.getAttribute("data-refresh"),10)||30;
  setInterval(reload,every*1000);
  setInterval(ago,1000);
})();
"""


def _hash(text: str) -> str:
    return "sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()


CSP: Final = (
    "default-src 'none'; "
    f"style-src '{_hash(_STYLE)}'; script-src '{_hash(_SCRIPT)}'; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)


@attrs.frozen
class Filters:
    """The page's query: only this account, vendor or runner status (None: all)."""

    account: str | None = None
    provider: str | None = None
    status: str | None = None

    @classmethod
    def from_query(cls, query: Mapping[str, str]) -> Filters:
        """Read ``account``, ``provider`` and ``status``; empty values mean all."""
        status = query.get("status") or None
        return cls(
            account=query.get("account") or None,
            provider=query.get("provider") or None,
            status=status if status in _STATUSES else None,
        )

    def accounts(self, statuses: Iterable[AccountStatus]) -> list[AccountStatus]:
        """The accounts these filters keep."""
        return [
            s
            for s in statuses
            if (self.account is None or s.account == self.account)
            and (self.provider is None or s.provider == self.provider)
        ]

    def keeps(self, runner: Runner) -> bool:
        """Whether a runner of a kept account passes the status filter."""
        return self.status is None or runner.status.value == self.status


def _e(value: object) -> str:
    return escape(str(value), quote=True)


def _time(moment: datetime | None, missing: str = "never") -> str:
    if moment is None:
        return missing
    stamp = moment.astimezone(UTC).isoformat(timespec="seconds")
    return f'<time datetime="{_e(stamp)}">{_e(stamp.replace("+00:00", "Z"))}</time>'


def _seconds(value: float) -> str:
    if math.isinf(value):
        return "off"
    return f"{value:.3g} s" if value < 120 else f"{value / 60:.0f} min"


def _tile(name: str, value: int, label: str, tone: str = "") -> str:
    return (
        f'<div class="tile {tone}"><b data-count="{name}">{value:,}</b>'
        f"<span>{_e(label)}</span></div>"
    )


def _select(name: str, label: str, chosen: str | None, options: Sequence[str]) -> str:
    items = ['<option value="">all</option>'] + [
        f'<option value="{_e(o)}"{" selected" if o == chosen else ""}>{_e(o)}</option>'
        for o in options
    ]
    return f'<label>{_e(label)}<select name="{_e(name)}">{"".join(items)}</select></label>'


def _account_field(chosen: str | None, labels: Sequence[str]) -> str:
    if len(labels) <= ACCOUNT_ROWS:
        return _select("account", "Account", chosen, labels)
    # Too many for a menu: a text field takes the exact label.
    return (
        '<label>Account<input name="account" placeholder="label" '
        f'value="{_e(chosen or "")}"></label>'
    )


def _version(runner: Runner) -> str:
    if not runner.versions:
        return "-"
    return ", ".join(f"{k} {v}" for k, v in sorted(runner.versions.items()))


def render_page(
    statuses: Sequence[AccountStatus],
    drift: Mapping[tuple[str, str], tuple[VersionDrift, ...]],
    filters: Filters,
    *,
    ready: bool,
    interval: float,
    refresh_seconds: int,
) -> str:
    """The whole page as text.

    Args:
        statuses: Every account, in the monitor's order.
        drift: Runners behind on version, by (account, runner id).
        filters: What the query asked to see.
        ready: Every account has been tried.
        interval: The monitor's refresh interval (shown).
        refresh_seconds: How often the script reloads the page.
    """
    shown = filters.accounts(statuses)
    runners = [r for s in shown for r in s.runners if filters.keeps(r)]
    by_status = Counter(r.status for r in runners)
    behind = sum(1 for r in runners if (r.account, r.id) in drift)
    states = Counter(s.state for s in shown)
    tiles = "".join(
        [
            _tile("accounts", len(shown), "accounts"),
            _tile("accounts-up", states[AccountState.UP], "up", "ok"),
            _tile(
                "accounts-failing",
                states[AccountState.STALE] + states[AccountState.DOWN],
                "stale or down",
                "bad" if states[AccountState.STALE] + states[AccountState.DOWN] else "",
            ),
            _tile("runners", len(runners), "runners"),
            _tile("online", by_status[RunnerStatus.ONLINE], "online", "ok"),
            _tile(
                "offline",
                by_status[RunnerStatus.OFFLINE],
                "offline",
                "bad" if by_status[RunnerStatus.OFFLINE] else "",
            ),
            _tile("degraded", by_status[RunnerStatus.DEGRADED], "degraded", "warn"),
            _tile("unknown", by_status[RunnerStatus.UNKNOWN], "unknown"),
            _tile("behind", behind, "behind on version", "warn" if behind else ""),
        ]
    )
    form = (
        '<form method="get" action="/">'
        + _account_field(filters.account, [s.account for s in statuses])
        + _select("provider", "Vendor", filters.provider, sorted({s.provider for s in statuses}))
        + _select("status", "Runner status", filters.status, _STATUSES)
        + '<button type="submit">Filter</button><a href="/">clear</a></form>'
    )
    pending = "" if ready else '<p class="note">Some accounts have not been tried yet.</p>'
    body = (
        f'<div class="tiles">{tiles}</div>{form}{pending}'
        f"<h2>Accounts</h2>{_accounts_table(shown, drift, filters)}"
        f"<h2>Runners</h2>{_runners_table(runners, drift)}"
    )
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>runnerhub fleet</title><style>{_STYLE}</style>"
        f'<noscript><meta http-equiv="refresh" content="{refresh_seconds}"></noscript>'
        f'</head><body data-refresh="{refresh_seconds}">'
        "<header><h1>runnerhub fleet</h1>"
        f'<span class="meta">{len(statuses):,} accounts · refreshed every '
        f"{_e(_seconds(interval))} within the budget share</span></header>"
        f"<main>{body}</main><script>{_SCRIPT}</script></body></html>"
    )


def _accounts_table(
    shown: Sequence[AccountStatus],
    drift: Mapping[tuple[str, str], tuple[VersionDrift, ...]],
    filters: Filters,
) -> str:
    head = (
        "<tr><th>Account</th><th>Vendor</th><th>State</th>"
        '<th class="num">Runners</th><th class="num">Online</th><th class="num">Offline</th>'
        '<th class="num">Degraded</th><th class="num">Unknown</th><th class="num">Behind</th>'
        "<th>Last success</th><th>Listing every</th><th>Health every</th><th>Error</th></tr>"
    )
    # Failing accounts first, then the rest in the monitor's order.
    rank = {AccountState.DOWN: 0, AccountState.STALE: 1, AccountState.PENDING: 2}
    rows = []
    ordered = sorted(shown, key=lambda s: rank.get(s.state, 3))
    for status in ordered[:ACCOUNT_ROWS]:
        kept = [r for r in status.runners if filters.keeps(r)]
        counts = Counter(r.status for r in kept)
        behind = sum(1 for r in kept if (r.account, r.id) in drift)
        state = status.state.value
        cells = [
            f"<td>{_e(status.account)}</td>",
            f"<td>{_e(status.provider)}</td>",
            f'<td><span class="pill {state}" data-field="state">{state}</span></td>',
            f'<td class="num" data-field="runners">{len(kept):,}</td>',
        ]
        cells += [
            f'<td class="num" data-field="{s.value}">{counts[s]:,}</td>'
            for s in (
                RunnerStatus.ONLINE,
                RunnerStatus.OFFLINE,
                RunnerStatus.DEGRADED,
                RunnerStatus.UNKNOWN,
            )
        ]
        error = "" if status.error is None else _e(status.error)
        cells += [
            f'<td class="num" data-field="behind">{behind:,}</td>',
            f"<td>{_time(status.last_success)}</td>",
            f"<td>{_e(_seconds(status.list_seconds)) if status.tried else '-'}</td>",
            f"<td>{_e(_seconds(status.health_seconds)) if status.tried else '-'}</td>",
            f'<td class="err">{error}</td>',
        ]
        rows.append(f'<tr data-account="{_e(status.account)}">{"".join(cells)}</tr>')
    if not rows:
        return '<p class="note">No account matches.</p>'
    table = f"<table><thead>{head}</thead><tbody>{''.join(rows)}</tbody></table>"
    more = len(ordered) - ACCOUNT_ROWS
    note = (
        f'<p class="note">{more:,} more account(s) not shown: filter by vendor or account.</p>'
        if more > 0
        else ""
    )
    return f'<div class="scroll">{table}</div>{note}'


def _runners_table(
    runners: Sequence[Runner], drift: Mapping[tuple[str, str], tuple[VersionDrift, ...]]
) -> str:
    if not runners:
        return '<p class="note">No runner matches.</p>'

    def rank(runner: Runner) -> int:
        order = _ORDER[runner.status]
        if order > 1 and (runner.account, runner.id) in drift:
            return 1
        return order

    ordered = sorted(runners, key=rank)[:RUNNER_ROWS]
    head = (
        "<tr><th>Account</th><th>Vendor</th><th>Name</th><th>Kind</th>"
        "<th>Status</th><th>Versions</th><th>Behind the newest</th><th>Last seen</th></tr>"
    )
    rows = []
    for runner in ordered:
        behind = drift.get((runner.account, runner.id), ())
        lag = ", ".join(f"{d.component} {d.version} → {d.newest}" for d in behind)
        status = runner.status.value
        rows.append(
            f'<tr data-runner="{_e(runner.id)}"><td>{_e(runner.account)}</td>'
            f'<td>{_e(runner.provider)}</td><td title="id {_e(runner.id)}">{_e(runner.name)}</td>'
            f"<td>{_e(runner.kind.value)}</td>"
            f'<td><span class="pill {status}">{status}</span></td>'
            f'<td class="wrap">{_e(_version(runner))}</td>'
            f'<td class="wrap behind">{_e(lag)}</td><td>{_time(runner.last_seen, "-")}</td></tr>'
        )
    more = len(runners) - len(ordered)
    note = (
        f'<p class="note">{more:,} more runner(s) not shown: filter, or use '
        "<code>/api/inventory</code>.</p>"
        if more > 0
        else ""
    )
    table = f"<table><thead>{head}</thead><tbody>{''.join(rows)}</tbody></table>"
    return f'<div class="scroll">{table}</div>{note}'
