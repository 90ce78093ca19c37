"""Benchmark 3: the rate-limit ceiling against the sandbox's sliding windows.

A sustained stream of ``get_runner``, ``list_runners`` and ``delete_runner``
calls against ``runnerhub.sandbox`` enforcing Soda's documented limits
(time-scaled), from three clients that differ only in their limiter:

- runnerhub: the default sliding-window log (``LocalLimiter``);
- naive: one ``aiolimiter.AsyncLimiter(N, period)`` per endpoint, plugged in
  through the ``limiter=`` seam (a leaky bucket admits ~2N in its first window);
- none: every limit removed.

Every client runs with ``max_retries=0``, so each 429 the sandbox sends is
counted once, at the sandbox; a worker's next call is its retry. The sandbox
runs in its own process (``python -m benchmarks.rate_limit serve``) and
answers ``dump`` on stdin with its request log.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import importlib
import json
import math
import os
import random
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import attrs

from runnerhub import RateLimit, SodaProvider, errors
from runnerhub.limits import Bucket

from ._report import Check, Section, table

OPERATIONS = ("get_runner", "list_runners", "delete_runner")
WORKERS = {"get_runner": 32, "list_runners": 4, "delete_runner": 4}
CLIENTS = ("runnerhub", "naive AsyncLimiter", "no limiter")
LIST_PAGE_SIZE = 100
TARGET_UTILISATION = 0.95


@attrs.frozen
class Config:
    """One run's shape: time scale, limits (real seconds at scale 1) and windows."""

    time_scale: float
    limits: Mapping[str, tuple[int, float]]
    windows: int

    def period(self, operation: str) -> float:
        """The scaled window of ``operation`` in seconds."""
        return self.limits[operation][1] / self.time_scale

    def rate_limit(self, operation: str) -> RateLimit:
        """The scaled client limit of ``operation``."""
        return RateLimit(self.limits[operation][0], self.period(operation))


def documented() -> dict[str, tuple[int, float]]:
    """Soda's documented limits, as runnerhub declares them."""
    return {
        op: (limits[0].max_requests, limits[0].period_seconds)
        for op, limits in SodaProvider.default_limits.items()
        if op in OPERATIONS
    }


FULL = Config(time_scale=10.0, limits=documented(), windows=5)
QUICK = Config(
    time_scale=240.0,
    limits={"get_runner": (40, 60.0), "list_runners": (12, 60.0), "delete_runner": (4, 60.0)},
    windows=2,
)


# -- the sandbox process ----------------------------------------------------


async def _serve(time_scale: float, limits: dict[str, tuple[int, float]]) -> None:
    from runnerhub.sandbox import Sandbox

    # Decimal Retry-After, as the published numbers were measured with.
    sandbox = Sandbox(
        seed=3,
        time_scale=time_scale,
        retry_after="decimal",
        vendor_options={"soda": {"limits": limits}},
    )
    orgs: dict[str, dict[str, Any]] = {}
    for client in CLIENTS:
        org = sandbox.add_org("soda", f"bench-{len(orgs)}", runners=1000)
        ids = list(org.runners)
        deletable = [
            rid
            for rid in ids[200:]
            if rid not in org.in_use and org.runners[rid]["type"] == "SELF_HOSTED"
        ]
        orgs[client] = {
            "name": org.name,
            "key_id": org.api_key_id,
            "secret": org.api_key_secret,
            "get_ids": ids[:200],
            "delete_ids": deletable,
        }
    loop = asyncio.get_running_loop()
    async with sandbox.serve() as url:
        print(json.dumps({"base_url": url, "orgs": orgs}), flush=True)
        while (await loop.run_in_executor(None, sys.stdin.readline)).strip() == "dump":
            records = [[r.t, r.operation, r.status, r.org] for r in sandbox.requests]
            peaks = {
                op: sandbox.max_in_window("soda", op, limits[op][1] / time_scale)
                for op in limits
            }
            sandbox.requests.clear()
            print(json.dumps({"records": records, "max_admitted": peaks}), flush=True)


class _SandboxProcess:
    def __init__(self, config: Config) -> None:
        self._process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [
                sys.executable,
                "-m",
                "benchmarks.rate_limit",
                "serve",
                "--time-scale",
                str(config.time_scale),
                "--limits",
                json.dumps(dict(config.limits)),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=Path(__file__).resolve().parent.parent,
        )
        hello = self._read()
        self.base_url: str = hello["base_url"]
        self.orgs: dict[str, dict[str, Any]] = hello["orgs"]

    def _read(self) -> Any:
        assert self._process.stdout is not None
        line = self._process.stdout.readline()
        if not line:
            raise RuntimeError("the sandbox process exited")
        return json.loads(line)

    def dump(self) -> dict[str, Any]:
        """The sandbox's request log since the last dump, and its ``max_in_window`` per op."""
        assert self._process.stdin is not None
        self._process.stdin.write("dump\n")
        self._process.stdin.flush()
        result: dict[str, Any] = self._read()
        return result

    def close(self) -> None:
        if self._process.stdin is not None:
            self._process.stdin.close()  # the sandbox's cue to exit
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        if self._process.stdout is not None:
            self._process.stdout.close()


