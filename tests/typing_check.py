"""Static proof, checked by ``mypy --strict tests``, that each provider satisfies its protocols.

Not collected by pytest (its name does not start with ``test_``); test_public_api
also calls it at runtime.
"""

from __future__ import annotations

from runnerhub import (
    GitHubProvider,
    KubiyaProvider,
    RunnerProvider,
    SodaProvider,
    SupportsDescription,
    SupportsHealth,
    SupportsLabels,
    SupportsManifests,
    SupportsOperations,
    SupportsRegistrationTokens,
)


def providers() -> tuple[RunnerProvider, RunnerProvider, RunnerProvider]:
    """Assign each provider to a ``RunnerProvider`` variable; mypy rejects a mismatch."""
    soda: RunnerProvider = SodaProvider("key-id", "key-secret", region="us")
    kubiya: RunnerProvider = KubiyaProvider("api-key")
    github: RunnerProvider = GitHubProvider("ghp-token", org="acme")
    return soda, kubiya, github


def capabilities() -> tuple[object, ...]:
    """Assign each provider to every capability protocol it offers; mypy rejects a mismatch."""
    soda = SodaProvider("key-id", "key-secret")
    kubiya = KubiyaProvider("api-key")
    github = GitHubProvider("ghp-token", repo="acme/widgets")
    soda_health: SupportsHealth = soda
    kubiya_health: SupportsHealth = kubiya
    description: SupportsDescription = kubiya
    manifests: SupportsManifests = kubiya
    operations: SupportsOperations = kubiya
    labels: SupportsLabels = github
    tokens: SupportsRegistrationTokens = github
    return soda_health, kubiya_health, description, manifests, operations, labels, tokens
