"""GitHubProvider against the GitHub sandbox: scopes, paging, JIT, tokens, labels and limits.

The provider is built from the sandbox's accounts through the registry; the
sandbox enforces GitHub's limits as the notes state them, so a refusal it
logs is one GitHub would have sent.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from typing import Any, Literal

import pytest

from runnerhub import RateLimit, RegistrationToken, RetryPolicy, RunnerStatus, errors
from runnerhub.limits import LocalLimiter
from runnerhub.sandbox import Fault, FaultKind, Sandbox
from runnerhub.sandbox._github import GitHubService
from runnerhub.sandbox._github_state import GitHubOrg

from .conftest import GITHUB_LIMITS, TIME_SCALE, sandbox_provider

FAST = RetryPolicy(base_delay=0.01, max_delay=0.05, max_total=10)


@pytest.fixture
async def sandbox() -> AsyncIterator[Sandbox]:
    """A served sandbox whose windows run ``TIME_SCALE`` times faster than GitHub's."""
    sandbox = Sandbox(seed=11, time_scale=TIME_SCALE)
    async with sandbox.serve():
        yield sandbox


def _provider(sandbox: Sandbox, name: str, **options: Any) -> Any:
    options.setdefault("retry", FAST)
    options.setdefault("rate_limits", GITHUB_LIMITS)
    return sandbox_provider(sandbox, "github", name, **options)


SCOPES = [("org", "gh-acme"), ("repo", "acme/widgets"), ("enterprise", "acme-corp")]


@pytest.mark.parametrize(("scope", "name"), SCOPES)
async def test_lists_every_link_page_gets_and_deletes_at_each_scope(
    sandbox: Sandbox, scope: str, name: str
) -> None:
    """230 runners come back over three Link pages, once each; get and delete work alike."""
    org: GitHubOrg = sandbox.add_org("github", name, runners=230, scope=scope)
    async with _provider(sandbox, name) as provider:
        runners = [r async for r in provider.list_runners()]
        idle = next(r for r in runners if not r.raw["busy"])
        got = await provider.get_runner(idle.id)
        await provider.delete_runner(idle.id)
        with pytest.raises(errors.NotFoundError):
            await provider.get_runner(idle.id)
    assert sorted(r.id for r in runners) == sorted([*map(str, org.runners), idle.id])
    assert len({r.id for r in runners}) == 230
    assert got == idle
    assert int(idle.id) not in org.runners
    listed = [r for r in sandbox.requests if r.operation == "list_runners"]
    assert [r.status for r in listed] == [200, 200, 200]
    # The first page is asked by name; GitHub's links may name the scope by id.
    assert name in listed[0].path
    assert {r.status for r in sandbox.requests} <= {200, 204, 404}


async def test_just_in_time_runner(sandbox: Sandbox) -> None:
    """create_runner registers an offline JIT runner; its config is the sandbox's, kept secret."""
    org: GitHubOrg = sandbox.add_org("github", "gh-acme", runners=3)
    async with _provider(sandbox, "gh-acme") as provider:
        created = await provider.create_runner("jit-7", labels=("self-hosted", "gpu"))
        runner = await provider.get_runner(created.runner_id)
    assert created.runner_id is not None
    assert created.name == "jit-7"
    config = org.jit_configs[int(created.runner_id)]
    assert created.jit_config is not None
    assert created.jit_config.get_secret_value() == config
    assert config not in repr(created)
    assert config not in str(created)
    assert runner.status is RunnerStatus.OFFLINE
    assert runner.labels == ("self-hosted", "gpu")
    assert runner.raw["os"] == "unknown"


async def test_registration_and_remove_tokens(sandbox: Sandbox) -> None:
    """Both tokens are the ones the sandbox minted, with their expiry, and never in a repr."""
    org: GitHubOrg = sandbox.add_org("github", "acme/widgets", runners=1)
    async with _provider(sandbox, "acme/widgets") as provider:
        registration = await provider.registration_token()
        remove = await provider.remove_token()
    minted = {m.kind: m for m in org.minted}
    pairs: tuple[tuple[RegistrationToken, Literal["registration", "remove"]], ...] = (
        (registration, "registration"),
        (remove, "remove"),
    )
    for token, kind in pairs:
        assert token.token.get_secret_value() == minted[kind].token
        assert token.token.get_secret_value() not in repr(token)
        assert token.expires_at is not None
        # GitHub writes milliseconds: the expiry is kept to the millisecond.
        assert abs((token.expires_at - minted[kind].expires_at).total_seconds()) < 0.001


