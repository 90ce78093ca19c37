"""The Kubiya v3 runners emulation, against the shapes Kubiya's own clients decode."""

from __future__ import annotations

import asyncio
import base64
import gzip
import io
import json
import re
import tarfile
from datetime import datetime
from typing import Any

import aiohttp
import pytest
from yarl import URL

from runnerhub.sandbox import KubiyaOrg, Sandbox

RUNNER_FIELDS = {
    "name",
    "wss_url",
    "task_id",
    "managed_by",
    "description",
    "authentication_type",
    "version",
    "runner_type",
    "gateway_url",
    "gateway_password",
    "namespace",
    "subject",
    "user_key_id",
    "runner_health",
    "tool_manager_health",
    "agent_manager_health",
    "kubernetes_namespace",
}
HEALTH_FIELDS = {"status", "health", "error", "version"}


def key(org: KubiyaOrg, scheme: str = "UserKey") -> dict[str, str]:
    """The org's API key as an ``Authorization`` header."""
    return {"Authorization": f"{scheme} {org.api_key}"}


def assert_runner(runner: dict[str, Any]) -> None:
    """A runner object has exactly the list fields, with the types clients decode."""
    assert set(runner) == RUNNER_FIELDS
    assert runner["version"] in (0, 2)
    for field in RUNNER_FIELDS - {"version", "gateway_url", "gateway_password"}:
        if field.endswith("_health"):
            assert set(runner[field]) == HEALTH_FIELDS
            assert all(isinstance(v, str) for v in runner[field].values())
        else:
            assert isinstance(runner[field], str), field
    assert runner["gateway_url"] is None or isinstance(runner["gateway_url"], str)
    assert runner["gateway_password"] is None or isinstance(runner["gateway_password"], str)


async def test_list_is_a_bare_array_of_runner_objects(http: aiohttp.ClientSession) -> None:
    """GET /api/v3/runners returns a JSON array of §3.1 objects with realistic variety."""
    sandbox = Sandbox(seed=2)
    org = sandbox.add_org("kubiya", "kubiya-prod", runners=50, unhealthy=5)
    async with sandbox.serve() as url, http.get(f"{url}/api/v3/runners", headers=key(org)) as resp:
        assert resp.status == 200
        runners = await resp.json()
    assert isinstance(runners, list)
    assert [r["name"] for r in runners] == list(org.runners)
    for runner in runners:
        assert_runner(runner)
    types = [r["runner_type"] for r in runners]
    assert types.count("managed_cloud") == 1
    assert types.count("kubiya_operator") == 1
    assert types.count("kubiya_operator_v2") == 48
    assert any(r["gateway_password"] for r in runners)
    assert any(r["gateway_password"] is None for r in runners)
    assert any(r["runner_health"]["status"] for r in runners)
    assert sum(1 for r in runners if not r["runner_health"]["status"]) > 25
    assert sum(1 for state in org.health.values() if state != "ok") == 5


async def test_userkey_auth_selects_the_org(http: aiohttp.ClientSession) -> None:
    """``UserKey <key>`` carries the key (any case of the scheme); each key selects its org."""
    sandbox = Sandbox()
    prod = sandbox.add_org("kubiya", "kubiya-prod", runners=3)
    dev = sandbox.add_org("kubiya", "kubiya-dev", runners=5, api_key="dev-key")
    async with sandbox.serve() as url:
        async with http.get(f"{url}/api/v3/runners", headers=key(prod)) as resp:
            assert len(await resp.json()) == 3
        async with http.get(f"{url}/api/v3/runners", headers=key(dev, "userkey")) as resp:
            assert len(await resp.json()) == 5
    assert [r.org for r in sandbox.requests] == ["kubiya-prod", "kubiya-dev"]


