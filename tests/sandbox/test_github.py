"""The GitHub Actions self-hosted runners emulation, against ``github-runners-notes.md``."""

from __future__ import annotations

import ast
import asyncio
import base64
import json
import re
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import aiohttp
import pytest
from aiohttp import web

import runnerhub.sandbox
from runnerhub.sandbox import Fault, FaultKind, Sandbox
from runnerhub.sandbox._common import SandboxAccount, Service, Settings
from runnerhub.sandbox._github import GitHubService
from runnerhub.sandbox._github_state import GitHubOrg

SANDBOX_DIR = Path(runnerhub.sandbox.__file__).parent
RUNNER_FIELDS = {"id", "runner_group_id", "name", "os", "status", "busy", "ephemeral", "labels"}
RATE_HEADERS = (
    "x-ratelimit-limit",
    "x-ratelimit-remaining",
    "x-ratelimit-used",
    "x-ratelimit-reset",
    "x-ratelimit-resource",
)
LINK = re.compile(r'<([^>]+)>; rel="(\w+)"')


def auth(org: GitHubOrg, scheme: str = "Bearer", *, read_only: bool = False) -> dict[str, str]:
    """An ``Authorization`` header with the org's admin (or read-only) token."""
    token = org.read_token if read_only else org.token
    return {"Authorization": f"{scheme} {token}"}


def links(resp: aiohttp.ClientResponse) -> dict[str, str]:
    """The ``Link`` header as ``{rel: url}``."""
    return {rel: url for url, rel in LINK.findall(resp.headers.get("Link", ""))}


def github(sandbox: Sandbox) -> GitHubService:
    """The sandbox's GitHub service."""
    service = sandbox.service("github")
    assert isinstance(service, GitHubService)
    return service


@pytest.fixture
def sandbox() -> Sandbox:
    """An empty sandbox with default settings."""
    return Sandbox(seed=5)


@pytest.fixture
async def url(sandbox: Sandbox) -> AsyncIterator[str]:
    """``sandbox`` serving on loopback; its base URL."""
    async with sandbox.serve() as base_url:
        yield base_url


def runners_path(org: GitHubOrg) -> str:
    """The runners path of ``org``'s scope."""
    kind = {"org": "orgs", "repo": "repos", "enterprise": "enterprises"}[org.scope]
    return f"/{kind}/{org.name}/actions/runners"


# -- listing and pagination -------------------------------------------------------------


async def test_list_envelope_and_runner_objects(
    sandbox: Sandbox, url: str, http: aiohttp.ClientSession
) -> None:
    """List returns ``{total_count, runners}`` of §3 runner objects, 30 per page by default."""
    org = sandbox.add_org("github", "acme", runners=45)
    async with http.get(f"{url}/orgs/acme/actions/runners", headers=auth(org)) as resp:
        assert resp.status == 200
        body = await resp.json()
    assert body["total_count"] == 45
    assert len(body["runners"]) == 30
    assert [r["id"] for r in body["runners"]] == list(org.runners)[:30]
    runners = list(org.runners.values())
    for runner in runners:
        assert set(runner) == RUNNER_FIELDS
        assert isinstance(runner["id"], int)
        assert runner["runner_group_id"] == 1
        names = [label["name"] for label in runner["labels"]]
        assert names[0] == "self-hosted"
        assert {label["type"] for label in runner["labels"]} <= {"read-only", "custom"}
        assert not (runner["busy"] and runner["status"] == "offline")
    assert {r["os"] for r in runners} == {"linux", "macos", "windows"}
    assert {r["status"] for r in runners} == {"online", "offline"}
    assert any(r["busy"] for r in runners)
    assert any(r["ephemeral"] for r in runners)
    assert any(label["type"] == "custom" for r in runners for label in r["labels"])
    assert {"X64", "ARM64"} <= {label["name"] for r in runners for label in r["labels"]}


async def test_link_headers_walk_every_page(
    sandbox: Sandbox, url: str, http: aiohttp.ClientSession
) -> None:
    """``Link`` carries next/last, then prev/next/last/first, then prev/first (RFC 8288)."""
    org = sandbox.add_org("github", "acme", runners=25)
    base = f"{url}/organizations/{org.id}/actions/runners?per_page=10"
    async with http.get(f"{url}/orgs/acme/actions/runners?per_page=10", headers=auth(org)) as r:
        first = links(r)
        page = await r.json()
    assert first == {"next": f"{base}&page=2", "last": f"{base}&page=3"}
    assert page["total_count"] == 25
    async with http.get(first["next"], headers=auth(org)) as resp:
        assert links(resp) == {
            "prev": f"{base}&page=1",
            "next": f"{base}&page=3",
            "last": f"{base}&page=3",
            "first": f"{base}&page=1",
        }
    async with http.get(first["last"], headers=auth(org)) as resp:
        assert links(resp) == {"prev": f"{base}&page=2", "first": f"{base}&page=1"}
        assert len((await resp.json())["runners"]) == 5