async def test_labels_add_set_and_remove(sandbox: Sandbox) -> None:
    """Labels change as GitHub's endpoints say; read-only labels survive set and stay put."""
    org: GitHubOrg = sandbox.add_org("github", "acme-corp", scope="enterprise")
    runner = org.add_runner("build-1", os="linux", arch="X64")
    runner_id = str(runner["id"])
    async with _provider(sandbox, "acme-corp") as provider:
        assert await provider.list_labels(runner_id) == ("self-hosted", "Linux", "X64")
        added = await provider.add_labels(runner_id, ["gpu", "docker"])
        replaced = await provider.set_labels(runner_id, ["large"])
        removed = await provider.remove_label(runner_id, "large")
        with pytest.raises(errors.NotFoundError):
            await provider.remove_label(runner_id, "large")
        with pytest.raises(errors.APIError) as info:
            await provider.remove_label(runner_id, "self-hosted")
        listed = await provider.get_runner(runner_id)
    assert added == ("self-hosted", "Linux", "X64", "gpu", "docker")
    assert replaced == ("self-hosted", "Linux", "X64", "large")
    assert removed == ("self-hosted", "Linux", "X64")
    assert info.value.status == 422
    assert listed.labels == removed


async def test_renamed_org_is_followed_on_the_same_origin(sandbox: Sandbox) -> None:
    """After a rename, reads follow the 301 and mutations the 307, to the new name."""
    org: GitHubOrg = sandbox.add_org("github", "gh-old", runners=120)
    provider = _provider(sandbox, "gh-old")
    service = sandbox.service("github")
    assert isinstance(service, GitHubService)
    service.rename("gh-old", "gh-new")
    idle = next(str(i) for i, r in org.runners.items() if not r["busy"])
    async with provider:
        runners = [r async for r in provider.list_runners()]
        await provider.get_runner(idle)
        created = await provider.create_runner("jit-after-rename")
        await provider.delete_runner(idle)
    assert len(runners) == 120
    assert created.runner_id is not None
    assert int(created.runner_id) in org.runners
    assert int(idle) not in org.runners
    moved = [r for r in sandbox.requests if r.status in (301, 307)]
    assert [(r.method, r.status) for r in moved] == [
        ("GET", 301),
        ("GET", 301),
        ("POST", 307),
        ("DELETE", 307),
    ]
    assert all("gh-old" in r.path for r in moved)
    followed = [r for r in sandbox.requests if r.status not in (301, 307)]
    assert all("gh-old" not in r.path for r in followed)


async def test_primary_budget_is_learned_and_never_exceeded() -> None:
    """With a budget of 10 an hour, 34 concurrent gets draw zero 403s: the client waits for
    each reset, and after one sends no more than GitHub restores (``x-ratelimit-limit``)
    before the new window's first answer tells it more."""
    # An hour lasts 0.5 s here; only the primary budget is small.
    sandbox = Sandbox(seed=11, time_scale=7200)
    org: GitHubOrg = sandbox.add_org("github", "gh-tiny", runners=5, rate_limit=10)
    ids = [str(i) for i in org.runners]
    async with sandbox.serve(), _provider(sandbox, "gh-tiny") as provider:
        await provider.get_runner(ids[0])  # learns the budget
        # Slow answers: every caller is queued when a reset comes.
        sandbox.faults.add(Fault(FaultKind.LATENCY, method="GET", delay=0.05))
        runners = await asyncio.gather(*(provider.get_runner(ids[i % 5]) for i in range(34)))
    assert len(runners) == 34
    assert sandbox.count(status=403) == 0
    assert sandbox.count(status=429) == 0
    assert sandbox.count(status=200) == 35


async def test_secondary_limit_403_is_waited_out() -> None:
    """Past the secondary points limit the sandbox answers 403 + retry-after; each is waited out.

    The sandbox's retry-after is the time until the window's oldest request
    slides out, so by its own arrival times no retry comes sooner than a
    window after the first request.
    """
    sandbox = Sandbox(
        seed=11,
        time_scale=TIME_SCALE,
        retry_after="decimal",
        vendor_options={"github": {"points_per_minute": 10}},
    )
    org: GitHubOrg = sandbox.add_org("github", "gh-acme", runners=5)
    ids = [str(i) for i in org.runners]
    # The client's own buckets are lifted: only the sandbox's secondary limit holds.
    async with (
        sandbox.serve(),
        _provider(sandbox, "gh-acme", rate_limits={"*": RateLimit(1000, 1.0)}) as provider,
    ):
        runners = await asyncio.gather(*(provider.get_runner(ids[i % 5]) for i in range(16)))
    assert len(runners) == 16
    assert sandbox.count(status=403) >= 1
    assert sandbox.count(status=200) == 16
    arrivals = sorted(r.t for r in sandbox.requests)
    # The 16 first attempts went out at once; what came later are the retries.
    window = 60 / TIME_SCALE
    assert all(t >= arrivals[0] + window for t in arrivals[16:])