async def test_bearer_api_key_is_refused(http: aiohttp.ClientSession) -> None:
    """``Bearer <key>`` is a 401, as Kubiya's docs say it is wrong for API keys."""
    sandbox = Sandbox()
    org = sandbox.add_org("kubiya", "kubiya-prod", runners=3)
    async with (
        sandbox.serve() as url,
        http.get(f"{url}/api/v3/runners", headers=key(org, "Bearer")) as resp,
    ):
        assert resp.status == 401


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "UserKey wrong"},
        {"Authorization": "Basic abc"},
        {"Authorization": "UserKey"},
    ],
)
async def test_bad_key_is_401(http: aiohttp.ClientSession, headers: dict[str, str]) -> None:
    """Missing or wrong keys get 401 in the default ``{code, error}`` style."""
    sandbox = Sandbox()
    sandbox.add_org("kubiya", "kubiya-prod", runners=1)
    async with sandbox.serve() as url, http.get(f"{url}/api/v3/runners", headers=headers) as resp:
        assert resp.status == 401
        assert await resp.json() == {"code": 401, "error": "invalid or missing API key"}


async def test_describe_and_unknown_runner(http: aiohttp.ClientSession) -> None:
    """Describe returns the list object; an unknown name is 404 "runner not found"."""
    sandbox = Sandbox()
    org = sandbox.add_org("kubiya", "kubiya-prod", runners=4)
    name = list(org.runners)[2]
    async with sandbox.serve() as url:
        async with http.get(f"{url}/api/v3/runners/{name}/describe", headers=key(org)) as resp:
            assert resp.status == 200
            assert await resp.json() == org.runners[name]
        async with http.get(f"{url}/api/v3/runners/ghost/describe", headers=key(org)) as resp:
            assert resp.status == 404
            assert await resp.json() == {"code": 404, "error": "runner not found"}


async def test_health_follows_the_org_state(http: aiohttp.ClientSession) -> None:
    """``/health`` reports ok, degraded and non-responsive as clients read them; missing is 503."""
    sandbox = Sandbox()
    org = sandbox.add_org("kubiya", "kubiya-prod", runners=4)
    names = list(org.runners)
    org.set_health(names[1], "degraded")
    org.set_health(names[2], "non-responsive")
    org.set_health(names[3], "missing")
    bodies: dict[str, Any] = {}
    async with sandbox.serve() as url:
        for name in names:
            async with http.get(f"{url}/api/v3/runners/{name}/health", headers=key(org)) as resp:
                bodies[org.health[name]] = (resp.status, await resp.json())
        async with http.get(f"{url}/api/v3/runners/ghost/health", headers=key(org)) as resp:
            assert resp.status == 404
    status, ok = bodies["ok"]
    assert status == 200
    assert set(ok) == {"health", "status", "time", "version", "checks"}
    assert (ok["health"], ok["status"]) == ("true", "ok")
    datetime.fromisoformat(ok["time"])
    assert [c["name"] for c in ok["checks"]] == ["tool-manager", "agent-manager", "workflow-engine"]
    assert set(ok["checks"][0]) == {"name", "status", "version", "error", "metadata"}
    assert set(ok["checks"][0]["metadata"]) == {"git_sha", "release"}
    assert all(c["status"] == "ok" for c in ok["checks"])
    _, degraded = bodies["degraded"]
    assert (degraded["health"], degraded["status"]) == ("true", "ok")
    assert [c["status"] for c in degraded["checks"]].count("degraded") == 1
    _, down = bodies["non-responsive"]
    assert (down["health"], down["status"]) == ("false", "non-responsive")
    assert any(c.get("error") for c in down["checks"])
    assert bodies["missing"][0] == 503