@contextmanager
def sandbox_process(config: Config) -> Iterator[_SandboxProcess]:
    """The sandbox serving three orgs (one per client) in a child process."""
    process = _SandboxProcess(config)
    try:
        yield process
    finally:
        process.close()


# -- the clients --------------------------------------------------------------


class _Drained:
    """A naive slot: the leaky bucket drains by itself, so giving back does nothing."""

    def release(self) -> None:
        """Nothing to stamp."""

    def withdraw(self) -> None:
        """Nothing to give back."""


class NaiveLimiter:
    """A plain ``aiolimiter.AsyncLimiter(N, period)`` per bucket, as a user would add one.

    It ignores 429s (``pause`` does nothing): a leaky bucket knows only its own rate.
    """

    def __init__(self) -> None:
        self._aiolimiter = importlib.import_module("aiolimiter")
        self._limiters: dict[str, Any] = {}

    def _limiter(self, bucket: Bucket) -> Any:
        limiter = self._limiters.get(bucket.key)
        if limiter is None:
            limit = bucket.limits[0]
            limiter = self._aiolimiter.AsyncLimiter(limit.max_requests, limit.period_seconds)
            self._limiters[bucket.key] = limiter
        return limiter

    def slot(self, bucket: Bucket) -> Any:
        """The bucket's ``AsyncLimiter``; entering it takes one unit of capacity."""
        return self._limiter(bucket)

    def try_enter(self, bucket: Bucket) -> None:
        """Always None: taking capacity from an ``AsyncLimiter`` is awaited."""
        return None

    async def enter(self, bucket: Bucket, *, max_wait: float = math.inf) -> _Drained:
        """Take one unit of the bucket's ``AsyncLimiter`` (it never refuses to wait)."""
        await self._limiter(bucket).acquire()
        return _Drained()

    def set_budget(self, bucket: Bucket, budget: Any) -> None:
        """Nothing: a plain limiter does not read the vendor's budget."""

    async def pause(self, bucket: Bucket, seconds: float) -> None:
        """Nothing: a plain limiter does not hear of the vendor's 429s."""

    async def aclose(self) -> None:
        """Nothing to release."""


def _provider(client: str, base_url: str, org: Mapping[str, Any], config: Config) -> SodaProvider:
    limits: dict[str, RateLimit | None] = {op: config.rate_limit(op) for op in OPERATIONS}
    options: dict[str, Any] = {}
    if client == "naive AsyncLimiter":
        options["limiter"] = NaiveLimiter()
    elif client == "no limiter":
        limits = dict.fromkeys(SodaProvider.default_limits)
    return SodaProvider(
        org["key_id"],
        org["secret"],
        base_url=base_url,
        account=org["name"],
        rate_limits=limits,
        max_retries=0,
        timeout=10.0,
        **options,
    )