async def test_following_next_yields_each_runner_once(
    sandbox: Sandbox, url: str, http: aiohttp.ClientSession
) -> None:
    """Following ``rel="next"`` from page one until it is absent lists every runner once."""
    org = sandbox.add_org("github", "acme", runners=23)
    seen: list[int] = []
    next_url: str | None = f"{url}/orgs/acme/actions/runners?per_page=7"
    while next_url is not None:
        async with http.get(next_url, headers=auth(org)) as resp:
            seen += [r["id"] for r in (await resp.json())["runners"]]
            next_url = links(resp).get("next")
    assert seen == list(org.runners)


@pytest.mark.parametrize(
    "case",
    [
        ("per_page=500", 100, True),
        ("per_page=100&page=3", 0, True),
        ("per_page=abc", 30, True),
        ("page=0", 30, True),
        ("name=ACME-LINUX-001", 1, False),
    ],
)
async def test_page_parameters(
    sandbox: Sandbox, url: str, http: aiohttp.ClientSession, case: tuple[str, int, bool]
) -> None:
    """``per_page`` caps at 100, a page past the end is empty, bad numbers fall back."""
    query, count, has_link = case
    org = sandbox.add_org("github", "acme", runners=150)
    async with http.get(f"{url}/orgs/acme/actions/runners?{query}", headers=auth(org)) as resp:
        body = await resp.json()
        assert ("Link" in resp.headers) is has_link
    assert len(body["runners"]) == count
    assert body["total_count"] == (1 if query.startswith("name") else 150)


async def test_single_page_has_no_link(
    sandbox: Sandbox, url: str, http: aiohttp.ClientSession
) -> None:
    """A listing that fits on one page carries no ``Link`` header."""
    org = sandbox.add_org("github", "acme", runners=3)
    async with http.get(f"{url}/orgs/acme/actions/runners", headers=auth(org)) as resp:
        assert "Link" not in resp.headers
        assert (await resp.json())["total_count"] == 3


# -- scopes ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "scope"), [("acme", "org"), ("acme/api", "repo"), ("acme-ent", "enterprise")]
)
async def test_each_scope_lists_gets_and_deletes(
    sandbox: Sandbox,
    url: str,
    http: aiohttp.ClientSession,
    name: str,
    scope: str,
) -> None:
    """Org, repo and enterprise scopes serve the same operations under their own prefixes."""
    org = sandbox.add_org("github", name, runners=4, scope=scope)
    assert github(sandbox).account(name).options == {scope: name}
    path = f"{url}{runners_path(org)}"
    async with http.get(path, headers=auth(org)) as resp:
        assert (await resp.json())["total_count"] == 4
    idle = next(r for r in org.runners.values() if not r["busy"])
    async with http.get(f"{path}/{idle['id']}", headers=auth(org)) as resp:
        runner = await resp.json()
    assert runner == idle
    # Repository runners belong to no runner group (notes §7).
    assert ("runner_group_id" in runner) is (scope != "repo")
    async with http.delete(f"{path}/{idle['id']}", headers=auth(org)) as resp:
        assert resp.status == 204
        assert await resp.read() == b""
    async with http.get(f"{path}/{idle['id']}", headers=auth(org)) as resp:
        assert resp.status == 404
    assert sandbox.count(vendor="github", org=name, operation="delete_runner") == 1


async def test_scope_kinds_do_not_cross(
    sandbox: Sandbox, url: str, http: aiohttp.ClientSession
) -> None:
    """A repo is not an org, names are case-insensitive, and enterprises answer to their id."""
    repo = sandbox.add_org("github", "acme/api", runners=1)
    ent = sandbox.add_org("github", "acme-ent", runners=2, scope="enterprise", token=repo.token)
    for path, status in [
        ("/orgs/acme/api/actions/runners", 404),
        ("/orgs/acme-ent/actions/runners", 404),
        ("/repos/ACME/Api/actions/runners", 200),
        (f"/repositories/{repo.id}/actions/runners", 200),
        (f"/enterprises/{ent.id}/actions/runners", 200),
        ("/repos/acme%2Fapi/x/actions/runners", 404),
    ]:
        async with http.get(f"{url}{path}", headers=auth(repo)) as resp:
            assert resp.status == status, path


async def test_ghes_prefix(http: aiohttp.ClientSession) -> None:
    """With ``path_prefix="/api/v3"`` the API and its ``Link`` URLs live under the prefix."""
    sandbox = Sandbox(vendor_options={"github": {"path_prefix": "/api/v3", "link_by_id": False}})
    org = sandbox.add_org("github", "acme", runners=3)
    async with sandbox.serve() as url:
        async with http.get(f"{url}/orgs/acme/actions/runners", headers=auth(org)) as resp:
            assert resp.status == 404
        path = f"{url}/api/v3/orgs/acme/actions/runners"
        async with http.get(f"{path}?per_page=2", headers=auth(org)) as resp:
            assert resp.status == 200
            assert links(resp)["next"] == f"{path}?per_page=2&page=2"
    with pytest.raises(ValueError, match="path_prefix"):
        GitHubService(Settings(), path_prefix="/api/v3/")