async def test_mutation_burst_is_paced_one_at_a_time() -> None:
    """Twelve concurrent label changes reach GitHub one at a time, a (scaled) second apart.

    The sandbox allows one request in flight per token here, so any overlap
    would be refused with a secondary-limit 403.
    """
    sandbox = Sandbox(seed=11, time_scale=TIME_SCALE, vendor_options={"github": {"concurrency": 1}})
    org: GitHubOrg = sandbox.add_org("github", "gh-acme", runners=12)
    ids = [str(i) for i in org.runners]
    # Answers take a while, so that overlapping sends could not go unnoticed.
    sandbox.faults.add(Fault(FaultKind.LATENCY, method="POST", delay=0.02))
    async with sandbox.serve(), _provider(sandbox, "gh-acme") as provider:
        await asyncio.gather(*(provider.add_labels(i, ["burst"]) for i in ids))
    posts = sorted(r.t for r in sandbox.requests if r.method == "POST")
    assert len(posts) == 12
    assert sandbox.count(status=403) == 0
    spacing = 1.0 / TIME_SCALE
    assert all(b - a >= spacing for a, b in itertools.pairwise(posts))


async def test_enterprise_server_prefix_and_its_links() -> None:
    """Served under /api/v3 as GitHub Enterprise Server is, every page link stays under it."""
    sandbox = Sandbox(seed=11, vendor_options={"github": {"path_prefix": "/api/v3"}})
    org: GitHubOrg = sandbox.add_org("github", "acme/widgets", runners=205)
    async with sandbox.serve():
        base_url = sandbox.url("github") + "/api/v3"
        async with _provider(sandbox, "acme/widgets", base_url=base_url) as provider:
            runners = [r async for r in provider.list_runners()]
    assert sorted(r.id for r in runners) == sorted(map(str, org.runners))
    assert [r.path.startswith("/api/v3/") for r in sandbox.requests] == [True] * 3


@pytest.mark.parametrize("status", [403, 429])
async def test_an_exhausted_budget_refusal_waits_for_the_reset(status: int) -> None:
    """A budget spent by someone else: GitHub's 403 (or 429) with remaining 0 is waited out,
    not a failure; the retry arrives after the reset the refusal announced."""
    sandbox = Sandbox(
        seed=11, time_scale=7200, vendor_options={"github": {"rate_limit_status": status}}
    )
    org: GitHubOrg = sandbox.add_org("github", "gh-tiny", runners=2, rate_limit=3)
    runner_id = str(next(iter(org.runners)))
    async with sandbox.serve():
        spender = _provider(sandbox, "gh-tiny", rate_limits={"*": RateLimit(3, 3600)})
        async with spender:
            for _ in range(3):
                await spender.get_runner(runner_id)
        # A new provider with its own limiter has not heard of the spent budget.
        async with _provider(sandbox, "gh-tiny", limiter=LocalLimiter()) as provider:
            runner = await provider.get_runner(runner_id)
    assert runner.id == runner_id
    statuses = [r.status for r in sandbox.requests]
    assert statuses == [200, 200, 200, status, 200]
    refused, served = sandbox.requests[3:]
    # The window (an hour scaled to 0.5 s) had closed before the retry arrived.
    assert served.t - sandbox.requests[0].t >= 3600 / 7200
    assert refused.operation == served.operation == "get_runner"


async def test_refusals_github_documents() -> None:
    """A read-only token's mutation is PermissionDeniedError, a busy runner's delete a 422, a taken
    JIT name a 409, an unknown runner group a 404: each after exactly one request."""
    org: GitHubOrg
    sandbox = Sandbox(seed=11, time_scale=TIME_SCALE)
    org = sandbox.add_org("github", "gh-acme", runners=4)
    busy = next(r for r in org.runners.values() if r["busy"])
    async with sandbox.serve():
        read_only = _provider(sandbox, "gh-acme", token=org.read_token)
        async with read_only, _provider(sandbox, "gh-acme") as provider:
            with pytest.raises(errors.PermissionDeniedError):
                await read_only.delete_runner(str(busy["id"]))
            with pytest.raises(errors.APIError) as unprocessable:
                await provider.delete_runner(str(busy["id"]))
            with pytest.raises(errors.APIError) as conflict:
                await provider.create_runner(busy["name"])
            with pytest.raises(errors.NotFoundError):
                await provider.create_runner("jit-x", runner_group_id=42)
    assert unprocessable.value.status == 422
    assert conflict.value.status == 409
    assert [r.status for r in sandbox.requests] == [403, 422, 409, 404]
    assert int(busy["id"]) in org.runners


async def test_mixed_traffic_stays_under_the_secondary_points_limit() -> None:
    """Reads and label writes well past a minute's worth draw no secondary-limit 403: the
    client's buckets keep any minute under GitHub's 900 points (read 1, write 5)."""
    sandbox = Sandbox(seed=11, time_scale=TIME_SCALE, retry_after="decimal")
    org: GitHubOrg = sandbox.add_org("github", "gh-acme", runners=10)
    ids = [str(i) for i in org.runners]
    async with sandbox.serve(), _provider(sandbox, "gh-acme", max_retries=0) as provider:
        reads = [provider.get_runner(ids[i % 10]) for i in range(700)]
        writes = [provider.add_labels(ids[i % 10], [f"l{i}"]) for i in range(70)]
        await asyncio.gather(*reads, *writes)
    assert sandbox.count(status=403) == 0
    assert sandbox.count(status=200) == 770
