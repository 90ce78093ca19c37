"""GitHub: wire-to-model, Link paging, budget and error readers, scopes, and hostile servers.

Pure functions are tested without a socket; the rest runs against small
aiohttp apps on 127.0.0.1 that answer as GitHub would, or as it should not.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import attrs
import pytest
from aiohttp import web
from hypothesis import given, settings
from hypothesis import strategies as st

from runnerhub import (
    Capability,
    CreatedRunner,
    GitHubProvider,
    RegistrationToken,
    RetryPolicy,
    RunnerKind,
    RunnerProvider,
    RunnerStatus,
    Secret,
    SupportsHealth,
    SupportsLabels,
    SupportsRegistrationTokens,
    errors,
)
from runnerhub._sansio import ErrorInfo
from runnerhub.limits import Budget
from runnerhub.provider import unsupported
from runnerhub.vendors import github

SAMPLES = Path(__file__).parent / "samples"
FAST = RetryPolicy(base_delay=0.01, max_delay=0.05, max_total=10)
TOKEN = "ghp_s3cr3tT0kenValue"
NOW = 1_700_000_000.0

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
PURE = settings(max_examples=200, database=None, deadline=None)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)
RUNNER_LIKE = st.fixed_dictionaries(
    {},
    optional={
        "id": st.integers(min_value=-2) | JSON,
        "name": JSON,
        "status": st.sampled_from(["online", "offline", "busy"]) | JSON,
        "labels": st.lists(st.fixed_dictionaries({}, optional={"name": JSON}), max_size=3) | JSON,
        "busy": JSON,
    },
)


def _sample(name: str) -> Any:
    return json.loads((SAMPLES / name).read_text())


# -- wire to model ---------------------------------------------------------------


def test_runner_maps_the_documented_example() -> None:
    """The REF runner maps to id "23", SELF_HOSTED, ONLINE, its label names; the rest in raw."""
    data = _sample("github_runner.json")
    runner = github.runner_from_wire(data, "github-acme")
    assert (runner.provider, runner.account, runner.id, runner.name) == (
        "github",
        "github-acme",
        "23",
        "MBP",
    )
    assert runner.kind is RunnerKind.SELF_HOSTED
    assert runner.status is RunnerStatus.ONLINE
    assert runner.labels == ("self-hosted", "X64", "macOS", "no-gpu")
    assert (runner.raw["os"], runner.raw["busy"], runner.raw["ephemeral"]) == ("macos", True, False)


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("offline", RunnerStatus.OFFLINE),
        ("online", RunnerStatus.ONLINE),
        ("idle", RunnerStatus.UNKNOWN),
        (None, RunnerStatus.UNKNOWN),
        (7, RunnerStatus.UNKNOWN),
    ],
)
def test_status_values_map_or_stay_unknown(status: Any, expected: RunnerStatus) -> None:
    """online/offline map to ONLINE/OFFLINE; unknown or odd values are UNKNOWN, not a crash."""
    runner = github.runner_from_wire({"id": 1, "name": "r", "status": status}, "a")
    assert runner.status is expected


def test_unknown_fields_are_kept_and_missing_optionals_tolerated() -> None:
    """New fields stay in raw; no labels gives (); a missing name falls back to the id."""
    data = {"id": 9, "runner_group_id": 3, "future_field": {"x": 1}}
    runner = github.runner_from_wire(data, "a")
    assert (runner.id, runner.name, runner.labels) == ("9", "9", ())
    assert runner.raw["future_field"] == {"x": 1}
    assert runner.raw["runner_group_id"] == 3


@pytest.mark.parametrize(
    "data",
    [
        [],
        {"name": "no id"},
        {"id": "23", "name": "string id"},
        {"id": True, "name": "boolean id"},
        {"id": -1, "name": "negative id"},
        {"id": 1, "labels": "self-hosted"},
        {"id": 1, "labels": [{"id": 5}]},
        {"id": 1, "labels": ["self-hosted"]},
    ],
)
def test_malformed_runners_raise_a_typed_error(data: Any) -> None:
    """A runner without an integer id, or with a label lacking a name, is ResponseFormatError."""
    with pytest.raises(errors.ResponseFormatError):
        github.runner_from_wire(data, "a")


# -- Link header -----------------------------------------------------------------


def test_link_header_of_the_docs() -> None:
    """The pagination docs' four-link example gives each relation its URL."""
    header = (
        '<https://api.github.com/repositories/1300192/issues?page=2>; rel="prev", '
        '<https://api.github.com/repositories/1300192/issues?page=4>; rel="next", '
        '<https://api.github.com/repositories/1300192/issues?page=515>; rel="last", '
        '<https://api.github.com/repositories/1300192/issues?page=1>; rel="first"'
    )
    links = github.parse_link_header(header)
    assert links["next"] == "https://api.github.com/repositories/1300192/issues?page=4"
    assert links["last"].endswith("page=515")
    assert set(links) == {"prev", "next", "last", "first"}
    assert github.next_link(header) == links["next"]


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("", None),
        ('<https://h/x?page=1>; rel="prev"', None),
        ("<https://h/x?page=2>;rel=next", "https://h/x?page=2"),
        ('<https://h/x?page=2> ; type="a" ; REL="last next"', "https://h/x?page=2"),
        ('<https://h/a?p=1,2>; rel="next", <https://h/b>; rel="next"', "https://h/a?p=1,2"),
        ('garbage, <>; rel="next"', None),
        ("<https://h/x>; rel", None),
    ],
)
def test_next_link_variants(header: str | None, expected: str | None) -> None:
    """Spacing, case, several relations, commas inside the URL and junk are read sensibly."""
    assert github.next_link(header) == expected