async def test_create_returns_a_capability_url(http: aiohttp.ClientSession) -> None:
    """Create answers ``{"url"}``; the same name gives the same URL, which needs no auth."""
    sandbox = Sandbox()
    org = sandbox.add_org("kubiya", "kubiya-prod", runners=1)
    async with sandbox.serve() as url:
        urls = []
        for body in (None, {}, {"managed_by": "terraform", "task_id": "t-1"}, ["anything"]):
            async with http.post(
                f"{url}/api/v3/runners/new-runner", json=body, headers=key(org)
            ) as resp:
                assert resp.status == 200
                created = await resp.json()
            assert set(created) == {"url"}
            urls.append(created["url"])
        assert len(set(urls)) == 1
        assert re.fullmatch(re.escape(url) + r"/api/v3/runners/helm/[0-9a-f]{40}\.yaml", urls[0])
        runner = org.runners["new-runner"]
        assert_runner(runner)
        assert (runner["version"], runner["runner_type"]) == (2, "kubiya_operator_v2")
        assert org.health["new-runner"] == "missing"
        async with http.get(urls[0]) as resp:
            assert resp.status == 200
            assert resp.content_type == "application/x-yaml"
            manifest = await resp.text()
        async with http.get(f"{url}/api/v3/runners/helm/new-runner") as resp:
            assert resp.status == 401
        async with http.get(f"{url}/api/v3/runners/helm/new-runner", headers=key(org)) as resp:
            assert await resp.text() == manifest
        async with http.get(f"{url}/api/v3/runners/helm/{'0' * 40}.yaml") as resp:
            assert resp.status == 404
    for kind in ("Namespace", "Secret", "Deployment"):
        assert f"\nkind: {kind}\n" in manifest
    assert manifest.count("\n---\n") + manifest.startswith("---\n") >= 4
    assert org.helm_values("new-runner")["nats"]["jwt"] in manifest
    assert org.runners["new-runner"]["managed_by"] == ""
    # The two capability GETs and the refused name GET presented no credential.
    assert sum(1 for r in sandbox.requests if not r.credential) == 3


async def test_create_keeps_terraform_fields(http: aiohttp.ClientSession) -> None:
    """A TF-style body sets ``managed_by`` and ``task_id`` on the new runner."""
    sandbox = Sandbox()
    org = sandbox.add_org("kubiya", "kubiya-prod")
    body = {"managed_by": "terraform", "task_id": "task-42"}
    async with (
        sandbox.serve() as url,
        http.post(f"{url}/api/v3/runners/tf-runner", json=body, headers=key(org)) as resp,
    ):
        assert resp.status == 200
    assert org.runners["tf-runner"]["managed_by"] == "terraform"
    assert org.runners["tf-runner"]["task_id"] == "task-42"


@pytest.mark.parametrize("name", ["Upper", "under_score", "a" * 64, "dot.ted"])
async def test_strict_create_validates_the_name(http: aiohttp.ClientSession, name: str) -> None:
    """With ``strict=True``, names must be 1-63 characters of a-z, 0-9 and '-'."""
    sandbox = Sandbox(vendor_options={"kubiya": {"strict": True}})
    org = sandbox.add_org("kubiya", "kubiya-prod")
    async with (
        sandbox.serve() as url,
        http.post(f"{url}/api/v3/runners/{name}", headers=key(org)) as resp,
    ):
        assert resp.status == 400
    assert not org.runners


async def test_create_takes_any_name_by_default(http: aiohttp.ClientSession) -> None:
    """Kubiya's docs state no name rule, so by default any path segment names a runner."""
    sandbox = Sandbox()
    org = sandbox.add_org("kubiya", "kubiya-prod")
    async with sandbox.serve() as url:
        for name in ("Upper", "under_score", "dot.ted"):
            async with http.post(f"{url}/api/v3/runners/{name}", headers=key(org)) as resp:
                assert resp.status == 200
    assert list(org.runners) == ["Upper", "under_score", "dot.ted"]


async def test_create_rejects_a_non_json_body(http: aiohttp.ClientSession) -> None:
    """A body that is not JSON is a 400."""
    sandbox = Sandbox()
    org = sandbox.add_org("kubiya", "kubiya-prod")
    async with (
        sandbox.serve() as url,
        http.post(f"{url}/api/v3/runners/x", data=b"{", headers=key(org)) as resp,
    ):
        assert resp.status == 400


async def test_delete_has_an_empty_body(http: aiohttp.ClientSession) -> None:
    """Delete answers 200 with no body, then 404; the manifest key dies with the runner."""
    sandbox = Sandbox()
    org = sandbox.add_org("kubiya", "kubiya-prod", runners=2)
    name = list(org.runners)[1]
    async with sandbox.serve() as url:
        async with http.post(f"{url}/api/v3/runners/{name}", headers=key(org)) as resp:
            manifest_url = (await resp.json())["url"]
        async with http.delete(f"{url}/api/v3/runners/{name}", headers=key(org)) as resp:
            assert resp.status == 200
            assert await resp.read() == b""
        async with http.delete(f"{url}/api/v3/runners/{name}", headers=key(org)) as resp:
            assert resp.status == 404
        async with http.get(manifest_url) as resp:
            assert resp.status == 404
    assert name not in org.runners
    assert name not in org.health