# -- auth -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({}, "Requires authentication"),
        ({"Authorization": "Bearer ghp_wrong"}, "Bad credentials"),
        ({"Authorization": "Basic Z2g6cGF0"}, "Bad credentials"),
        ({"Authorization": "Bearer"}, "Bad credentials"),
    ],
)
async def test_bad_credentials_are_401(
    sandbox: Sandbox,
    url: str,
    http: aiohttp.ClientSession,
    headers: dict[str, str],
    message: str,
) -> None:
    """Missing or wrong tokens get 401 with GitHub's body and the unauthenticated budget."""
    sandbox.add_org("github", "acme", runners=1)
    async with http.get(f"{url}/orgs/acme/actions/runners", headers=headers) as resp:
        assert resp.status == 401
        body = await resp.json()
        assert resp.headers["x-ratelimit-limit"] == "60"
        assert resp.headers["x-ratelimit-remaining"] == "59"
    assert body == {
        "message": message,
        "documentation_url": "https://docs.github.com/rest",
        "status": "401",
    }


async def test_bearer_and_token_schemes(
    sandbox: Sandbox, url: str, http: aiohttp.ClientSession
) -> None:
    """``Bearer`` and ``token`` both carry the token (notes §1), any case."""
    org = sandbox.add_org("github", "acme", runners=2)
    for scheme in ("Bearer", "token", "bearer", "Token"):
        async with http.get(f"{url}/orgs/acme/actions/runners", headers=auth(org, scheme)) as r:
            assert r.status == 200, scheme
    assert sandbox.requests[0].credential not in (org.token, "")


async def test_foreign_and_read_only_tokens(
    sandbox: Sandbox, url: str, http: aiohttp.ClientSession
) -> None:
    """Another scope's token sees 404; a read-only token reads but mutations get 403."""
    acme = sandbox.add_org("github", "acme", runners=2)
    other = sandbox.add_org("github", "other", runners=1)
    path = f"{url}/orgs/acme/actions/runners"
    async with http.get(path, headers=auth(other)) as resp:
        assert resp.status == 404
        assert (await resp.json())["message"] == "Not Found"
    async with http.get(path, headers=auth(acme, read_only=True)) as resp:
        assert resp.status == 200
    async with http.post(f"{path}/registration-token", headers=auth(acme, read_only=True)) as r:
        assert r.status == 403
        assert (await r.json())["message"] == "Resource not accessible by personal access token"
        assert r.headers["x-accepted-github-permissions"] == (
            "organization_self_hosted_runners=write"
        )
        assert int(r.headers["x-ratelimit-remaining"]) > 0


async def test_user_agent_and_api_version(
    sandbox: Sandbox, url: str, http: aiohttp.ClientSession
) -> None:
    """No ``User-Agent`` is a plain-text 403; an unknown API version is a 400 (notes §1)."""
    org = sandbox.add_org("github", "acme", runners=1)
    path = f"{url}/orgs/acme/actions/runners"
    async with http.get(path, headers=auth(org), skip_auto_headers=["User-Agent"]) as resp:
        assert resp.status == 403
        assert "User-Agent" in await resp.text()
    headers = {**auth(org), "X-GitHub-Api-Version": "2099-01-01"}
    async with http.get(path, headers=headers) as resp:
        assert resp.status == 400
        assert (await resp.json())["message"] == "API version 2099-01-01 is not supported."
    headers["X-GitHub-Api-Version"] = "2022-11-28"
    async with http.get(path, headers=headers) as resp:
        assert resp.status == 200
        assert resp.headers["x-github-api-version-selected"] == "2022-11-28"


# -- runners, JIT config, tokens --------------------------------------------------------


async def test_unknown_runners_and_scopes_are_404(
    sandbox: Sandbox, url: str, http: aiohttp.ClientSession
) -> None:
    """Unknown ids, non-numeric ids and unknown orgs are ``basic-error`` 404s."""
    org = sandbox.add_org("github", "acme", runners=1)
    for path in (
        "/orgs/acme/actions/runners/1",
        "/orgs/acme/actions/runners/x1",
        "/orgs/nope/actions/runners",
    ):
        async with http.get(f"{url}{path}", headers=auth(org)) as resp:
            assert resp.status == 404
            body = await resp.json()
        assert body["message"] == "Not Found"
        assert body["status"] == "404"
        assert body["documentation_url"].startswith("https://docs.github.com/rest/actions/")
    async with http.get(f"{url}/orgs/acme/actions/runners/1", headers=auth(org)) as resp:
        body = await resp.json()
    assert body["documentation_url"].endswith("#get-a-self-hosted-runner-for-an-organization")


async def test_delete_busy_runner_is_422(
    sandbox: Sandbox, url: str, http: aiohttp.ClientSession
) -> None:
    """Deleting a runner that is running a job is a ``validation-error-simple`` 422."""
    org = sandbox.add_org("github", "acme", runners=4)
    busy = next(r for r in org.runners.values() if r["busy"])
    path = f"{url}/orgs/acme/actions/runners/{busy['id']}"
    async with http.delete(path, headers=auth(org)) as resp:
        assert resp.status == 422
        body = await resp.json()
    assert "still running a job" in body["message"]
    assert set(body) >= {"message", "documentation_url"}
    assert busy["id"] in org.runners