@pytest.mark.parametrize(
    ("link", "base", "expected"),
    [
        (
            "https://api.github.com/repositories/1/runners?page=2",
            "https://api.github.com",
            "/repositories/1/runners?page=2",
        ),
        (
            "https://ghe.example.com/api/v3/orgs/a/actions/runners?per_page=100&page=3",
            "https://ghe.example.com/api/v3",
            "/orgs/a/actions/runners?per_page=100&page=3",
        ),
        (
            "/orgs/a/actions/runners?page=2",
            "https://api.github.com",
            "/orgs/a/actions/runners?page=2",
        ),
        ("https://API.github.com:443/x", "https://api.github.com", "/x"),
    ],
)
def test_api_path_keeps_same_origin_links(link: str, base: str, expected: str) -> None:
    """A link on the API's origin and under its base path becomes a path to send."""
    assert github.api_path(link, base) == expected


@pytest.mark.parametrize(
    "link",
    [
        "https://evil.example/orgs/a/actions/runners?page=2",
        "http://ghe.example.com/api/v3/x",
        "https://ghe.example.com:8443/api/v3/x",
        "https://ghe.example.com/other/x",
        "https://ghe.example.com/api/v3/../../x",
        "https://user:pw@ghe.example.com/api/v3/x",
        "//evil.example/api/v3/x",
    ],
)
def test_api_path_refuses_other_origins_and_paths(link: str) -> None:
    """Another scheme, host, port, base path or embedded credentials is refused."""
    with pytest.raises(ValueError, match=r"."):
        github.api_path(link, "https://ghe.example.com/api/v3")


# -- budget and errors -------------------------------------------------------------


def test_budget_from_headers() -> None:
    """x-ratelimit-remaining, -reset (epoch seconds) and -limit give the budget, reset, window."""
    headers = {
        "x-ratelimit-limit": "5000",
        "x-ratelimit-remaining": "4321",
        "x-ratelimit-reset": str(int(NOW) + 1200),
        "x-ratelimit-resource": "core",
    }
    assert github.budget_from_headers(headers, now=NOW) == Budget(4321, 1200.0, 5000)
    past = {**headers, "x-ratelimit-reset": str(int(NOW) - 5)}
    assert github.budget_from_headers(past, now=NOW) == Budget(4321, 0.0, 5000)
    for limit in ("0", "many", None):
        unknown = (
            {**headers, "x-ratelimit-limit": limit}
            if limit
            else {k: v for k, v in headers.items() if k != "x-ratelimit-limit"}
        )
        assert github.budget_from_headers(unknown, now=NOW) == Budget(4321, 1200.0)


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"x-ratelimit-remaining": "10"},
        {"x-ratelimit-remaining": "ten", "x-ratelimit-reset": "1700000060"},
        {"x-ratelimit-remaining": "-1", "x-ratelimit-reset": "1700000060"},
        {"x-ratelimit-remaining": "10", "x-ratelimit-reset": "soon"},
        {"x-ratelimit-remaining": "10", "x-ratelimit-reset": "1e20"},
        {
            "x-ratelimit-remaining": "0",
            "x-ratelimit-reset": "1700000060",
            "x-ratelimit-resource": "search",
        },
    ],
)
def test_budget_absent_malformed_or_foreign_is_none(headers: dict[str, str]) -> None:
    """No budget is learned from missing, malformed or another resource's headers."""
    assert github.budget_from_headers(headers, now=NOW) is None


