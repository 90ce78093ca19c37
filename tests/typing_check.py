"""Static proof, checked by ``mypy --strict tests``, that each provider satisfies RunnerProvider.

Not collected by pytest (its name does not start with ``test_``); test_public_api
also calls it at runtime.
"""

from __future__ import annotations

from runnerhub import KubiyaProvider, RunnerProvider, SodaProvider


def providers() -> tuple[RunnerProvider, RunnerProvider]:
    """Assign each provider to a ``RunnerProvider`` variable; mypy rejects a mismatch."""
    soda: RunnerProvider = SodaProvider("key-id", "key-secret", region="us")
    kubiya: RunnerProvider = KubiyaProvider("api-key")
    return soda, kubiya