async def _drive(soda: SodaProvider, org: Mapping[str, Any], seconds: float) -> dict[str, int]:
    """Run every worker for ``seconds``; the client's own tally of outcomes."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    outcomes: collections.Counter[str] = collections.Counter()
    rng = random.Random(7)
    get_ids: list[str] = org["get_ids"]
    to_delete = collections.deque(org["delete_ids"])

    async def call(operation: str, action: Callable[[], Any]) -> None:
        try:
            await action()
            outcomes[f"{operation} ok"] += 1
        except errors.RateLimitError:
            outcomes[f"{operation} 429"] += 1
        except errors.RunnerHubError as exc:
            outcomes[f"{operation} {type(exc).__name__}"] += 1

    async def listing() -> None:
        async for _runner in soda.list_runners(page_size=LIST_PAGE_SIZE):
            pass

    async def delete() -> None:
        runner_id = to_delete.popleft()
        try:
            await soda.delete_runner(runner_id)
        except errors.RateLimitError:
            to_delete.appendleft(runner_id)
            raise

    actions: dict[str, Callable[[], Any]] = {
        "get_runner": lambda: soda.get_runner(rng.choice(get_ids)),
        "list_runners": listing,
        "delete_runner": delete,
    }

    async def worker(operation: str) -> None:
        while loop.time() < deadline:
            await call(operation, actions[operation])

    tasks = [
        asyncio.create_task(worker(op)) for op in OPERATIONS for _ in range(WORKERS[op])
    ]
    # Workers waiting for a window when time is up are cancelled, not awaited.
    _done, pending = await asyncio.wait(tasks, timeout=seconds + 0.1)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    return dict(outcomes)


@attrs.frozen
class OperationResult:
    """What the sandbox saw of one client on one endpoint."""

    sent: int
    admitted_in_windows: int
    status_429: int
    max_sent_in_window: int
    max_admitted_in_window: int
    utilisation: float
    arrivals: tuple[tuple[float, int], ...]  # (seconds since the client's first request, status)


def _max_in_window(times: Sequence[float], period: float) -> int:
    # Half-open windows, as the sandbox counts: arrivals ``period`` apart never share one.
    best = start = 0
    for end, t in enumerate(times):
        while times[start] <= t - period:
            start += 1
        best = max(best, end - start + 1)
    return best


def _analyse(
    records: list[list[Any]], peaks: Mapping[str, int], config: Config
) -> dict[str, OperationResult]:
    if not records:
        raise RuntimeError("the sandbox saw no request")
    t0 = min(r[0] for r in records)
    results = {}
    for op in OPERATIONS:
        mine = sorted((r[0], r[2]) for r in records if r[1] == op)
        period = config.period(op)
        limit = config.limits[op][0]
        start = mine[0][0] if mine else t0
        horizon = start + config.windows * period
        admitted = sum(1 for t, status in mine if status != 429 and start <= t < horizon)
        results[op] = OperationResult(
            sent=len(mine),
            admitted_in_windows=admitted,
            status_429=sum(1 for _, status in mine if status == 429),
            max_sent_in_window=_max_in_window([t for t, _ in mine], period),
            max_admitted_in_window=peaks[op],
            utilisation=admitted / (config.windows * limit),
            arrivals=tuple((t - t0, status) for t, status in mine),
        )
    return results


async def _run_client(
    client: str, sandbox: _SandboxProcess, config: Config
) -> tuple[dict[str, OperationResult], dict[str, int]]:
    org = sandbox.orgs[client]
    longest = max(config.period(op) for op in OPERATIONS)
    seconds = config.windows * longest + min(0.5, longest)  # the last window in full
    async with _provider(client, sandbox.base_url, org, config) as soda:
        outcomes = await _drive(soda, org, seconds)
    dump = await asyncio.to_thread(sandbox.dump)
    return _analyse(dump["records"], dump["max_admitted"], config), outcomes


def measure(config: Config) -> dict[str, tuple[dict[str, OperationResult], dict[str, int]]]:
    """Run the three clients one after another, each on its own org and credential."""
    results = {}
    with sandbox_process(config) as sandbox:
        for client in CLIENTS:
            results[client] = asyncio.run(_run_client(client, sandbox, config))
    return results


# -- the report ---------------------------------------------------------------


def sliding_series(
    arrivals: Sequence[tuple[float, int]], period: float, end: float, step: float
) -> tuple[list[float], list[int]]:
    """Requests sent in the window ``(t - period, t]`` for t on a grid from 0 to ``end``."""
    times = sorted(t for t, _ in arrivals)
    xs, ys = [], []
    lo = hi = 0
    t = 0.0
    while t <= end:
        while hi < len(times) and times[hi] <= t:
            hi += 1
        while lo < hi and times[lo] <= t - period:
            lo += 1
        xs.append(t)
        ys.append(hi - lo)
        t += step
    return xs, ys


def plot(
    results: Mapping[str, tuple[dict[str, OperationResult], dict[str, int]]],
    config: Config,
    path: Path,
) -> bool:
    """Write the PNG of requests per sliding window; False when matplotlib is missing."""
    try:
        matplotlib = importlib.import_module("matplotlib")
    except ImportError:
        return False
    matplotlib.use("Agg")
    pyplot = importlib.import_module("matplotlib.pyplot")
    figure, axes = pyplot.subplots(len(OPERATIONS), 1, figsize=(9, 9), sharex=True)
    longest = max(config.period(op) for op in OPERATIONS)
    end = config.windows * longest + min(0.5, longest)
    styles = {"runnerhub": "tab:blue", "naive AsyncLimiter": "tab:red"}
    for axis, op in zip(axes, OPERATIONS, strict=True):
        period = config.period(op)
        limit = config.limits[op][0]
        for client, colour in styles.items():
            arrivals = results[client][0][op].arrivals
            xs, ys = sliding_series(arrivals, period, end, period / 100)
            axis.plot(xs, ys, color=colour, label=f"{client} (sent, 429s included)")
        axis.axhline(limit, color="black", linestyle="--", label=f"documented limit {limit}")
        axis.set_title(
            f"{op}: {limit} per {config.limits[op][1]:.0f} s "
            f"(time-scaled x{config.time_scale:.0f}: per {period:g} s)"
        )
        axis.set_ylabel("requests in window")
        axis.set_ylim(0, limit * 2.3)
    axes[0].legend(loc="upper right", fontsize="small")
    axes[-1].set_xlabel("seconds since the client's first request")
    figure.suptitle("Requests arriving at the sandbox per sliding window")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=90)
    pyplot.close(figure)
    return True


def run(quick: bool = False, plot_path: Path | None = None) -> Section:
    """Measure and report; ``quick`` uses 0.25 s windows and small limits."""
    config = QUICK if quick else FULL
    results = measure(config)
    checks = []
    rows = []
    numbers: dict[str, float] = {}
    for op in OPERATIONS:
        limit, period = config.limits[op]
        scaled = config.period(op)
        hub = results["runnerhub"][0][op]
        naive = results["naive AsyncLimiter"][0][op]
        passed = hub.status_429 == 0 and hub.utilisation >= TARGET_UTILISATION
        checks.append(
            Check(
                f"{op} {limit}/{period:.0f} s (x{config.time_scale:g}: /{scaled:g} s)",
                f"naive: {naive.max_sent_in_window} sent in worst window, "
                f"{naive.status_429} x 429",
                f"{hub.max_sent_in_window} max in window, {hub.status_429} x 429, "
                f"{hub.utilisation:.1%} used",
                hub.utilisation,
                f"0 x 429, ≥ {TARGET_UTILISATION:.0%}",
                passed,
            )
        )
        for client in CLIENTS:
            result, outcomes = results[client]
            r = result[op]
            errors_seen = sum(
                n
                for key, n in outcomes.items()
                if key.startswith(op) and not key.endswith((" ok", " 429"))
            )
            rows.append(
                [
                    op,
                    client,
                    f"{limit}",
                    f"{r.sent:,}",
                    f"{r.status_429:,}",
                    f"{r.max_sent_in_window:,}",
                    f"{r.max_admitted_in_window:,}",
                    f"{r.admitted_in_windows:,}",
                    f"{r.utilisation:.1%}",
                    f"{errors_seen}",
                ]
            )
            key = f"{client}][{op}"
            numbers[f"utilisation[{key}]"] = r.utilisation
            numbers[f"status_429[{key}]"] = r.status_429
            numbers[f"max_sent_in_window[{key}]"] = r.max_sent_in_window
    details = table(
        [
            "endpoint",
            "client",
            "limit N",
            "sent",
            "429s",
            "most sent in any window",
            "most admitted in any window",
            f"admitted in {config.windows} windows",
            "utilisation",
            "other errors",
        ],
        rows,
    )
    drawn = plot_path is not None and plot(results, config, plot_path)
    workers = (
        f"{WORKERS['get_runner']} get, {WORKERS['list_runners']} list (pages of "
        f"{LIST_PAGE_SIZE}) and {WORKERS['delete_runner']} delete workers"
    )
    method = f"""