async def test_jit_config(sandbox: Sandbox, url: str, http: aiohttp.ClientSession) -> None:
    """generate-jitconfig registers an offline ephemeral runner and returns its config (201)."""
    org = sandbox.add_org("github", "acme")
    request = {
        "name": "New runner",
        "runner_group_id": 1,
        "labels": ["self-hosted", "X64", "macOS", "no-gpu"],
        "work_folder": "_work",
    }
    path = f"{url}/orgs/acme/actions/runners"
    async with http.post(f"{path}/generate-jitconfig", json=request, headers=auth(org)) as resp:
        assert resp.status == 201
        body = await resp.json()
    runner = body["runner"]
    assert runner["name"] == "New runner"
    assert (runner["os"], runner["status"], runner["busy"]) == ("unknown", "offline", False)
    assert runner["ephemeral"] is True
    assert [(lb["name"], lb["type"]) for lb in runner["labels"]] == [
        ("self-hosted", "read-only"),
        ("X64", "read-only"),
        ("macOS", "read-only"),
        ("no-gpu", "custom"),
    ]
    files = json.loads(base64.b64decode(body["encoded_jit_config"]))
    assert set(files) == {".runner", ".credentials", ".credentials_rsaparams"}
    assert json.loads(base64.b64decode(files[".runner"]))["AgentName"] == "New runner"
    assert org.jit_configs[runner["id"]] == body["encoded_jit_config"]
    assert body["encoded_jit_config"] not in repr(org)
    async with http.get(f"{path}/{runner['id']}", headers=auth(org)) as resp:
        assert await resp.json() == runner
    org.connect(runner["id"])
    assert org.runners[runner["id"]]["status"] == "online"
    async with http.post(f"{path}/generate-jitconfig", json=request, headers=auth(org)) as resp:
        assert resp.status == 409
        assert "already exists" in (await resp.json())["message"]


@pytest.mark.parametrize(
    "case",
    [
        (b"{", 400, "Problems parsing JSON"),
        (b"[1]", 400, "Body should be a JSON object"),
        (b'{"name": "r", "labels": ["x"]}', 422, '"runner_group_id" wasn\'t supplied'),
        (b"", 422, "weren't supplied"),
        (b'{"name": "r", "runner_group_id": "1", "labels": ["x"]}', 422, "runner_group_id"),
        (b'{"name": "r", "runner_group_id": 1, "labels": []}', 422, "labels"),
        (b'{"name": 3, "runner_group_id": 1, "labels": ["x"]}', 422, "name"),
        (b'{"name": "r", "runner_group_id": 7, "labels": ["x"]}', 404, "Not Found"),
    ],
)
async def test_jit_config_rejects_bad_requests(
    sandbox: Sandbox, url: str, http: aiohttp.ClientSession, case: tuple[bytes, int, str]
) -> None:
    """Bad JSON is 400, missing or mistyped keys 422, an unknown runner group 404."""
    body, status, fragment = case
    org = sandbox.add_org("github", "acme")
    headers = {**auth(org), "Content-Type": "application/json"}
    path = f"{url}/orgs/acme/actions/runners/generate-jitconfig"
    async with http.post(path, data=body, headers=headers) as resp:
        assert resp.status == status
        error = await resp.json()
    assert fragment in error["message"]
    assert error["status"] == str(status)
    assert not org.runners


@pytest.mark.parametrize("kind", ["registration-token", "remove-token"])
async def test_registration_and_remove_tokens(
    sandbox: Sandbox, url: str, http: aiohttp.ClientSession, kind: str
) -> None:
    """Token POSTs answer 201 ``{token, expires_at}``, expiring in an hour with an offset."""
    org = sandbox.add_org("github", "acme/api")
    before = datetime.now(UTC)
    async with http.post(f"{url}/repos/acme/api/actions/runners/{kind}", headers=auth(org)) as r:
        assert r.status == 201
        body = await r.json()
    assert set(body) == {"token", "expires_at"}
    assert re.fullmatch(r"A[A-Z0-9]{28}", body["token"])
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", body["expires_at"])
    expiry = datetime.fromisoformat(body["expires_at"])
    assert timedelta(minutes=59) < expiry - before <= timedelta(hours=1, seconds=5)
    (minted,) = org.minted
    assert (minted.kind, minted.token) == (kind.partition("-")[0], body["token"])
    assert body["token"] not in repr(minted) + repr(org)


async def test_runner_applications(sandbox: Sandbox, url: str, http: aiohttp.ClientSession) -> None:
    """``downloads`` lists runner-application objects (notes §3)."""
    org = sandbox.add_org("github", "acme")
    async with http.get(f"{url}/orgs/acme/actions/runners/downloads", headers=auth(org)) as r:
        apps = await r.json()
    assert {(a["os"], a["architecture"]) for a in apps} >= {("linux", "x64"), ("win", "x64")}
    for app in apps:
        assert app["download_url"].endswith(app["filename"])


# -- labels ---------------------------------------------------------------------------


