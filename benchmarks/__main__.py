"""Run the benchmarks and write ``benchmarks/RESULTS.md`` and ``benchmarks/ratelimit.png``.

    python -m benchmarks                  # all seven, full sizes (what ``nox -s bench`` runs)
    python -m benchmarks --quick          # tiny sizes: checks that every benchmark runs
    python -m benchmarks --only rate_limit --only memory

RESULTS.md and the plot are written after a full run of all seven, or wherever
``--output`` / ``--plot`` say. The exit status is 0 unless ``--check`` is given
and a target was missed.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from . import bulk_listing, fan_out, get_throughput, import_cost, memory, rate_limit, scale
from ._report import Section, render

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "RESULTS.md"
PLOT = HERE / "ratelimit.png"
NAMES = (
    "bulk_listing",
    "get_throughput",
    "rate_limit",
    "fan_out",
    "memory",
    "import_cost",
    "scale",
)


def run_all(
    names: Sequence[str] = NAMES,
    *,
    quick: bool = False,
    plot: Path | None = None,
    say: Callable[[str], None] = print,
) -> list[Section]:
    """Run the named benchmarks in the order of :data:`NAMES`."""
    runners: dict[str, Callable[[], Section]] = {
        "bulk_listing": lambda: bulk_listing.run(quick),
        "get_throughput": lambda: get_throughput.run(quick),
        "rate_limit": lambda: rate_limit.run(quick, plot_path=plot),
        "fan_out": lambda: fan_out.run(quick),
        "memory": lambda: memory.run(quick),
        "import_cost": lambda: import_cost.run(quick),
        "scale": lambda: scale.run(quick),
    }
    sections = []
    for name in NAMES:
        if name not in names:
            continue
        say(f"== {name} ...")
        started = time.perf_counter()
        section = runners[name]()
        for check in section.checks:
            verdict = "pass" if check.passed else "FAIL"
            say(f"   {verdict}  {check.case}: {check.ratio:.2f} (target {check.target})")
        say(f"   ({time.perf_counter() - started:.0f} s)")
        sections.append(section)
    return sections


def main(argv: Sequence[str] | None = None) -> int:
    """The command line; returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="tiny sizes (a smoke run)")
    parser.add_argument("--only", action="append", choices=NAMES, help="run just these")
    parser.add_argument("--output", type=Path, help=f"results file (default {RESULTS.name})")
    parser.add_argument("--plot", type=Path, help=f"rate-limit plot (default {PLOT.name})")
    parser.add_argument("--check", action="store_true", help="exit 1 if a target is missed")
    args = parser.parse_args(argv)
    complete = not args.only and not args.quick
    output = args.output or (RESULTS if complete else None)
    plot = args.plot or (PLOT if complete else None)
    started = time.perf_counter()
    sections = run_all(args.only or NAMES, quick=args.quick, plot=plot)
    elapsed = time.perf_counter() - started
    plot_link = None
    if plot is not None and plot.exists() and output is not None:
        plot_link = Path(os.path.relpath(plot.resolve(), output.resolve().parent)).as_posix()
    if output is not None:
        output.write_text(render(sections, elapsed=elapsed, plot=plot_link), encoding="utf-8")
        print(f"wrote {output}")
    missed = [c for s in sections for c in s.checks if not c.passed]
    print(f"{len(missed)} target(s) missed; {elapsed:.0f} s in all")
    return 1 if args.check and missed else 0


if __name__ == "__main__":
    sys.exit(main())