def _info(status: int, headers: dict[str, str], body: Any = None) -> ErrorInfo:
    raw = json.dumps(body).encode() if body is not None else b""
    return github.error_info(status, headers, raw, now=NOW)


def test_rate_limit_signals_in_documented_order() -> None:
    """retry-after wins; else remaining 0 waits for the reset; else a limit message waits 60 s."""
    secondary = _sample("github_error_secondary.json")
    both = {"retry-after": "30", "x-ratelimit-remaining": "0", "x-ratelimit-reset": "1700000900"}
    info = _info(403, both, secondary)
    assert (info.rate_limited, info.retry_after) == (True, 30.0)
    assert info.message is not None
    assert info.message.startswith("You have exceeded a secondary rate limit")
    primary = {"x-ratelimit-remaining": "0", "x-ratelimit-reset": "1700000900"}
    body = {"message": "API rate limit exceeded for user ID 1."}
    assert _info(429, primary, body).retry_after == 900.0
    assert _info(403, {"x-ratelimit-remaining": "0"}, body).retry_after == 60.0
    info = _info(403, {"x-ratelimit-remaining": "4000"}, secondary)
    assert (info.rate_limited, info.retry_after) == (True, 60.0)
    assert _info(429, {}).retry_after == 60.0


def test_plain_403_is_a_permission_error() -> None:
    """A 403 with no rate-limit signal is not rate-limited (PermissionDeniedError, no retry)."""
    body = {"message": "Resource not accessible by integration", "documentation_url": "x"}
    info = _info(403, {"x-ratelimit-remaining": "4999"}, body)
    assert not info.rate_limited
    assert info.retry_after is None
    assert info.message == "Resource not accessible by integration"


def test_error_bodies_are_read_leniently() -> None:
    """A validation error gives its first code; HTML, arrays and junk give nothing."""
    body = {"message": "Validation Failed", "errors": [{"code": "already_exists"}]}
    assert _info(422, {}, body) == ErrorInfo(code="already_exists", message="Validation Failed")
    assert github.error_info(502, {}, b"<html>bad gateway</html>", now=NOW) == ErrorInfo()
    assert _info(404, {}, ["not", "an", "object"]) == ErrorInfo()
    assert _info(500, {}, {"message": 5}) == ErrorInfo()


# -- scopes, construction, secrets -------------------------------------------------


@pytest.mark.parametrize(
    ("scope", "prefix"),
    [
        ({"org": "acme"}, "/orgs/acme/actions/runners"),
        ({"repo": "octo-org/hello.world"}, "/repos/octo-org/hello.world/actions/runners"),
        ({"enterprise": "big-co"}, "/enterprises/big-co/actions/runners"),
        ({"org": "a b?"}, "/orgs/a%20b%3F/actions/runners"),
        ({"org": ".."}, "/orgs/%2E%2E/actions/runners"),
    ],
)
def test_scope_prefix(scope: dict[str, str], prefix: str) -> None:
    """Each scope builds its documented prefix from escaped segments; repo is two segments."""
    assert github.scope_prefix(**{"org": None, "repo": None, "enterprise": None, **scope}) == prefix


