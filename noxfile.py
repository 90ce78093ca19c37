"""Developer sessions: ``nox -s tests lint typecheck bench peers demo``."""

from __future__ import annotations

import nox

nox.options.sessions = ["tests", "lint", "typecheck"]
nox.options.reuse_existing_virtualenvs = True


@nox.session
def tests(session: nox.Session) -> None:
    """Run the test suite with branch coverage."""
    session.install("-e", ".[dev]")
    session.run("pytest", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff (bandit's rules included) over everything, and pip-audit over the dependencies."""
    session.install("-e", ".[dev]")
    session.run("ruff", "check", ".")
    session.run("pip-audit", "--strict", "--skip-editable")


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy --strict over the package, tests and benchmarks."""
    session.install("-e", ".[dev]")
    session.run("mypy", "--strict", "runnerhub", "tests", "benchmarks", "noxfile.py")


@nox.session
def bench(session: nox.Session) -> None:
    """The benchmarks; writes benchmarks/RESULTS.md."""
    session.install("-e", ".[dev]")
    session.run("python", "-m", "benchmarks", *session.posargs)


@nox.session
def peers(session: nox.Session) -> None:
    """Kubiya's own SDK and schemathesis (on Soda's OpenAPI) against the sandbox."""
    session.install("-e", ".", "kubiya-sdk", "schemathesis")
    session.run("python", "-m", "tests.peers.kubiya_sdk")
    session.run("python", "-m", "tests.peers.soda_schemathesis")


@nox.session
def demo(session: nox.Session) -> None:
    """The demo on the embedded sandbox."""
    session.install("-e", ".[cli]")
    session.run("runnerhub", "demo")