async def test_update_description(http: aiohttp.ClientSession) -> None:
    """PUT description returns the updated object; a missing or non-string one is 400."""
    sandbox = Sandbox()
    org = sandbox.add_org("kubiya", "kubiya-prod", runners=2)
    name = list(org.runners)[1]
    path = f"/api/v3/runners/description/{name}"
    async with sandbox.serve() as url:
        async with http.put(url + path, json={"description": "new"}, headers=key(org)) as resp:
            assert resp.status == 200
            assert (await resp.json())["description"] == "new"
        for bad in ({}, {"description": 3}, None):
            async with http.put(url + path, json=bad, headers=key(org)) as resp:
                assert resp.status == 400
        body = {"description": "x"}
        async with http.put(
            f"{url}/api/v3/runners/description/ghost", json=body, headers=key(org)
        ) as resp:
            assert resp.status == 404
    assert org.runners[name]["description"] == "new"


async def test_helmchart_values(http: aiohttp.ClientSession) -> None:
    """``/helmchart`` returns the §3.7 Helm values with JWT-shaped NATS credentials."""
    sandbox = Sandbox()
    org = sandbox.add_org("kubiya", "kubiya-prod", runners=2)
    name = list(org.runners)[1]
    async with sandbox.serve() as url:
        async with http.get(f"{url}/api/v3/runners/helmchart/{name}", headers=key(org)) as resp:
            assert resp.content_type == "application/json"
            values = await resp.json()
        async with http.get(f"{url}/api/v3/runners/helmchart/ghost", headers=key(org)) as resp:
            assert resp.status == 404
    assert set(values) == {"alloy", "nats", "organization", "runner_name", "user_id", "uuid"}
    assert set(values["alloy"]["alloy"]) == {"configMap", "extraEnv", "securityContext"}
    assert set(values["alloy"]["alloy"]["configMap"]) == {"create", "key", "name"}
    assert values["alloy"]["alloy"]["securityContext"] == {"runAsGroup": 0, "runAsUser": 0}
    assert set(values["nats"]) == {"jwt", "secondJwt", "subject"}
    assert values["runner_name"] == name
    for token in (values["nats"]["jwt"], values["nats"]["secondJwt"]):
        header, claims, _ = token.split(".")
        assert token.startswith("eyJ")
        assert json.loads(base64.urlsafe_b64decode(header + "=="))["typ"] == "JWT"
        assert json.loads(base64.urlsafe_b64decode(claims + "=="))["name"] == name
    assert values == org.helm_values(name)


async def test_helmchart_as_tgz(http: aiohttp.ClientSession) -> None:
    """Kubiya's ``helmchart_format="tgz"`` serves a gzip'd chart holding the same values."""
    sandbox = Sandbox(vendor_options={"kubiya": {"helmchart_format": "tgz"}})
    org = sandbox.add_org("kubiya", "kubiya-prod", runners=1)
    async with (
        sandbox.serve() as url,
        http.get(f"{url}/api/v3/runners/helmchart/kubiya-hosted", headers=key(org)) as resp,
    ):
        assert resp.content_type == "application/gzip"
        data = await resp.read()
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(data))) as tar:
        member = tar.extractfile("kubiya-runner/values.yaml")
        assert member is not None
        assert json.loads(member.read()) == org.helm_values("kubiya-hosted")


