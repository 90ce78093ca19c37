"""Every benchmark runs at tiny sizes and produces numbers, so that none of them rots.

Targets are not asserted here: timings on a shared machine are noise at these
sizes. ``python -m benchmarks`` (``nox -s bench``) measures and judges them.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from benchmarks import __main__ as bench
from benchmarks import (
    bulk_listing,
    fan_out,
    get_throughput,
    import_cost,
    memory,
    rate_limit,
    scale,
)
from benchmarks._report import Check, Section, render
from benchmarks._server import Pages, template_runners


def _assert_measured(section: Section) -> None:
    assert section.checks
    for check in section.checks:
        assert math.isfinite(check.ratio)
        assert check.baseline
        assert check.runnerhub
    assert section.numbers
    assert all(math.isfinite(value) for value in section.numbers.values())


def test_server_pages_are_unique_and_well_formed() -> None:
    """The fast server's pages hold the right runners, with ids unique across pages."""
    pages = Pages(template_runners())
    first = json.loads(pages.page(2500, 0, 1000))
    last = json.loads(pages.page(2500, 2, 1000))
    assert len(first["content"]) == 1000
    assert len(last["content"]) == 500
    assert first["first"]
    assert not first["last"]
    assert last["last"]
    assert first["totalPages"] == 3
    ids = {r["id"] for r in first["content"]} | {r["id"] for r in last["content"]}
    assert len(ids) == 1500


def test_bulk_listing_runs() -> None:
    """The bulk-listing benchmark lists through every client and reports µs per runner."""
    section = bulk_listing.run(quick=True)
    _assert_measured(section)
    assert section.numbers["us_per_runner[runnerhub]"] > 0


def test_get_throughput_runs() -> None:
    """The GET benchmark reports requests per second at each concurrency."""
    section = get_throughput.run(quick=True)
    _assert_measured(section)
    assert len(section.checks) == len(get_throughput.CONCURRENCY)


def test_rate_limit_runs(tmp_path: Path) -> None:
    """The rate-limit benchmark drives all three clients against the sandbox and plots."""
    plot = tmp_path / "ratelimit.png"
    section = rate_limit.run(quick=True, plot_path=plot)
    _assert_measured(section)
    for op in rate_limit.OPERATIONS:
        # The sandbox enforces its windows whatever the client does.
        assert section.numbers[f"max_sent_in_window[no limiter][{op}]"] > 0
    pytest.importorskip("matplotlib")
    assert plot.stat().st_size > 0


def test_fan_out_runs() -> None:
    """The fan-out benchmark times single accounts, the sequence and the fleet."""
    section = fan_out.run(quick=True)
    _assert_measured(section)
    assert section.numbers["sequential"] >= section.numbers["slowest"]


def test_memory_runs() -> None:
    """The memory benchmark streams in child processes and reports RSS growth."""
    section = memory.run(quick=True)
    _assert_measured(section)


def test_import_cost_runs() -> None:
    """The import benchmark times fresh interpreters and profiles runnerhub's modules."""
    section = import_cost.run(quick=True)
    _assert_measured(section)
    assert "runnerhub" in section.details[1]


def test_scale_runs() -> None:
    """The scale benchmark inventories a small fleet under its descriptor limit and
    measures memory per account and the monitor schedule's CPU."""
    section = scale.run(quick=True)
    _assert_measured(section)
    assert section.numbers["failed"] == 0
    assert section.numbers["descriptors"] < scale.QUICK.nofile


def test_results_render() -> None:
    """RESULTS.md renders a summary and one section per benchmark, plot linked."""
    check = Check("case", "baseline 1 ms", "2 ms", 2.0, "≤ 1.60x", passed=False)
    sections = [
        Section(name, name.title(), "How.", (check,), ("| a |\n| --- |",), {"x": 1.0})
        for name in ("one", "two")
    ]
    text = render(sections, elapsed=1.0, plot="ratelimit.png")
    assert text.count("\n## ") == 3
    assert "0 of 2 targets met" in text
    assert "[ratelimit.png](ratelimit.png)" in text
    assert "**Machine**" in text


def test_command_line_only_writes_where_told(tmp_path: Path) -> None:
    """``--only`` with ``--output`` writes that file and leaves RESULTS.md alone."""
    output = tmp_path / "results.md"
    before = bench.RESULTS.stat().st_mtime if bench.RESULTS.exists() else None
    assert bench.main(["--quick", "--only", "fan_out", "--output", str(output)]) == 0
    assert "Fleet fan-out" in output.read_text(encoding="utf-8")
    after = bench.RESULTS.stat().st_mtime if bench.RESULTS.exists() else None
    assert before == after
