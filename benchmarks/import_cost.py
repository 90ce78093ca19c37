"""Benchmark 6: the wall time of ``python -c "import runnerhub"``.

Against ``python -c "import aiohttp, attrs, cattrs, aiolimiter, backoff"`` (the
dependencies alone) and ``python -c "pass"`` (the interpreter alone). Every
command runs in a fresh interpreter, interleaved, with bytecode caches warm:
``PYTHONPYCACHEPREFIX`` points at a private directory that one untimed run of
each command fills, so that runnerhub's sources (an editable install has no
``.pyc`` files) and the dependencies' are read as bytecode alike, whatever
``PYTHONDONTWRITEBYTECODE`` says.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping

from ._report import Check, Section, at_most, median, paired_ratio, table

TARGET = 1.15
COMMANDS = {
    "python -c pass": "pass",
    "dependencies": "import aiohttp, attrs, cattrs, aiolimiter, backoff",
    "runnerhub": "import runnerhub",
}


def _time(code: str, env: Mapping[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, env=env)  # noqa: S603 - fixed code
    return time.perf_counter() - started


def _import_profile(env: Mapping[str, str]) -> list[tuple[str, float, float]]:
    """runnerhub's modules and what they add, from ``-X importtime`` (ms self, ms total)."""
    script = "import aiohttp, attrs, cattrs, aiolimiter, backoff; import runnerhub"
    stderr = subprocess.run(  # noqa: S603 - fixed code
        [sys.executable, "-X", "importtime", "-c", script],
        check=True,
        env=env,
        capture_output=True,
        text=True,
    ).stderr
    found = []
    seen_dependencies = False
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        _, own, total, name = (part.strip() for part in line.replace(":", "|", 1).split("|"))
        if not own.isdigit():
            continue
        if name == "backoff":  # the last dependency imported
            seen_dependencies = True
        elif seen_dependencies:
            found.append((name, int(own) / 1000, int(total) / 1000))
    return found


def run(quick: bool = False) -> Section:
    """Measure and report; ``quick`` runs each command once, caches cold."""
    repetitions = 1 if quick else 21
    with tempfile.TemporaryDirectory(prefix="runnerhub-bench-pyc-") as cache:
        env = {**os.environ, "PYTHONPYCACHEPREFIX": cache}
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        if not quick:
            for code in COMMANDS.values():
                _time(code, env)  # fills the bytecode cache
        times: dict[str, list[float]] = {name: [] for name in COMMANDS}
        names = list(COMMANDS)
        for round_ in range(repetitions):
            shift = round_ % len(names)
            for name in names[shift:] + names[:shift]:
                times[name].append(_time(COMMANDS[name], env))
        modules = _import_profile(env)
    wall = {name: median(values) for name, values in times.items()}
    ratio = paired_ratio(times["runnerhub"], times["dependencies"])
    target, passed = at_most(ratio, TARGET)
    checks = [
        Check(
            'python -c "import runnerhub"',
            f"dependencies: {wall['dependencies'] * 1000:.0f} ms",
            f"{wall['runnerhub'] * 1000:.0f} ms",
            ratio,
            target,
            passed,
        )
    ]
    rows = [
        [
            f"`python -c {COMMANDS[name]!r}`",
            f"{wall[name] * 1000:.0f}",
            f"{min(times[name]) * 1000:.0f}-{max(times[name]) * 1000:.0f}",
        ]
        for name in COMMANDS
    ]
    heaviest = sorted(modules, key=lambda m: -m[1])[:10]
    profile = table(
        ["module (imported after the dependencies)", "self ms", "cumulative ms"],
        [[name.strip(), f"{own:.1f}", f"{total:.1f}"] for name, own, total in heaviest],
    )
    method = f"""
Wall time of a fresh interpreter running each command, {repetitions} rounds of the three
back to back (order rotating); times are medians, the ratio is the median of the per-round
ratios. Bytecode caches are warm for every module (see the module docstring).
`import runnerhub` loads the models, the HTTP core, both vendors and the fleet, and with
them aiohttp, attrs, cattrs, backoff and orjson; the CLI, the sandbox, the Redis backend
and aiolimiter (only for paced buckets) load on first use. The profile below is one
`python -X importtime` run importing the dependencies first, so it shows what runnerhub
itself adds.
"""
    return Section(
        name="import_cost",
        title="Import cost",
        method=method,
        checks=tuple(checks),
        details=(table(["command", "median ms", "range ms"], rows), profile),
        numbers={f"ms[{name}]": value * 1000 for name, value in wall.items()},
    )
