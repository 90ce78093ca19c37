"""Benchmark 5: peak memory while streaming runners without keeping them.

Each case runs in a fresh child process (``python -m benchmarks.memory child``)
so that one case's heap never inflates another's peak. The child imports
runnerhub, opens its sessions and lists a 10-runner account once (warm-up),
then takes its RSS as the baseline, resets the kernel's peak-RSS mark and
streams the runners; growth is the peak minus the baseline. The benchmark
server builds every page when it is asked for, so the runners exist only as
bytes on the wire.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import resource
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from runnerhub import RunnerHub, SodaProvider

from ._report import KEY_SECRET, Check, Section, table
from ._server import base_url, fast_server

TARGET_MB = 50.0
# Growth from the smaller listing to the larger beyond which memory is not "flat".
FLAT_MB = 10.0
MODES = ("list_runners", "hub.stream")
STREAM_ACCOUNTS = 4


def _status_kb(field: str) -> int | None:
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def _reset_peak() -> bool:
    # Linux: writing 5 to clear_refs resets VmHWM (the peak) to the current RSS.
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as refs:
            refs.write("5")
    except OSError:
        return False
    return True


def _peak_kb() -> int:
    peak = _status_kb("VmHWM")
    if peak is not None:
        return peak
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)  # KiB on Linux


def _providers(root: str, total: int, accounts: int) -> list[SodaProvider]:
    return [
        SodaProvider(
            f"bench-key-{i}",
            KEY_SECRET,
            base_url=base_url(root, total=total // accounts),
            account=f"account-{i}",
            rate_limits={"list_runners": None},
        )
        for i in range(accounts)
    ]


async def _child(root: str, mode: str, total: int) -> dict[str, float]:
    accounts = 1 if mode == "list_runners" else STREAM_ACCOUNTS
    providers = _providers(root, total, accounts)
    warm = _providers(root, 10 * accounts, accounts)
    async with RunnerHub(providers) as hub, RunnerHub(warm) as warm_hub:
        async for _runner in warm_hub.stream():
            pass
        async for _runner in providers[0].list_runners(page_size=10):
            break
        gc.collect()
        baseline = _status_kb("VmRSS") or _peak_kb()
        reset = _reset_peak()
        count = 0
        started = time.perf_counter()
        if mode == "list_runners":
            async for _runner in providers[0].list_runners():
                count += 1
        else:
            async for _runner in hub.stream():
                count += 1
        seconds = time.perf_counter() - started
        peak = _peak_kb()
    if count != total // accounts * accounts:
        raise RuntimeError(f"streamed {count} runners, expected {total}")
    return {
        "baseline_kb": baseline,
        "peak_kb": peak,
        "runners": count,
        "seconds": seconds,
        "peak_reset": float(reset),
    }


def _measure(root: str, mode: str, total: int) -> dict[str, float]:
    output = subprocess.run(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", "benchmarks.memory", "child", root, mode, str(total)],
        check=True,
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parent.parent,
    ).stdout
    result: dict[str, float] = json.loads(output)
    return result


def run(quick: bool = False) -> Section:
    """Measure and report; ``quick`` streams 4,000 and 20,000 runners."""
    sizes = (4_000, 20_000) if quick else (100_000, 1_000_000)
    results: dict[tuple[str, int], dict[str, float]] = {}
    with fast_server() as root:
        for mode in MODES:
            for total in sizes:
                results[mode, total] = _measure(root, mode, total)
    growth = {
        key: (r["peak_kb"] - r["baseline_kb"]) / 1024 for key, r in results.items()
    }
    small, large = sizes
    checks = []
    for mode in MODES:
        grew = growth[mode, large]
        checks.append(
            Check(
                f"{mode}: {large:,} runners",
                f"before streaming: {results[mode, large]['baseline_kb'] / 1024:.0f} MB RSS",
                f"peak +{grew:.1f} MB",
                grew,
                f"<= {TARGET_MB:.0f} MB",
                grew <= TARGET_MB,
            )
        )
        extra = growth[mode, large] - growth[mode, small]
        checks.append(
            Check(
                f"{mode}: flat from {small:,} to {large:,}",
                f"{small:,}: peak +{growth[mode, small]:.1f} MB",
                f"{large:,}: peak +{grew:.1f} MB",
                extra,
                f"<= {FLAT_MB:.0f} MB more",
                extra <= FLAT_MB,
            )
        )
    rows = [
        [
            mode,
            f"{total:,}",
            f"{r['baseline_kb'] / 1024:.1f}",
            f"{r['peak_kb'] / 1024:.1f}",
            f"{growth[mode, total]:.1f}",
            f"{r['seconds']:.1f}",
            f"{r['seconds'] / total * 1e6:.2f}",
        ]
        for (mode, total), r in results.items()
    ]
    details = table(
        ["mode", "runners", "RSS before MB", "peak RSS MB", "growth MB", "seconds", "µs/runner"],
        rows,
    )
    if not all(r["peak_reset"] for r in results.values()):
        details += (
            "\n\nThe kernel's peak mark could not be reset (no /proc/self/clear_refs): "
            "peaks include the warm-up."
        )
    method = f"""
Runners are streamed and dropped: `SodaProvider.list_runners()` over one account, and
`RunnerHub.stream()` over {STREAM_ACCOUNTS} accounts (its queue holds at most 1,000
runners). The benchmark server generates each page of 1,000 on request. Each case runs in
its own process: after imports, session set-up and a 10-runner warm-up, the RSS is the
baseline, the kernel's peak mark (VmHWM) is reset, and growth is the peak while streaming
minus the baseline.
"""
    return Section(
        name="memory",
        title="Memory",
        method=method,
        checks=tuple(checks),
        details=(details,),
        numbers={f"growth_mb[{mode}][{total}]": g for (mode, total), g in growth.items()},
    )


def _main(argv: Sequence[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.memory")
    sub = parser.add_subparsers(dest="command", required=True)
    child = sub.add_parser("child", help="one measurement (used by the benchmark)")
    child.add_argument("root")
    child.add_argument("mode", choices=MODES)
    child.add_argument("total", type=int)
    args = parser.parse_args(argv)
    print(json.dumps(asyncio.run(_child(args.root, args.mode, args.total))))


if __name__ == "__main__":
    _main(sys.argv[1:])