`runnerhub.sandbox` (in its own process) enforces Soda's documented limits (get 1000,
list 60, delete 10 per 60 s) as sliding windows, time-scaled x{config.time_scale:g}: a 60 s
window lasts {60 / config.time_scale:g} s. Each client gets its own org and credential and
runs {workers} for {config.windows} windows, one client after another:
**runnerhub** (its default sliding-window limiter, limits scaled alike); **naive** (one
`aiolimiter.AsyncLimiter(N, period)` per endpoint, plugged in through the `limiter=` seam so
the HTTP stack is identical); **no limiter** (limits removed). All run with
`max_retries=0`: each 429 is counted once, at the sandbox, and a worker's next call is its
retry, so no client hides 429s behind back-off. *Sent* counts every arrival at the
sandbox, 429s included; *admitted in windows* counts non-429 arrivals in the
{config.windows} windows after the endpoint's first request, and *utilisation* is that over
{config.windows} x N. *Most admitted in any window* is the sandbox's own
`Sandbox.max_in_window`.
"""
    notes = (
        "runnerhub holds each request's place from send until response + period, so its "
        "bursts recur every period plus one round trip; the naive bucket admits N at once "
        "and then drips N per period, so its first window sees about 2N and the sandbox "
        "refuses the excess."
    )
    if plot_path is not None and not drawn:
        notes += " (matplotlib not installed: plot not drawn.)"
    return Section(
        name="rate_limit",
        title="Rate-limit ceiling",
        method=method,
        checks=tuple(checks),
        details=(details, notes),
        numbers=numbers,
    )


def _main(argv: Sequence[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.rate_limit")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the sandbox (used by the benchmark)")
    serve.add_argument("--time-scale", type=float, required=True)
    serve.add_argument("--limits", required=True, help="JSON {operation: [N, seconds]}")
    args = parser.parse_args(argv)
    limits = {op: (int(n), float(p)) for op, (n, p) in json.loads(args.limits).items()}
    os.environ.setdefault("PYTHONHASHSEED", "0")
    asyncio.run(_serve(args.time_scale, limits))


if __name__ == "__main__":
    _main(sys.argv[1:])
