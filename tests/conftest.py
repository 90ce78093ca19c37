"""Shared fixtures: a served sandbox per test and one case per vendor for the conformance suite."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import attrs
import pytest
import pytest_asyncio

from runnerhub import KubiyaProvider, RateLimit, SodaProvider
from runnerhub.provider import RunnerProvider
from runnerhub.sandbox import Sandbox

pytest_plugins = ["runnerhub.sandbox.pytest_plugin"]

# Sandbox windows run 60x faster than the vendors' so that limit tests take a second.
TIME_SCALE = 60.0

SODA_LIMITS = {
    "list_runners": RateLimit(60, 60 / TIME_SCALE),
    "create_runner": RateLimit(10, 60 / TIME_SCALE),
    "get_runner": RateLimit(1000, 60 / TIME_SCALE),
    "delete_runner": RateLimit(10, 60 / TIME_SCALE),
}
KUBIYA_LIMITS = {"*": (RateLimit(100, 60 / TIME_SCALE), RateLimit(20, 10 / TIME_SCALE))}

# Fast retries so that retry tests stay quick; the rules are the defaults'.
FAST = {"timeout": 2.0}


@attrs.define
class VendorCase:
    """What the conformance suite needs to drive one vendor against the sandbox."""

    vendor: str
    sandbox: Sandbox
    build: Callable[..., RunnerProvider]
    build_bad_auth: Callable[..., RunnerProvider]
    runner_ids: list[str]
    deletable_id: str
    create_name: str
    secrets: list[str]
    get_path: Callable[[str], str]
    create_path: str

    def provider(self, **options: Any) -> RunnerProvider:
        """A provider with valid credentials, sandbox-scaled limits and fast retries."""
        return self.build(**options)


def _fast_retry_options(options: dict[str, Any]) -> dict[str, Any]:
    from runnerhub import RetryPolicy

    merged = {**FAST, **options}
    merged.setdefault("retry", RetryPolicy(base_delay=0.01, max_delay=0.05, max_total=10))
    return merged


@pytest_asyncio.fixture
async def soda_case() -> AsyncIterator[VendorCase]:
    """A Soda org of 25 runners on a served sandbox."""
    sandbox = Sandbox(seed=7, time_scale=TIME_SCALE)
    org = sandbox.add_org("soda", "acme-eu", runners=25)
    async with sandbox.serve():
        base_url = sandbox.url("soda")

        def build(**options: Any) -> RunnerProvider:
            options = _fast_retry_options(options)
            options.setdefault("rate_limits", SODA_LIMITS)
            return SodaProvider(
                org.api_key_id, org.api_key_secret, base_url=base_url, account="acme-eu", **options
            )

        def build_bad(**options: Any) -> RunnerProvider:
            return SodaProvider(org.api_key_id, "wrong-secret", base_url=base_url, **options)

        ids = list(org.runners)
        deletable = next(
            rid
            for rid, payload in org.runners.items()
            if rid not in org.in_use and payload.get("type") == "SELF_HOSTED"
        )
        yield VendorCase(
            vendor="soda",
            sandbox=sandbox,
            build=build,
            build_bad_auth=build_bad,
            runner_ids=ids,
            deletable_id=deletable,
            create_name="new-runner",
            secrets=[org.api_key_secret, org.token],
            get_path=lambda rid: f"/api/v1/runners/{rid}",
            create_path="/api/v1/runners",
        )


@pytest_asyncio.fixture
async def kubiya_case() -> AsyncIterator[VendorCase]:
    """A Kubiya org of 12 runners (3 unhealthy) on a served sandbox."""
    sandbox = Sandbox(seed=7, time_scale=TIME_SCALE)
    org = sandbox.add_org("kubiya", "kubiya-prod", runners=12, unhealthy=3)
    async with sandbox.serve():
        base_url = sandbox.url("kubiya")

        def build(**options: Any) -> RunnerProvider:
            options = _fast_retry_options(options)
            options.setdefault("rate_limits", KUBIYA_LIMITS)
            return KubiyaProvider(org.api_key, base_url=base_url, account="kubiya-prod", **options)

        def build_bad(**options: Any) -> RunnerProvider:
            return KubiyaProvider("not-a-key", base_url=base_url, **options)

        ids = list(org.runners)
        secrets = [org.api_key]
        secrets += [
            r["gateway_password"] for r in org.runners.values() if r.get("gateway_password")
        ]
        yield VendorCase(
            vendor="kubiya",
            sandbox=sandbox,
            build=build,
            build_bad_auth=build_bad,
            runner_ids=ids,
            deletable_id=ids[-1],
            create_name="edge-new",
            secrets=secrets,
            get_path=lambda name: f"/api/v3/runners/{name}/describe",
            create_path="/api/v3/runners/edge-new",
        )


@pytest.fixture(params=["soda", "kubiya"])
def case(request: pytest.FixtureRequest) -> VendorCase:
    """Each vendor in turn: adding a vendor means adding a fixture above and a name here."""
    result: VendorCase = request.getfixturevalue(f"{request.param}_case")
    return result


@pytest.fixture
def debug_log(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """Capture every record of the ``runnerhub`` logger at DEBUG."""
    with caplog.at_level(logging.DEBUG, logger="runnerhub"):
        yield caplog
