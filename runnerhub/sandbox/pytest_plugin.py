"""pytest fixtures serving a :class:`~runnerhub.sandbox.Sandbox`.

Enable with ``pytest_plugins = ["runnerhub.sandbox.pytest_plugin"]``. Override
``runnerhub_sandbox_options`` to pass constructor options.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from ._app import Sandbox


@pytest.fixture
def runnerhub_sandbox_options() -> dict[str, Any]:
    """Keyword arguments for the ``Sandbox`` of ``runnerhub_sandbox``; override to change."""
    return {}


@pytest_asyncio.fixture
async def runnerhub_sandbox(runnerhub_sandbox_options: dict[str, Any]) -> AsyncIterator[Sandbox]:
    """A sandbox with no orgs, serving on a free loopback port; see ``Sandbox.base_url``."""
    sandbox = Sandbox(**runnerhub_sandbox_options)
    async with sandbox.serve():
        yield sandbox