@pytest.mark.parametrize(
    "scope",
    [
        {},
        {"org": "a", "repo": "a/b"},
        {"org": "a", "enterprise": "e"},
        {"repo": "just-a-name"},
        {"repo": "a/b/c"},
        {"repo": "/b"},
        {"org": "a/b"},
        {"org": ""},
        {"org": " acme"},
    ],
)
def test_bad_scopes_are_refused(scope: dict[str, str]) -> None:
    """No scope, several, or a malformed one is a UsageError before any request."""
    with pytest.raises(errors.UsageError):
        GitHubProvider(TOKEN, **scope)  # type: ignore[arg-type]  # the test's keyword dict


@pytest.mark.parametrize("token", ["", "two words", "line\nbreak", "tab\there"])
def test_bad_tokens_are_refused(token: str) -> None:
    """An empty token or one with whitespace (it would break the header) is refused."""
    with pytest.raises(errors.UsageError):
        GitHubProvider(token, org="acme")


def test_declarations_and_capabilities() -> None:
    """Class declarations name the token, the three scopes, the buckets and the capabilities."""
    provider = GitHubProvider(TOKEN, org="acme")
    assert provider.provider == "github"
    assert provider.account == "github-acme"
    assert provider.base_url == "https://api.github.com"
    assert [(f.name, f.env, f.secret) for f in GitHubProvider.credentials] == [
        ("token", "GITHUB_TOKEN", True)
    ]
    assert [o.name for o in GitHubProvider.options] == ["org", "repo", "enterprise"]
    assert set(GitHubProvider.default_limits) == {"*", "mutations"}
    assert Capability.LABELS in provider.capabilities
    assert isinstance(provider, RunnerProvider)
    assert isinstance(provider, SupportsLabels)
    assert isinstance(provider, SupportsRegistrationTokens)
    assert not isinstance(provider, SupportsHealth)
    error = unsupported(provider, "runner_health")
    assert isinstance(error, errors.UnsupportedOperation)
    assert error.message == "github has no runner_health operation"
    assert (error.provider, error.account, error.operation) == (
        "github",
        "github-acme",
        "runner_health",
    )


def test_mutation_pacing_is_one_a_second_under_the_creation_ceiling() -> None:
    """Mutations: 80 a minute, one at a time with an aiolimiter pacer; "*" keeps 900 points."""
    mutations = GitHubProvider.default_limits["mutations"]
    assert max(limit.max_requests / limit.period_seconds for limit in mutations) <= 80 / 60
    assert any(lim.burst == 1 and lim.max_requests / lim.period_seconds <= 1 for lim in mutations)
    per_minute = min(lim.max_requests * 60 / lim.period_seconds for lim in mutations)
    (star,) = GitHubProvider.default_limits["*"]
    reads = star.max_requests * 60 / star.period_seconds - per_minute
    assert reads * 1 + per_minute * 5 <= 900


def test_from_env_scope_precedence_and_api_url() -> None:
    """from_env reads GITHUB_TOKEN, the scope variables (keywords first) and GITHUB_API_URL."""
    env = {
        "GITHUB_TOKEN": TOKEN,
        "GITHUB_REPOSITORY": "acme/widgets",
        "GITHUB_API_URL": "https://ghe.example.com/api/v3",
    }
    repo = GitHubProvider.from_env(env)
    assert (repo.scope, repo.base_url) == ("acme/widgets", "https://ghe.example.com/api/v3")
    assert GitHubProvider.from_env({**env, "GITHUB_ORG": "acme"}).scope == "acme"
    assert GitHubProvider.from_env({**env, "GITHUB_ENTERPRISE": "big"}).scope == "big"
    assert GitHubProvider.from_env(env, org="other").scope == "other"
    with pytest.raises(errors.UsageError, match="GITHUB_TOKEN"):
        GitHubProvider.from_env({"GITHUB_ORG": "acme"})
    with pytest.raises(errors.UsageError, match="GITHUB_ORG"):
        GitHubProvider.from_env({"GITHUB_TOKEN": TOKEN})