async def test_ops(http: aiohttp.ClientSession) -> None:
    """restart/stop/start succeed; with ``strict``, others are 400; malformed bodies always are."""
    sandbox = Sandbox(vendor_options={"kubiya": {"strict": True}})
    org = sandbox.add_org("kubiya", "kubiya-prod", runners=1)
    ops = "/api/v3/runners/kubiya-hosted/ops"
    async with sandbox.serve() as url:
        for operation in ("restart", "stop", "start"):
            body = {"operation": operation, "parameters": {"component": "tool_manager"}}
            async with http.post(url + ops, json=body, headers=key(org)) as resp:
                assert resp.status == 200
                result = await resp.json()
            assert set(result) == {"operation", "status", "message", "timestamp"}
            assert (result["operation"], result["status"]) == (operation, "success")
        bad_bodies: list[Any] = [
            {"operation": "upgrade"},
            {},
            {"operation": 1},
            None,
            {"operation": "stop", "parameters": []},
        ]
        for bad in bad_bodies:
            async with http.post(url + ops, json=bad, headers=key(org)) as resp:
                assert resp.status == 400, bad
        async with http.post(
            f"{url}/api/v3/runners/ghost/ops", json={"operation": "stop"}, headers=key(org)
        ) as resp:
            assert resp.status == 404


async def test_ops_pass_any_operation_by_default(http: aiohttp.ClientSession) -> None:
    """The docs' operations are examples, so by default any named operation is accepted."""
    sandbox = Sandbox()
    org = sandbox.add_org("kubiya", "kubiya-prod", runners=1)
    async with (
        sandbox.serve() as url,
        http.post(
            f"{url}/api/v3/runners/kubiya-hosted/ops",
            json={"operation": "upgrade"},
            headers=key(org),
        ) as resp,
    ):
        assert resp.status == 200
        assert (await resp.json())["operation"] == "upgrade"


@pytest.mark.parametrize(
    ("style", "expected"),
    [
        ("code_error", {"code": 404, "error": "runner not found"}),
        ("nested", {"error": {"code": "not_found", "message": "runner not found"}}),
        ("message", {"message": "runner not found"}),
        ("detail", {"detail": "runner not found"}),
    ],
)
async def test_error_styles(
    http: aiohttp.ClientSession, style: Any, expected: dict[str, Any]
) -> None:
    """Each Kubiya ``error_style`` shapes the 404 body its way."""
    sandbox = Sandbox(vendor_options={"kubiya": {"error_style": style}})
    org = sandbox.add_org("kubiya", "kubiya-prod")
    async with (
        sandbox.serve() as url,
        http.get(f"{url}/api/v3/runners/x/describe", headers=key(org)) as resp,
    ):
        assert resp.status == 404
        assert await resp.json() == expected


async def test_html_error_style(http: aiohttp.ClientSession) -> None:
    """Kubiya's ``error_style="html"`` answers errors with a text/html page."""
    sandbox = Sandbox(vendor_options={"kubiya": {"error_style": "html"}})
    sandbox.add_org("kubiya", "kubiya-prod")
    async with sandbox.serve() as url, http.get(f"{url}/api/v3/runners") as resp:
        assert resp.status == 401
        assert resp.content_type == "text/html"
        assert "401 Unauthorized" in await resp.text()


async def test_encoded_slash_stays_inside_the_name(http: aiohttp.ClientSession) -> None:
    """``%2F`` in a segment is part of the runner name, never a path separator."""
    sandbox = Sandbox()
    org = sandbox.add_org("kubiya", "kubiya-prod", runners=1)
    org.add_runner("a/b")
    org.add_runner("description")
    async with sandbox.serve() as url:
        sneaky = URL(f"{url}/api/v3/runners/a%2F..%2F..%2Fdescription%2Fb/describe", encoded=True)
        async with http.get(sneaky, headers=key(org)) as resp:
            assert resp.status == 404
            assert await resp.json() == {"code": 404, "error": "runner not found"}
        slash = URL(f"{url}/api/v3/runners/a%2Fb/describe", encoded=True)
        async with http.get(slash, headers=key(org)) as resp:
            assert resp.status == 200
            assert (await resp.json())["name"] == "a/b"
        async with http.get(f"{url}/api/v3/runners/description/describe", headers=key(org)) as resp:
            assert (await resp.json())["name"] == "description"
    assert [r.operation for r in sandbox.requests] == ["describe_runner"] * 3
    assert sandbox.requests[0].path == "/api/v3/runners/a/../../description/b/describe"