async def test_labels_lifecycle(sandbox: Sandbox, url: str, http: aiohttp.ClientSession) -> None:
    """List, add, set, remove one and remove all keep read-only labels and return the rest."""
    org = sandbox.add_org("github", "acme")
    runner = org.add_runner("r1", labels=["gpu"])
    path = f"{url}/orgs/acme/actions/runners/{runner['id']}/labels"
    headers = auth(org)

    def names(body: dict[str, Any]) -> list[str]:
        assert body["total_count"] == len(body["labels"])
        return [label["name"] for label in body["labels"]]

    async with http.get(path, headers=headers) as resp:
        assert names(await resp.json()) == ["self-hosted", "Linux", "X64", "gpu"]
    async with http.post(path, json={"labels": ["docker", "GPU"]}, headers=headers) as resp:
        assert resp.status == 200
        assert names(await resp.json()) == ["self-hosted", "Linux", "X64", "gpu", "docker"]
    async with http.put(path, json={"labels": ["large"]}, headers=headers) as resp:
        body = await resp.json()
        assert names(body) == ["self-hosted", "Linux", "X64", "large"]
        assert body["labels"][-1]["type"] == "custom"
    async with http.delete(f"{path}/large", headers=headers) as resp:
        assert names(await resp.json()) == ["self-hosted", "Linux", "X64"]
    async with http.delete(f"{path}/large", headers=headers) as resp:
        assert resp.status == 404
    async with http.delete(f"{path}/self-hosted", headers=headers) as resp:
        assert resp.status == 422
        assert (await resp.json())["message"] == "Validation Failed"
    async with http.put(path, json={"labels": ["a", "b"]}, headers=headers) as resp:
        assert resp.status == 200
    async with http.delete(path, headers=headers) as resp:
        assert names(await resp.json()) == ["self-hosted", "Linux", "X64"]
    async with http.put(path, json={"labels": []}, headers=headers) as resp:
        assert resp.status == 200


@pytest.mark.parametrize(
    ("method", "body"),
    [
        ("POST", {"labels": []}),
        ("POST", {}),
        ("PUT", {"labels": "gpu"}),
        ("PUT", {"labels": [f"l{n}" for n in range(101)]}),
    ],
)
async def test_label_bodies_are_validated(
    sandbox: Sandbox,
    url: str,
    http: aiohttp.ClientSession,
    method: str,
    body: dict[str, Any],
) -> None:
    """Add needs 1..100 label names, set 0..100: anything else is 422."""
    org = sandbox.add_org("github", "acme", runners=1)
    path = f"{url}/orgs/acme/actions/runners/{next(iter(org.runners))}/labels"
    async with http.request(method, path, json=body, headers=auth(org)) as resp:
        assert resp.status == 422
        assert (await resp.json())["message"].startswith("Invalid request.")


# -- limits ---------------------------------------------------------------------------


async def test_primary_budget_headers_and_exhaustion(
    sandbox: Sandbox, url: str, http: aiohttp.ClientSession
) -> None:
    """``x-ratelimit-*`` count down on every response; past the budget GitHub answers 403."""
    org = sandbox.add_org("github", "acme", runners=1, rate_limit=3)
    path = f"{url}/orgs/acme/actions/runners"
    resets = set()
    for used in (1, 2, 3):
        async with http.get(path, headers=auth(org)) as resp:
            assert resp.status == 200
            assert resp.headers["x-ratelimit-limit"] == "3"
            assert resp.headers["x-ratelimit-used"] == str(used)
            assert resp.headers["x-ratelimit-remaining"] == str(3 - used)
            assert resp.headers["x-ratelimit-resource"] == "core"
            resets.add(int(resp.headers["x-ratelimit-reset"]))
    # One fixed window: the reset stays put, an hour ahead, in epoch seconds.
    (reset,) = resets
    assert 3500 < reset - time.time() <= 3601
    async with http.get(path, headers=auth(org)) as resp:
        assert resp.status == 403
        assert resp.headers["x-ratelimit-remaining"] == "0"
        assert "retry-after" not in resp.headers
        body = await resp.json()
    assert body["message"].startswith("API rate limit exceeded for user ID")
    sandbox.reset_limits()
    async with http.get(path, headers=auth(org)) as resp:
        assert resp.headers["x-ratelimit-remaining"] == "2"


async def test_exhausted_budget_as_429(http: aiohttp.ClientSession) -> None:
    """``rate_limit_status=429`` answers an exhausted budget with 429; a reset restores it."""
    sandbox = Sandbox(vendor_options={"github": {"primary_limit": 2, "rate_limit_status": 429}})
    org = sandbox.add_org("github", "acme", runners=1)
    async with sandbox.serve() as url:
        path = f"{url}/orgs/acme/actions/runners"
        statuses = []
        for _ in range(3):
            async with http.get(path, headers=auth(org)) as resp:
                statuses.append(resp.status)
        assert statuses == [200, 200, 429]
        assert resp.headers["x-ratelimit-remaining"] == "0"
        sandbox.reset_limits()
        async with http.get(path, headers=auth(org)) as resp:
            assert resp.status == 200
            assert resp.headers["x-ratelimit-remaining"] == "1"