def test_secrets_stay_out_of_reprs() -> None:
    """The token, a JIT config and a registration token never appear in any repr."""
    provider = GitHubProvider(TOKEN, org="acme")
    created = CreatedRunner(runner_id="23", name="n", jit_config=Secret("jit-s3cr3t"))
    token = RegistrationToken(Secret("AABF3JGZDX3P5PMEXLND6TS6FCWO6"), None)
    shown = " ".join(repr(x) for x in (provider, provider._http, created, token))
    for secret in (TOKEN, "jit-s3cr3t", "AABF3JGZDX3P5PMEXLND6TS6FCWO6"):
        assert secret not in shown


# -- hostile servers ----------------------------------------------------------------


@attrs.define
class Served:
    """A loopback app's base URL and the requests it received."""

    base_url: str = ""
    requests: list[web.Request] = attrs.Factory(list)
    bodies: list[Any] = attrs.Factory(list)


@asynccontextmanager
async def serve(handler: Handler) -> AsyncIterator[Served]:
    """Serve ``handler`` on every path of 127.0.0.1, recording each request and JSON body."""
    served = Served()

    async def recording(request: web.Request) -> web.StreamResponse:
        served.requests.append(request)
        served.bodies.append(await request.json() if request.can_read_body else None)
        return await handler(request)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", recording)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.2)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    served.base_url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        yield served
    finally:
        await runner.cleanup()


def _client(base_url: str, **options: Any) -> GitHubProvider:
    options.setdefault("retry", FAST)
    if not {"org", "repo", "enterprise"} & set(options):
        options["org"] = "acme"
    return GitHubProvider(TOKEN, base_url=base_url, **options)


def _runner(runner_id: int, **fields: Any) -> dict[str, Any]:
    return {
        "id": runner_id,
        "name": f"r{runner_id}",
        "os": "linux",
        "status": "online",
        "busy": False,
        "labels": [{"id": 1, "name": "self-hosted", "type": "read-only"}],
        **fields,
    }


async def test_list_follows_link_pages_on_another_path() -> None:
    """Listing sends per_page=100 and GitHub's headers, follows rel="next" as given, dedupes."""
    pages = {
        "1": ([_runner(1), _runner(2)], "/repositories/9/runners?per_page=100&page=2"),
        "2": ([_runner(2), _runner(3)], "/repositories/9/runners?per_page=100&page=3"),
        "3": ([_runner(4, status="offline")], None),
    }
    served_url: list[str] = []

    async def handler(request: web.Request) -> web.StreamResponse:
        runners, following = pages[request.query.get("page", "1")]
        headers = {"Link": f'<{served_url[0]}{following}>; rel="next"'} if following else {}
        return web.json_response({"total_count": 4, "runners": runners}, headers=headers)

    async with serve(handler) as served:
        served_url.append(served.base_url)
        async with _client(served.base_url) as provider:
            runners = [r async for r in provider.list_runners()]
    assert [r.id for r in runners] == ["1", "2", "3", "4"]
    assert runners[-1].status is RunnerStatus.OFFLINE
    assert [r.path for r in served.requests] == [
        "/orgs/acme/actions/runners",
        "/repositories/9/runners",
        "/repositories/9/runners",
    ]
    assert served.requests[0].query["per_page"] == "100"
    for request in served.requests:
        assert request.headers["Authorization"] == f"Bearer {TOKEN}"
        assert request.headers["Accept"] == "application/vnd.github+json"
        assert request.headers["X-GitHub-Api-Version"] == "2022-11-28"
        assert request.headers["User-Agent"]


async def test_enterprise_server_base_path_is_joined() -> None:
    """With base_url .../api/v3 the scope path is appended to it, not put in its place."""

    async def handler(request: web.Request) -> web.StreamResponse:
        return web.json_response(_runner(7))

    async with (
        serve(handler) as served,
        _client(served.base_url + "/api/v3", repo="acme/widgets") as provider,
    ):
        runner = await provider.get_runner("7")
    assert runner.id == "7"
    assert served.requests[0].path == "/api/v3/repos/acme/widgets/actions/runners/7"


