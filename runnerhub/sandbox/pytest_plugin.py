"""pytest fixtures serving a :class:`~runnerhub.sandbox.Sandbox`.

Enable with ``pytest_plugins = ["runnerhub.sandbox.pytest_plugin"]``; needs only
pytest. The sandbox serves from its own thread and event loop, so the fixture
works in plain sync tests and in async tests under pytest-asyncio or anyio, in
any mode. Override ``runnerhub_sandbox_options`` to pass constructor options.

    def test_lists(runnerhub_sandbox):
        runnerhub_sandbox.add_org("soda", "acme", runners=3)
        url = runnerhub_sandbox.url("soda")   # the vendor's base URL
        ...
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from ._app import Sandbox


@pytest.fixture
def runnerhub_sandbox_options() -> dict[str, Any]:
    """Keyword arguments for the ``Sandbox`` of ``runnerhub_sandbox``; override to change."""
    return {}


@pytest.fixture
def runnerhub_sandbox(runnerhub_sandbox_options: dict[str, Any]) -> Iterator[Sandbox]:
    """A sandbox with no orgs, serving on a free loopback port; see ``base_url`` and ``url()``."""
    sandbox = Sandbox(**runnerhub_sandbox_options)
    with sandbox.serve_in_thread():
        yield sandbox