async def test_unknown_route_uses_the_error_style(http: aiohttp.ClientSession) -> None:
    """Off-route paths and methods get the vendor's error body."""
    sandbox = Sandbox()
    org = sandbox.add_org("kubiya", "kubiya-prod")
    async with sandbox.serve() as url:
        async with http.get(f"{url}/api/v3/runners/a/b/c", headers=key(org)) as resp:
            assert resp.status == 404
            assert (await resp.json())["code"] == 404
        async with http.patch(f"{url}/api/v3/runners/a", headers=key(org)) as resp:
            assert resp.status == 405
            assert (await resp.json())["code"] == 405


async def test_rate_limit_headers_and_burst(http: aiohttp.ClientSession) -> None:
    """Every response reports both windows; the burst window trips first, over all endpoints."""
    sandbox = Sandbox(
        retry_after="decimal", vendor_options={"kubiya": {"limits": [(10, 5.0), (3, 0.3)]}}
    )
    org = sandbox.add_org("kubiya", "kubiya-prod", runners=1)
    async with sandbox.serve() as url:
        seen = []
        paths = ["/api/v3/runners", "/api/v3/runners/kubiya-hosted/describe"] * 2
        for path in paths:
            async with http.get(url + path, headers=key(org)) as resp:
                seen.append((resp.status, dict(resp.headers)))
        statuses = [status for status, _ in seen]
        assert statuses == [200, 200, 200, 429]
        first, third, rejected = seen[0][1], seen[2][1], seen[3][1]
        assert (first["X-RateLimit-Limit"], first["X-RateLimit-Remaining"]) == ("10", "9")
        assert (first["X-RateLimit-Burst-Limit"], first["X-RateLimit-Burst-Remaining"]) == (
            "3",
            "2",
        )
        assert (third["X-RateLimit-Remaining"], third["X-RateLimit-Burst-Remaining"]) == ("7", "0")
        assert 4.0 < float(third["X-RateLimit-Reset"]) <= 5.0
        assert rejected["X-RateLimit-Burst-Remaining"] == "0"
        wait = float(rejected["Retry-After"])
        assert 0 < wait <= 0.3
        assert rejected["Content-Type"].startswith("application/json")
        await asyncio.sleep(wait)
        async with http.get(f"{url}/api/v3/runners", headers=key(org)) as resp:
            assert resp.status == 200
            assert resp.headers["X-RateLimit-Remaining"] == "6"
    assert sandbox.max_in_window("kubiya", "*", 0.3) <= 3


async def test_main_window_limits_across_keys_independently(http: aiohttp.ClientSession) -> None:
    """Each key has its own windows."""
    sandbox = Sandbox(vendor_options={"kubiya": {"limits": [(2, 5.0)]}})
    one = sandbox.add_org("kubiya", "one")
    two = sandbox.add_org("kubiya", "two")
    async with sandbox.serve() as url:
        statuses = []
        for org in (one, one, one, two):
            async with http.get(f"{url}/api/v3/runners", headers=key(org)) as resp:
                statuses.append(resp.status)
                assert "X-RateLimit-Burst-Limit" not in resp.headers
    assert statuses == [200, 200, 429, 200]


def test_seeding_is_deterministic_and_demo_sized() -> None:
    """The same seed gives the same key and runners; ``demo()`` has the documented fleet."""
    one = Sandbox(seed=4).add_org("kubiya", "k", runners=20, unhealthy=4)
    two = Sandbox(seed=4).add_org("kubiya", "k", runners=20, unhealthy=4)
    assert one.api_key == two.api_key
    assert one.runners == two.runners
    assert one.health == two.health
    assert one.helm_values("kubiya-hosted") == two.helm_values("kubiya-hosted")
    demo = Sandbox.demo(seed=4)
    prod = demo.service("kubiya").orgs["kubiya-prod"]
    assert len(prod.runners) == 40
    assert sum(1 for s in prod.health.values() if s != "ok") == 8
    assert prod.health["kubiya-hosted"] == "ok"
    with pytest.raises(ValueError, match="unhealthy"):
        Sandbox().add_org("kubiya", "k", runners=2, unhealthy=2)