async def test_next_link_to_another_host_is_refused() -> None:
    """A rel="next" to another origin raises ResponseFormatError; that host gets no request."""

    async def elsewhere(request: web.Request) -> web.StreamResponse:
        return web.json_response({"total_count": 0, "runners": []})

    async with serve(elsewhere) as other:

        async def handler(request: web.Request) -> web.StreamResponse:
            link = f'<{other.base_url}/orgs/acme/actions/runners?page=2>; rel="next"'
            body = {"total_count": 2, "runners": [_runner(1)]}
            return web.json_response(body, headers={"Link": link})

        async with serve(handler) as served, _client(served.base_url) as provider:
            listed: list[str] = []
            with pytest.raises(errors.ResponseFormatError, match="another origin"):
                listed.extend([r.id async for r in provider.list_runners()])
    assert other.requests == []
    assert len(served.requests) == 1


async def test_next_link_loop_is_refused() -> None:
    """A next link back to a page already read (the first included) raises, never loops."""

    async def handler(request: web.Request) -> web.StreamResponse:
        following = "page=2" if "page" not in request.query else "per_page=100"
        link = f'</orgs/acme/actions/runners?{following}>; rel="next"'
        return web.json_response(
            {"total_count": 1, "runners": [_runner(1)]}, headers={"Link": link}
        )

    async with serve(handler) as served, _client(served.base_url) as provider:
        with pytest.raises(errors.ResponseFormatError, match="loops"):
            [r async for r in provider.list_runners()]
    assert len(served.requests) == 2


async def test_redirect_to_another_host_is_not_followed() -> None:
    """A 307 to another host raises; the token never reaches that host."""

    async def elsewhere(request: web.Request) -> web.StreamResponse:
        return web.json_response(_runner(1))

    async with serve(elsewhere) as other:

        async def handler(request: web.Request) -> web.StreamResponse:
            location = f"{other.base_url}/orgs/acme/actions/runners/1"
            return web.Response(status=307, headers={"Location": location})

        async with serve(handler) as served, _client(served.base_url) as provider:
            with pytest.raises(errors.RunnerHubError):
                await provider.get_runner("1")
    assert all("Authorization" not in r.headers for r in other.requests)
    assert other.requests == []


async def test_plain_403_is_not_retried() -> None:
    """A 403 without rate-limit signals is PermissionDeniedError after exactly one request."""

    async def handler(request: web.Request) -> web.StreamResponse:
        body = {"message": "Must have admin rights to Repository."}
        return web.json_response(body, status=403, headers={"x-ratelimit-remaining": "4999"})

    async with serve(handler) as served, _client(served.base_url) as provider:
        with pytest.raises(errors.PermissionDeniedError) as info:
            await provider.get_runner("1")
    assert info.value.status == 403
    assert len(served.requests) == 1


async def test_secondary_limit_403_waits_and_retries() -> None:
    """A secondary-limit 403 with retry-after is a rate limit: waited out, then retried."""
    answers = [403, 200]

    async def handler(request: web.Request) -> web.StreamResponse:
        if answers.pop(0) == 403:
            body = _sample("github_error_secondary.json")
            return web.json_response(body, status=403, headers={"retry-after": "0"})
        return web.json_response(_runner(1))

    async with serve(handler) as served, _client(served.base_url) as provider:
        runner = await provider.get_runner("1")
    assert runner.id == "1"
    assert len(served.requests) == 2