async def test_unauthenticated_budget(http: aiohttp.ClientSession) -> None:
    """Requests without a valid token share a small budget; past it they get 403, not 401."""
    sandbox = Sandbox(vendor_options={"github": {"unauthenticated_limit": 2}})
    sandbox.add_org("github", "acme")
    async with sandbox.serve() as url:
        statuses = []
        for _ in range(3):
            async with http.get(f"{url}/orgs/acme/actions/runners") as resp:
                statuses.append(resp.status)
                body = await resp.json()
    assert statuses == [401, 401, 403]
    assert body["message"].startswith("API rate limit exceeded for 127.0.0.1.")


async def test_secondary_points_limit(http: aiohttp.ClientSession) -> None:
    """Mutations cost 5 points and GETs 1: past the budget a 403 with ``retry-after`` says so."""
    sandbox = Sandbox(retry_after="int", vendor_options={"github": {"points_per_minute": 12}})
    org = sandbox.add_org("github", "acme", runners=1)
    async with sandbox.serve() as url:
        path = f"{url}/orgs/acme/actions/runners"
        for _ in range(2):
            async with http.post(f"{path}/registration-token", headers=auth(org)) as resp:
                assert resp.status == 201
        async with http.post(f"{path}/registration-token", headers=auth(org)) as resp:
            assert resp.status == 403
            assert 1 <= int(resp.headers["Retry-After"]) <= 60
            assert resp.headers["x-ratelimit-remaining"] != "0"
            body = await resp.json()
        for _ in range(2):
            async with http.get(path, headers=auth(org)) as resp:
                assert resp.status == 200
        async with http.get(path, headers=auth(org)) as resp:
            assert resp.status == 403
    assert "exceeded a secondary rate limit" in body["message"]
    assert body["documentation_url"].endswith("#about-secondary-rate-limits")
    # Refused requests are charged to no budget.
    assert sandbox.count(status=403) == 2
    assert int(resp.headers["x-ratelimit-used"]) == 4


async def test_content_creation_limit(http: aiohttp.ClientSession) -> None:
    """Past ``content_per_minute`` mutations are refused while reads still pass."""
    sandbox = Sandbox(vendor_options={"github": {"content_per_minute": 2}})
    org = sandbox.add_org("github", "acme", runners=3)
    idle = [r["id"] for r in org.runners.values() if not r["busy"]]
    async with sandbox.serve() as url:
        path = f"{url}/orgs/acme/actions/runners"
        statuses = []
        for runner_id in idle:
            async with http.delete(f"{path}/{runner_id}", headers=auth(org)) as resp:
                statuses.append(resp.status)
        async with http.post(f"{path}/remove-token", headers=auth(org)) as resp:
            assert resp.status == 403
            assert "Retry-After" in resp.headers
        async with http.get(path, headers=auth(org)) as resp:
            assert resp.status == 200
    assert statuses == [204, 204]


async def test_concurrency_limit(http: aiohttp.ClientSession) -> None:
    """A token with ``concurrency`` requests in flight gets a secondary-limit 403."""
    sandbox = Sandbox(vendor_options={"github": {"concurrency": 1}})
    org = sandbox.add_org("github", "acme", runners=1)
    service = github(sandbox)
    release = asyncio.Event()

    async def slow_body() -> AsyncIterator[bytes]:
        # The first chunk sends the headers; the handler then waits for the rest.
        yield b'{"labels": '
        await release.wait()
        yield b'["gpu"]}'

    async with sandbox.serve() as url:
        path = f"{url}/orgs/acme/actions/runners"
        held = asyncio.create_task(
            http.post(
                f"{path}/{next(iter(org.runners))}/labels", data=slow_body(), headers=auth(org)
            )
        )
        for _ in range(500):
            if service.in_flight(org.token):
                break
            await asyncio.sleep(0.01)
        async with http.get(path, headers=auth(org)) as resp:
            assert resp.status == 403
            assert "secondary rate limit" in (await resp.json())["message"]
        release.set()
        async with await held as resp:
            assert resp.status == 200
        async with http.get(path, headers=auth(org)) as resp:
            assert resp.status == 200
    assert service.in_flight(org.token) == 0


async def test_limits_only_recorded_when_not_enforced(http: aiohttp.ClientSession) -> None:
    """With ``enforce_limits=False`` nothing is refused; the headers still tell the truth."""
    sandbox = Sandbox(enforce_limits=False, vendor_options={"github": {"points_per_minute": 5}})
    org = sandbox.add_org("github", "acme", runners=1, rate_limit=1)
    async with sandbox.serve() as url:
        for _ in range(3):
            async with http.post(
                f"{url}/orgs/acme/actions/runners/remove-token", headers=auth(org)
            ) as resp:
                assert resp.status == 201
    assert resp.headers["x-ratelimit-remaining"] == "0"
    assert resp.headers["x-ratelimit-used"] == "3"


@pytest.mark.parametrize(
    "options",
    [
        {"rate_limit_status": 500},
        {"points_per_minute": 4},
        {"concurrency": 0},
        {"primary_limit": 0},
    ],
)
def test_limit_options_are_checked(options: dict[str, Any]) -> None:
    """Nonsense limit options fail at construction."""
    with pytest.raises(ValueError, match="must"):
        GitHubService(Settings(), **options)


