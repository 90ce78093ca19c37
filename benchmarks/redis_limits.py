"""Combined utilisation and 429s of 1, 2 and 4 processes sharing one credential.

Each process hammers ``get_runner`` against one sandbox that enforces ``N`` per
``P`` seconds for the credential, with the client configured for the same
limit: once with the in-process limiter (each process alone), once with a
shared :class:`~runnerhub.limits.RedisLimiter`. Utilisation is the number of
successful requests arriving in the first ``duration`` seconds over
``N * duration / P``; 429s are counted at the sandbox. Workers run with
``max_retries=0``: each task's next call is the retry, so every 429 the vendor
sends is counted once and the shared cooldown still applies.

    python -m benchmarks.redis_limits [--limit 20 --period 1 --duration 4 ...]

Without ``--redis-url`` it starts its own ``redis-server`` (with tests/_redis_server.py).
A worker process is this module run as ``python -m benchmarks.redis_limits worker``;
it takes the credential from ``SODA_API_KEY_ID``/``SODA_API_KEY_SECRET``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import attrs

from runnerhub import RateLimit, SodaProvider, errors
from runnerhub.sandbox import Sandbox

ROOT = Path(__file__).resolve().parent.parent
_OPERATION = "get_runner"


@attrs.define
class Counts:
    """What one process saw: successes, final 429s (retries exhausted), other errors."""

    ok: int = 0
    rate_limited: int = 0
    errors: int = 0


@attrs.frozen
class CaseResult:
    """One run measured at the sandbox: ``sent`` and ``ok_in_window`` over the first
    ``duration`` seconds after the first arrival, ``status_429`` over the whole run."""

    processes: int
    shared: bool
    allowed: float
    sent: int
    ok_in_window: int
    status_429: int
    max_in_window: int
    workers: tuple[Counts, ...]

    @property
    def utilisation(self) -> float:
        """Successful requests in the measured window over the allowed number."""
        return self.ok_in_window / self.allowed


async def hammer(
    provider: SodaProvider, runner_id: str, duration: float, concurrency: int
) -> Counts:
    """Call ``get_runner`` from ``concurrency`` tasks until ``duration`` seconds have passed."""
    counts = Counts()
    stop = time.monotonic() + duration

    async def loop() -> None:
        while time.monotonic() < stop:
            try:
                await provider.get_runner(runner_id)
            except errors.RateLimitError:
                counts.rate_limited += 1
            except errors.RunnerHubError:
                counts.errors += 1
            else:
                counts.ok += 1

    async with asyncio.TaskGroup() as group:
        for _ in range(concurrency):
            group.create_task(loop())
    return counts


async def _worker(options: argparse.Namespace) -> Counts:
    limit = {_OPERATION: RateLimit(options.limit, options.period)}
    loop = asyncio.get_running_loop()
    if options.redis_url:
        from runnerhub.limits import RedisLimiter

        async with (
            RedisLimiter.from_url(options.redis_url) as limiter,
            SodaProvider.from_env(
                base_url=options.base_url, rate_limits=limit, limiter=limiter, max_retries=0
            ) as soda,
        ):
            print("ready", flush=True)
            await loop.run_in_executor(None, sys.stdin.readline)
            return await hammer(soda, options.runner_id, options.duration, options.concurrency)
    async with SodaProvider.from_env(
        base_url=options.base_url, rate_limits=limit, max_retries=0
    ) as soda:
        print("ready", flush=True)
        await loop.run_in_executor(None, sys.stdin.readline)
        return await hammer(soda, options.runner_id, options.duration, options.concurrency)


async def run_workers(
    base_url: str,
    key_id: str,
    secret: str,
    runner_id: str,
    *,
    processes: int,
    redis_url: str | None,
    limit: int,
    period: float,
    duration: float,
    concurrency: int,
) -> list[Counts]:
    """Start ``processes`` workers, release them together, and collect their counts."""
    env = {
        **os.environ,
        "SODA_API_KEY_ID": key_id,
        "SODA_API_KEY_SECRET": secret,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    argv = [
        "-m", "benchmarks.redis_limits", "worker",
        "--base-url", base_url,
        "--runner-id", runner_id,
        "--limit", str(limit),
        "--period", str(period),
        "--duration", str(duration),
        "--concurrency", str(concurrency),
    ]  # fmt: skip
    if redis_url:
        argv += ["--redis-url", redis_url]
    children = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            *argv,
            cwd=ROOT,
            env=env,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        for _ in range(processes)
    ]
    try:
        async with asyncio.timeout(duration + 60):
            for child in children:
                assert child.stdout is not None
                line = await child.stdout.readline()
                if line.strip() != b"ready":
                    _, err = await child.communicate()
                    raise RuntimeError(f"worker failed to start: {err.decode()[-2000:]}")
            outputs = await asyncio.gather(*(child.communicate(b"go\n") for child in children))
    finally:
        for child in children:
            if child.returncode is None:
                child.kill()
                await child.wait()
    results = []
    for child, (out, err) in zip(children, outputs, strict=True):
        if child.returncode != 0:
            raise RuntimeError(f"worker exited with {child.returncode}: {err.decode()[-2000:]}")
        results.append(Counts(**json.loads(out.decode().strip().splitlines()[-1])))
    return results


async def run_case(
    processes: int,
    redis_url: str | None,
    *,
    limit: int = 20,
    period: float = 1.0,
    duration: float = 4.0,
    concurrency: int = 8,
    seed: int = 7,
) -> CaseResult:
    """Serve a sandbox enforcing ``limit`` per ``period`` and run ``processes`` workers on it."""
    sandbox = Sandbox(
        seed,
        retry_after="decimal",
        vendor_options={"soda": {"limits": {_OPERATION: (limit, period)}}},
    )
    org = sandbox.add_org("soda", "fleet", runners=1)
    runner_id = next(iter(org.runners))
    async with sandbox.serve() as base_url:
        workers = await run_workers(
            base_url,
            org.api_key_id,
            org.api_key_secret,
            runner_id,
            processes=processes,
            redis_url=redis_url,
            limit=limit,
            period=period,
            duration=duration,
            concurrency=concurrency,
        )
    arrivals = [r for r in sandbox.requests if r.operation == _OPERATION]
    start = min((r.t for r in arrivals), default=0.0)
    ok = sum(1 for r in arrivals if r.status == 200 and r.t < start + duration)
    return CaseResult(
        processes=processes,
        shared=redis_url is not None,
        allowed=limit * duration / period,
        sent=sum(1 for r in arrivals if r.t < start + duration),
        ok_in_window=ok,
        status_429=sandbox.count(status=429, operation=_OPERATION),
        max_in_window=sandbox.max_in_window("soda", _OPERATION, period),
        workers=tuple(workers),
    )


def table(results: Sequence[CaseResult], limit: int, period: float) -> str:
    """The results as a markdown table."""
    lines = [
        f"| processes | limiter | utilisation | 429s | requests sent in window | "
        f"max in any {period:g} s window (limit {limit}) |",
        "|---:|---|---:|---:|---:|---:|",
    ]
    for r in results:
        limiter = "Redis (shared)" if r.shared else "in-process"
        lines.append(
            f"| {r.processes} | {limiter} | {r.utilisation:.0%} | {r.status_429} | "
            f"{r.sent} | {r.max_in_window} |"
        )
    return "\n".join(lines)


async def _main(options: argparse.Namespace) -> None:
    processes = [int(p) for p in options.processes.split(",")]
    server = None
    redis_url = options.redis_url
    if redis_url is None:
        from tests._redis_server import RedisServer

        server = RedisServer()
        redis_url = server.start()
    try:
        results = []
        for shared in (False, True):
            for count in processes:
                results.append(
                    await run_case(
                        count,
                        redis_url if shared else None,
                        limit=options.limit,
                        period=options.period,
                        duration=options.duration,
                        concurrency=options.concurrency,
                    )
                )
    finally:
        if server is not None:
            server.stop()
    print(
        f"get_runner, limit {options.limit} per {options.period:g} s at the sandbox and the "
        f"client, {options.duration:g} s per run, {options.concurrency} tasks per process\n"
    )
    print(table(results, options.limit, options.period))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.redis_limits")
    parser.add_argument("--limit", type=int, default=20)
    parser.add_argument("--period", type=float, default=1.0)
    parser.add_argument("--duration", type=float, default=4.0)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--processes", default="1,2,4")
    parser.add_argument("--redis-url", default=None)
    sub = parser.add_subparsers(dest="command")
    worker = sub.add_parser("worker")
    worker.add_argument("--base-url", required=True)
    worker.add_argument("--runner-id", required=True)
    worker.add_argument("--limit", type=int, required=True)
    worker.add_argument("--period", type=float, required=True)
    worker.add_argument("--duration", type=float, required=True)
    worker.add_argument("--concurrency", type=int, required=True)
    worker.add_argument("--redis-url", default=None)
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    """Run the benchmark, or one worker (``worker ...``)."""
    options = _parser().parse_args(argv)
    if options.command == "worker":
        counts = asyncio.run(_worker(options))
        print(json.dumps(attrs.asdict(counts)), flush=True)
    else:
        asyncio.run(_main(options))


if __name__ == "__main__":
    main()