async def test_create_tokens_labels_and_delete_send_documented_requests(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """JIT create, tokens, labels and delete hit their routes with their bodies; no secret leaks."""
    jit = _sample("github_jitconfig.json")
    expires = "2020-01-22T12:13:35.123-08:00"
    labels = {
        "total_count": 2,
        "labels": [
            {"id": 1, "name": "self-hosted", "type": "read-only"},
            {"id": 2, "name": "gpu", "type": "custom"},
        ],
    }

    async def handler(request: web.Request) -> web.StreamResponse:
        path = request.path.removeprefix("/orgs/acme/actions/runners")
        if path == "/generate-jitconfig":
            return web.json_response(jit, status=201)
        if path in ("/registration-token", "/remove-token"):
            return web.json_response(
                {"token": "LLBF3JGZDX3P5PMEXLND6TS6FCWO6", "expires_at": expires}, status=201
            )
        if path.endswith("/labels") or "/labels/" in path:
            return web.json_response(labels)
        return web.Response(status=204)

    caplog.set_level(logging.DEBUG, logger="runnerhub")
    async with (
        serve(handler) as served,
        _client(served.base_url, rate_limits={"mutations": None}) as p,
    ):
        created = await p.create_runner(
            "New runner", labels=["self-hosted", "no-gpu"], runner_group_id=3
        )
        registration = await p.registration_token()
        removal = await p.remove_token()
        assert await p.list_labels("23") == ("self-hosted", "gpu")
        assert await p.add_labels("23", ["gpu"]) == ("self-hosted", "gpu")
        assert await p.set_labels("23", []) == ("self-hosted", "gpu")
        assert await p.remove_label("23", "gpu/x") == ("self-hosted", "gpu")
        await p.delete_runner("23")
    assert (created.runner_id, created.name) == ("23", "New runner")
    assert created.jit_config == Secret("abc123")
    assert registration.token.get_secret_value() == "LLBF3JGZDX3P5PMEXLND6TS6FCWO6"
    assert removal.expires_at == datetime(2020, 1, 22, 20, 13, 35, 123000, tzinfo=UTC)
    sent = [
        (r.method, r.raw_path.removeprefix("/orgs/acme/actions/runners")) for r in served.requests
    ]
    assert sent == [
        ("POST", "/generate-jitconfig"),
        ("POST", "/registration-token"),
        ("POST", "/remove-token"),
        ("GET", "/23/labels"),
        ("POST", "/23/labels"),
        ("PUT", "/23/labels"),
        ("DELETE", "/23/labels/gpu%2Fx"),
        ("DELETE", "/23"),
    ]
    assert served.bodies[0] == {
        "name": "New runner",
        "runner_group_id": 3,
        "labels": ["self-hosted", "no-gpu"],
    }
    assert served.bodies[4:6] == [{"labels": ["gpu"]}, {"labels": []}]
    shown = " ".join([repr(created), repr(registration), repr(removal), caplog.text])
    for secret in ("abc123", "LLBF3JGZDX3P5PMEXLND6TS6FCWO6", TOKEN):
        assert secret not in shown


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda p: p.create_runner(None), "by name"),
        (lambda p: p.create_runner("r", labels="self-hosted"), "not one string"),
        (lambda p: p.create_runner("r", labels=[]), "1..100"),
        (lambda p: p.create_runner("r", runner_group_id=0), "runner_group_id"),
        (lambda p: p.create_runner("r", runner_group_id=True), "runner_group_id"),
        (lambda p: p.add_labels("1", [""]), "non-empty"),
        (lambda p: p.set_labels("1", ["x"] * 101), "0..100"),
        (lambda p: p.get_runner(""), "non-empty"),
    ],
)
async def test_bad_arguments_send_nothing(
    call: Callable[[GitHubProvider], Awaitable[object]], message: str
) -> None:
    """Arguments GitHub would refuse are a UsageError before any request."""

    async def handler(request: web.Request) -> web.StreamResponse:
        return web.Response(status=500)

    async with serve(handler) as served, _client(served.base_url) as provider:
        with pytest.raises(errors.UsageError, match=message):
            await call(provider)
    assert served.requests == []


async def test_delete_422_is_not_retried_and_verify_reads_one_runner() -> None:
    """A busy runner's 422 on delete is raised at once; verify asks for a one-runner page."""

    async def handler(request: web.Request) -> web.StreamResponse:
        if request.method == "DELETE":
            return web.json_response({"message": "Runner is busy"}, status=422)
        return web.json_response({"total_count": 0, "runners": []})

    async with serve(handler) as served, _client(served.base_url) as provider:
        await provider.verify()
        with pytest.raises(errors.APIError) as info:
            await provider.delete_runner("5")
    assert info.value.status == 422
    assert [(r.method, r.query.get("per_page")) for r in served.requests] == [
        ("GET", "1"),
        ("DELETE", None),
    ]