# -- redirects, headers, faults ---------------------------------------------------------


async def test_renamed_org_redirects(
    sandbox: Sandbox, url: str, http: aiohttp.ClientSession
) -> None:
    """A former org name answers 301 (GET) or 307 (POST) to the new name on the same host."""
    org = sandbox.add_org("github", "acme-old", runners=2)
    github(sandbox).rename("acme-old", "acme")
    path = f"{url}/orgs/acme-old/actions/runners"
    async with http.get(f"{path}?per_page=1", headers=auth(org), allow_redirects=False) as resp:
        assert resp.status == 301
        assert resp.headers["Location"] == f"{url}/orgs/acme/actions/runners?per_page=1"
        assert (await resp.json())["message"] == "Moved Permanently"
        assert resp.headers["x-ratelimit-used"] == "1"
    post = f"{path}/registration-token"
    async with http.post(post, headers=auth(org), allow_redirects=False) as resp:
        assert resp.status == 307
        assert resp.headers["Location"] == f"{url}/orgs/acme/actions/runners/registration-token"
    async with http.get(f"{path}?per_page=1", headers=auth(org)) as resp:
        assert resp.status == 200
        assert str(resp.url) == f"{url}/orgs/acme/actions/runners?per_page=1"
    assert github(sandbox).account("acme").options == {"org": "acme"}


async def test_renamed_repo_redirects_with_the_rest_of_the_path(
    sandbox: Sandbox, url: str, http: aiohttp.ClientSession
) -> None:
    """A former repo name keeps the path after the scope in its ``Location``."""
    org = sandbox.add_org("github", "acme/api", runners=1, former_names=["acme/legacy-api"])
    runner_id = next(iter(org.runners))
    path = f"{url}/repos/acme/legacy-api/actions/runners/{runner_id}/labels?x=1"
    async with http.get(path, headers=auth(org), allow_redirects=False) as resp:
        assert resp.status == 301
        expected = f"{url}/repos/acme/api/actions/runners/{runner_id}/labels?x=1"
        assert resp.headers["Location"] == expected


async def test_every_response_carries_github_headers(
    sandbox: Sandbox, url: str, http: aiohttp.ClientSession
) -> None:
    """Request id and rate-limit headers are on successes, errors and injected faults alike."""
    org = sandbox.add_org("github", "acme", runners=1)
    sandbox.faults.add(Fault(FaultKind.STATUS, status=502, vendor="github", times=1))
    ids = set()
    path = f"{url}/orgs/acme/actions/runners"
    for target in (path, f"{path}/999", path):
        async with http.get(target, headers=auth(org)) as resp:
            assert re.fullmatch(
                r"[0-9A-F]{4}:[0-9A-F]{4}:[0-9A-F]{6}:[0-9A-F]{6}:[0-9A-F]{8}",
                resp.headers["x-github-request-id"],
            )
            ids.add(resp.headers["x-github-request-id"])
            assert all(name in resp.headers for name in RATE_HEADERS), resp.status
    assert len(ids) == 3
    assert [r.status for r in sandbox.requests] == [502, 404, 200]
    assert [r.fault for r in sandbox.requests] == ["status", None, None]


async def test_fault_shapes(sandbox: Sandbox, url: str, http: aiohttp.ClientSession) -> None:
    """``WRONG_SHAPE`` and ``UNKNOWN_ENUM`` have GitHub-specific bodies."""
    org = sandbox.add_org("github", "acme", runners=2)
    path = f"{url}/orgs/acme/actions/runners"
    sandbox.faults.add(Fault(FaultKind.WRONG_SHAPE, vendor="github", times=1))
    async with http.get(path, headers=auth(org)) as resp:
        assert (await resp.json())["total_count"] == "many"
    sandbox.faults.add(Fault(FaultKind.UNKNOWN_ENUM, vendor="github", times=1))
    async with http.get(path, headers=auth(org)) as resp:
        runners = (await resp.json())["runners"]
    assert {r["status"] for r in runners} == {"provisioning"}
    assert {label["type"] for r in runners for label in r["labels"]} == {"system"}


# -- the service as a whole ------------------------------------------------------------


class FullService(Service, Protocol):
    """The brief's service protocol, including the methods added for generic sandboxes."""

    def add_org(self, name: str, runners: int = 0, **options: Any) -> Any:
        """Add an org."""
        ...

    def account(self, org_name: str) -> SandboxAccount:
        """An org's account."""
        ...

    def demo(self) -> None:
        """Add the demo orgs."""
        ...


def test_service_protocol_account_and_demo() -> None:
    """The service meets the protocol; ``account`` and ``demo`` give what a client needs."""
    service: FullService = GitHubService(Settings(), seed=3)
    service.demo()
    org = service.add_org("acme/api", runners=2)
    assert isinstance(org, GitHubOrg)
    assert len(GitHubService(Settings(), seed=3).orgs) == 0
    demo = service.account("gh-acme")
    assert demo == SandboxAccount(
        "github", "gh-acme", {"token": demo.credentials["token"]}, {"org": "gh-acme"}
    )
    assert demo.credentials["token"].startswith("ghp_")
    assert demo.credentials["token"] not in repr(demo) + repr(service)
    assert service.account("acme/api").options == {"repo": "acme/api"}
    again = GitHubService(Settings(), seed=3)
    again.demo()
    assert again.account("gh-acme") == demo
    assert len(again.orgs["gh-acme"].runners) == 60
    with pytest.raises(KeyError):
        service.account("nope")


