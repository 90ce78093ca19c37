"""Shared fixtures: a served sandbox per test and one case per vendor for the conformance suite."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import attrs
import pytest
import pytest_asyncio

from runnerhub import RateLimit
from runnerhub._http import RateLimitsOption
from runnerhub.provider import RunnerProvider
from runnerhub.sandbox import Sandbox
from runnerhub.vendors import provider_class

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
# GitHub's defaults with periods scaled: 600 a minute, mutations 80 a minute and paced.
GITHUB_LIMITS = {
    name: tuple(
        attrs.evolve(limit, period_seconds=limit.period_seconds / TIME_SCALE) for limit in limits
    )
    for name, limits in provider_class("github").default_limits.items()
}

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
    # (operation or "*", period in real seconds, most requests the vendor admits in it)
    window: tuple[str, float, int]

    def provider(self, **options: Any) -> RunnerProvider:
        """A provider with valid credentials, sandbox-scaled limits and fast retries."""
        return self.build(**options)


def _fast_retry_options(options: dict[str, Any]) -> dict[str, Any]:
    from runnerhub import RetryPolicy

    merged = {**FAST, **options}
    merged.setdefault("retry", RetryPolicy(base_delay=0.01, max_delay=0.05, max_total=10))
    return merged


def sandbox_provider(
    sandbox: Sandbox, vendor: str, org_name: str, *, wrong_secret: bool = False, **options: Any
) -> Any:
    """The provider of ``org_name`` built through the registry from the sandbox's account.

    ``options`` go to the constructor, overriding the account's credentials and
    vendor options, with the served ``sandbox.url(vendor)`` as base URL and the
    org's name as account label unless given. ``wrong_secret`` replaces every secret
    credential by a wrong one.
    """
    account = next(a for a in sandbox.accounts() if (a.vendor, a.name) == (vendor, org_name))
    cls = provider_class(vendor)
    credentials = dict(account.credentials)
    if wrong_secret:
        for field in cls.credentials:
            if field.secret and field.name in credentials:
                credentials[field.name] = "wrong-secret"
    options.setdefault("base_url", sandbox.url(vendor))
    options.setdefault("account", account.name)
    return cls(**{**credentials, **account.options, **options})


def _case(
    sandbox: Sandbox, vendor: str, org_name: str, limits: RateLimitsOption, **fields: Any
) -> VendorCase:
    """The case of ``org_name``; its providers are built through the registry when asked for.

    ``build`` gives valid credentials, sandbox-scaled ``limits`` and fast
    retries; ``build_bad_auth`` every secret credential wrong. ``fields`` are
    the rest of :class:`VendorCase`.
    """

    def build(**options: Any) -> RunnerProvider:
        options = _fast_retry_options(options)
        options.setdefault("rate_limits", limits)
        provider: RunnerProvider = sandbox_provider(sandbox, vendor, org_name, **options)
        return provider

    def build_bad(**options: Any) -> RunnerProvider:
        provider: RunnerProvider = sandbox_provider(
            sandbox, vendor, org_name, wrong_secret=True, **options
        )
        return provider

    return VendorCase(vendor, sandbox, build, build_bad, **fields)


@pytest_asyncio.fixture
async def soda_case() -> AsyncIterator[VendorCase]:
    """A Soda org of 25 runners on a served sandbox."""
    sandbox = Sandbox(seed=7, time_scale=TIME_SCALE)
    org = sandbox.add_org("soda", "acme-eu", runners=25)
    deletable = next(
        rid
        for rid, payload in org.runners.items()
        if rid not in org.in_use and payload.get("type") == "SELF_HOSTED"
    )
    case = _case(
        sandbox,
        "soda",
        "acme-eu",
        SODA_LIMITS,
        runner_ids=list(org.runners),
        deletable_id=deletable,
        create_name="new-runner",
        secrets=[org.api_key_secret, org.token],
        window=("get_runner", 60 / TIME_SCALE, 1000),
    )
    async with sandbox.serve():
        yield case


@pytest_asyncio.fixture
async def kubiya_case() -> AsyncIterator[VendorCase]:
    """A Kubiya org of 12 runners (3 unhealthy) on a served sandbox."""
    sandbox = Sandbox(seed=7, time_scale=TIME_SCALE)
    org = sandbox.add_org("kubiya", "kubiya-prod", runners=12, unhealthy=3)
    passwords = [r["gateway_password"] for r in org.runners.values() if r.get("gateway_password")]
    case = _case(
        sandbox,
        "kubiya",
        "kubiya-prod",
        KUBIYA_LIMITS,
        runner_ids=list(org.runners),
        deletable_id=list(org.runners)[-1],
        create_name="edge-new",
        secrets=[org.api_key, *passwords],
        window=("*", 10 / TIME_SCALE, 20),
    )
    async with sandbox.serve():
        yield case


@pytest_asyncio.fixture
async def github_case() -> AsyncIterator[VendorCase]:
    """A GitHub organisation of 150 runners (two Link pages) on a served sandbox."""
    sandbox = Sandbox(seed=7, time_scale=TIME_SCALE)
    org = sandbox.add_org("github", "gh-acme", runners=150)
    case = _case(
        sandbox,
        "github",
        "gh-acme",
        GITHUB_LIMITS,
        runner_ids=[str(rid) for rid in org.runners],
        deletable_id=next(str(rid) for rid, r in org.runners.items() if not r["busy"]),
        create_name="jit-new",
        secrets=[org.token, org.read_token],
        # GitHub's secondary limit counts points: a GET costs one of 900 a minute.
        window=("*", 60 / TIME_SCALE, 900),
    )
    async with sandbox.serve():
        yield case


@pytest.fixture(params=["soda", "kubiya", "github"])
def case(request: pytest.FixtureRequest) -> VendorCase:
    """Each vendor in turn: adding a vendor means adding a fixture above and a name here."""
    result: VendorCase = request.getfixturevalue(f"{request.param}_case")
    return result


@pytest.fixture
def debug_log(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """Capture every record of the ``runnerhub`` logger at DEBUG."""
    with caplog.at_level(logging.DEBUG, logger="runnerhub"):
        yield caplog