@pytest.mark.parametrize(
    ("operation", "call", "body"),
    [
        ("list_runners", lambda p: _drain(p.list_runners()), {"runners": "no"}),
        ("list_runners", lambda p: _drain(p.list_runners()), {"total_count": 1, "runners": [1]}),
        ("get_runner", lambda p: p.get_runner("1"), {"id": "1"}),
        ("create_runner", lambda p: p.create_runner("r"), {"runner": {"id": 1}}),
        (
            "create_runner",
            lambda p: p.create_runner("r"),
            {"runner": [], "encoded_jit_config": "x"},
        ),
        ("registration_token", lambda p: p.registration_token(), {"expires_at": "soon"}),
        ("list_labels", lambda p: p.list_labels("1"), {"total_count": 1, "labels": [{}]}),
    ],
)
async def test_malformed_answers_are_format_errors_with_context(
    operation: str, call: Callable[[GitHubProvider], Awaitable[object]], body: Any
) -> None:
    """A body of the wrong shape is ResponseFormatError naming provider, account and operation."""

    async def handler(request: web.Request) -> web.StreamResponse:
        return web.json_response(body, status=201 if request.method == "POST" else 200)

    async with (
        serve(handler) as served,
        _client(served.base_url, rate_limits={"mutations": None}) as provider,
    ):
        with pytest.raises(errors.ResponseFormatError) as info:
            await call(provider)
    assert (info.value.provider, info.value.account) == ("github", "github-acme")
    assert info.value.operation == operation


async def _drain(runners: AsyncIterator[object]) -> list[object]:
    return [runner async for runner in runners]


async def test_name_filter_and_wall_clock_readers() -> None:
    """list_runners(name=) sends GitHub's name filter; the VendorSpec readers use the clock."""

    async def handler(request: web.Request) -> web.StreamResponse:
        return web.json_response({"total_count": 1, "runners": [_runner(3)]})

    async with serve(handler) as served, _client(served.base_url) as provider:
        assert [r.id async for r in provider.list_runners(name="r3")] == ["3"]
    assert served.requests[0].query["name"] == "r3"
    budget = github.read_budget({"x-ratelimit-remaining": "5", "x-ratelimit-reset": "1"})
    assert budget == Budget(5, 0.0)
    assert github.parse_error(429, {}, b"").rate_limited


def test_scope_that_is_not_text_is_refused() -> None:
    """A scope holding a lone surrogate cannot be encoded and is a UsageError."""
    with pytest.raises(errors.UsageError, match="org is not a valid name"):
        GitHubProvider(TOKEN, org="\ud800")


@PURE
@given(RUNNER_LIKE | JSON)
def test_any_payload_maps_or_raises_a_typed_error(data: Any) -> None:
    """Whatever GitHub sends as a runner maps to a Runner or raises ResponseFormatError."""
    try:
        runner = github.runner_from_wire(data, "a")
    except errors.ResponseFormatError:
        return
    assert runner.id == str(data["id"])
    assert all(isinstance(label, str) and label for label in runner.labels)


@PURE
@given(st.text(), st.sampled_from(["https://api.github.com", "https://ghe.example.com/api/v3"]))
def test_any_link_header_parses_and_any_link_is_kept_or_refused(header: str, base: str) -> None:
    """Any Link header parses; any next link becomes a path under the base or a ValueError."""
    link = github.next_link(header)
    if link is None:
        return
    try:
        path = github.api_path(link, base)
    except ValueError:
        return
    assert path == "" or path.startswith(("/", "?"))


@PURE
@given(
    st.sampled_from([400, 401, 403, 404, 409, 422, 429, 500, 503]),
    st.dictionaries(
        st.sampled_from(["retry-after", "x-ratelimit-remaining", "x-ratelimit-reset"]),
        st.text(max_size=12),
    ),
    st.binary(max_size=64) | JSON.map(lambda value: json.dumps(value).encode()),
)
def test_any_error_response_classifies(status: int, headers: dict[str, str], body: bytes) -> None:
    """Any status, headers and body give an ErrorInfo; only 403/429 are ever rate-limited."""
    info = github.error_info(status, headers, body, now=NOW)
    if info.rate_limited:
        assert status in (403, 429)
        assert info.retry_after is not None
        assert 0 <= info.retry_after <= 86_400
    else:
        assert status != 429