@pytest.mark.parametrize(
    ("name", "options", "match"),
    [
        ("gh-acme", {}, "already exists"),
        ("GH-ACME", {}, "already exists"),
        ("acme", {"scope": "repo"}, "owner/name"),
        ("a/b/c", {}, "owner/name"),
        ("acme", {"scope": "team"}, "scope"),
        ("acme", {"runner_groups": ()}, "runner_groups"),
    ],
)
def test_add_org_checks(name: str, options: dict[str, Any], match: str) -> None:
    """Duplicate names (any case) and malformed scopes fail early."""
    service = GitHubService(Settings())
    service.demo()
    with pytest.raises(ValueError, match=match):
        service.add_org(name, **options)
    with pytest.raises(TypeError, match="region"):
        service.add_org("acme", region="eu")
    service.add_org("gh-acme/api", former_names=["gh-acme/old"], labels=["x"])
    with pytest.raises(ValueError, match="already exists"):
        service.add_org("acme", former_names=["GH-ACME/OLD"])


def test_github_modules_import_nothing_from_the_client() -> None:
    """The GitHub emulation imports only the sandbox's own modules from runnerhub."""
    for name in ("_github.py", "_github_limits.py", "_github_state.py"):
        tree = ast.parse((SANDBOX_DIR / name).read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                module = node.module or ""
                assert node.level == 1 or not module.startswith("runnerhub"), (name, module)
                assert node.level <= 1, name
            elif isinstance(node, ast.Import):
                assert not any(a.name.startswith("runnerhub") for a in node.names), name


def test_served_by_a_plain_application() -> None:
    """The routes are plain aiohttp route definitions, one name per operation."""
    service = GitHubService(Settings())
    app = web.Application()
    app.router.add_routes(service.routes())
    names = {route.name for route in app.router.routes() if route.name}
    assert names == {
        f"github.{op}"
        for op in (
            "list_runners",
            "list_runner_applications",
            "generate_jitconfig",
            "create_registration_token",
            "create_remove_token",
            "get_runner",
            "delete_runner",
            "list_labels",
            "add_labels",
            "set_labels",
            "remove_all_labels",
            "remove_label",
        )
    }


def test_rename_checks() -> None:
    """Renaming keeps names unique and repos in ``owner/name`` form."""
    service = GitHubService(Settings())
    service.add_org("acme")
    service.add_org("other")
    service.add_org("acme/api")
    with pytest.raises(ValueError, match="already exists"):
        service.rename("acme", "OTHER")
    with pytest.raises(ValueError, match="owner/name"):
        service.rename("acme/api", "api")
    with pytest.raises(KeyError):
        service.rename("nope", "new")
    org = service.rename("acme", "ACME")
    assert org.former_names == ["acme"]
    assert list(service.orgs) == ["other", "acme/api", "ACME"]


async def test_without_a_primary_budget(http: aiohttp.ClientSession) -> None:
    """``primary_limit=None`` (GHES's default) sends no ``x-ratelimit-*``; faults neither."""
    sandbox = Sandbox(vendor_options={"github": {"primary_limit": None}})
    org = sandbox.add_org("github", "acme", runners=1)
    sandbox.faults.add(Fault(FaultKind.STATUS, status=500, vendor="github", times=1))
    async with sandbox.serve() as url:
        for status in (500, 200):
            async with http.get(f"{url}/orgs/acme/actions/runners", headers=auth(org)) as resp:
                assert resp.status == status
                assert "x-ratelimit-limit" not in resp.headers
                assert "x-github-request-id" in resp.headers


@pytest.mark.parametrize(("name", "scope"), [("acme/api", "repo"), ("acme-ent", "enterprise")])
async def test_jit_and_permissions_at_other_scopes(
    sandbox: Sandbox, url: str, http: aiohttp.ClientSession, name: str, scope: str
) -> None:
    """JIT runners follow the scope's shape; read-only 403s name the scope's permission."""
    org = sandbox.add_org("github", name, scope=scope)
    path = f"{url}{runners_path(org)}/generate-jitconfig"
    request = {"name": "jit", "runner_group_id": 1, "labels": ["self-hosted"]}
    async with http.post(path, json=request, headers=auth(org)) as resp:
        assert resp.status == 201
        body = await resp.json()
    assert ("runner_group_id" in body["runner"]) is (scope != "repo")
    files = json.loads(base64.b64decode(body["encoded_jit_config"]))
    server = json.loads(base64.b64decode(files[".runner"]))["GitHubUrl"]
    assert server.endswith(f"/enterprises/{name}" if scope == "enterprise" else f"/{name}")
    async with http.post(path, json=request, headers=auth(org, read_only=True)) as resp:
        assert resp.status == 403
        permission = resp.headers.get("x-accepted-github-permissions")
    assert permission == ("administration=write" if scope == "repo" else None)
