"""The Soda Cloud v1 runners emulation, checked against Soda's published OpenAPI."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from jsonschema import Draft202012Validator  # type: ignore[import-untyped, unused-ignore]
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from runnerhub.sandbox import Sandbox, SodaOrg

# Soda's published OpenAPI (the four inline documents merged), kept verbatim beside the samples.
SPEC_PATH = Path(__file__).resolve().parents[1] / "samples" / "soda-runners.openapi.json"
SPEC_URI = "urn:soda-runners-openapi"


def _ref_only(node: Any) -> Any:
    """OpenAPI reading of the spec: keys beside a ``$ref`` are ignored.

    The spec writes ``{"type": "object", "$ref": "...TypeDTO"}`` where TypeDTO is
    a string enum; under JSON Schema 2020-12 both would apply and no value fits.
    """
    if isinstance(node, dict):
        if "$ref" in node:
            return {"$ref": node["$ref"]}
        return {key: _ref_only(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_ref_only(item) for item in node]
    return node


_SPEC = _ref_only(json.loads(SPEC_PATH.read_text()))
_REGISTRY: Registry[Any] = Registry().with_resource(
    SPEC_URI, Resource.from_contents(_SPEC, default_specification=DRAFT202012)
)


def assert_schema(instance: Any, name: str) -> None:
    """Validate ``instance`` against ``components.schemas[name]`` of the OpenAPI file."""
    schema = {"$ref": f"{SPEC_URI}#/components/schemas/{name}"}
    Draft202012Validator(schema, registry=_REGISTRY).validate(instance)


def basic(org: SodaOrg) -> dict[str, str]:
    """The org's API key as an HTTP Basic ``Authorization`` header."""
    return {"Authorization": aiohttp.encode_basic_auth(org.api_key_id, org.api_key_secret)}


async def test_basic_and_cookie_auth_select_the_org(http: aiohttp.ClientSession) -> None:
    """Basic key pairs and the ``token`` cookie each select their own org."""
    sandbox = Sandbox(seed=3)
    eu = sandbox.add_org("soda", "acme-eu", runners=15)
    us = sandbox.add_org("soda", "acme-us", runners=25)
    async with sandbox.serve() as url:
        async with http.get(f"{url}/api/v1/runners", headers=basic(eu)) as resp:
            assert resp.status == 200
            assert (await resp.json())["totalElements"] == 15
        cookie = {"Cookie": f"token={us.token}"}
        async with http.get(f"{url}/api/v1/runners", headers=cookie) as resp:
            assert resp.status == 200
            assert (await resp.json())["totalElements"] == 25
    assert [r.org for r in sandbox.requests] == ["acme-eu", "acme-us"]


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Basic bm90OnZhbGlk"},
        {"Authorization": "Basic !!!"},
        {"Authorization": "Bearer whatever"},
        {"Cookie": "token=nope"},
    ],
)
async def test_bad_credentials_get_401(
    http: aiohttp.ClientSession, headers: dict[str, str]
) -> None:
    """Missing, wrong or malformed credentials get 401 with an ErrorResponse and a trace id."""
    sandbox = Sandbox()
    sandbox.add_org("soda", "acme-eu", runners=3)
    async with sandbox.serve() as url, http.get(f"{url}/api/v1/runners", headers=headers) as resp:
        assert resp.status == 401
        body = await resp.json()
        assert_schema(body, "ErrorResponse")
        assert body["code"] == "unauthorized"
        assert len(resp.headers["X-Soda-Trace-Id"]) == 32


async def test_pagination_envelope(http: aiohttp.ClientSession) -> None:
    """Pages follow insertion order; the envelope has exactly the spec's fields."""
    sandbox = Sandbox(seed=5)
    org = sandbox.add_org("soda", "acme-eu", runners=25)
    ids = list(org.runners)
    seen: list[str] = []
    async with sandbox.serve() as url:
        for page in range(4):
            params = {"page": str(page), "size": "10"}
            async with http.get(f"{url}/api/v1/runners", params=params, headers=basic(org)) as resp:
                body = await resp.json()
            assert_schema(body, "PublicApiListRunnersResponse")
            assert set(body) == {
                "content",
                "first",
                "last",
                "number",
                "size",
                "totalElements",
                "totalPages",
            }
            assert (body["number"], body["size"], body["totalElements"], body["totalPages"]) == (
                page,
                10,
                25,
                3,
            )
            assert body["first"] == (page == 0)
            assert body["last"] == (page >= 2)
            seen += [runner["id"] for runner in body["content"]]
        async with http.get(f"{url}/api/v1/runners", headers=basic(org)) as resp:
            default = await resp.json()
    assert seen == ids
    assert (default["number"], default["size"], len(default["content"])) == (0, 10, 10)


async def test_empty_org_lists_one_empty_last_page(http: aiohttp.ClientSession) -> None:
    """An org without runners returns no content, zero pages, first and last."""
    sandbox = Sandbox()
    org = sandbox.add_org("soda", "empty")
    async with (
        sandbox.serve() as url,
        http.get(f"{url}/api/v1/runners", headers=basic(org)) as resp,
    ):
        body = await resp.json()
    assert body == {
        "content": [],
        "first": True,
        "last": True,
        "number": 0,
        "size": 10,
        "totalElements": 0,
        "totalPages": 0,
    }


@pytest.mark.parametrize(
    "query",
    [
        "page=-1",
        "page=abc",
        "page=1.5",
        "page=",
        "page=99999999999",
        "size=9",
        "size=1001",
        "size=x",
    ],
)
async def test_bad_page_or_size_is_400(http: aiohttp.ClientSession, query: str) -> None:
    """``page`` must be an int >= 0 and ``size`` an int in 10..1000."""
    sandbox = Sandbox()
    org = sandbox.add_org("soda", "acme-eu", runners=3)
    async with (
        sandbox.serve() as url,
        http.get(f"{url}/api/v1/runners?{query}", headers=basic(org)) as resp,
    ):
        assert resp.status == 400
        body = await resp.json()
    assert_schema(body, "ErrorResponse")
    assert body["code"] == "bad_request"


async def test_size_bounds_are_inclusive(http: aiohttp.ClientSession) -> None:
    """``size=1000`` and ``size=10`` are accepted; pages past the end are empty and last."""
    sandbox = Sandbox()
    org = sandbox.add_org("soda", "acme-eu", runners=1200)
    async with sandbox.serve() as url:
        async with http.get(f"{url}/api/v1/runners?size=1000&page=1", headers=basic(org)) as resp:
            body = await resp.json()
        assert (len(body["content"]), body["totalPages"], body["last"]) == (200, 2, True)
        async with http.get(f"{url}/api/v1/runners?size=10&page=500", headers=basic(org)) as resp:
            past = await resp.json()
        assert (past["content"], past["last"], past["number"]) == ([], True, 500)


async def test_seeded_runners_are_realistic(http: aiohttp.ClientSession) -> None:
    """Seeded DTOs validate, include one Soda-hosted runner, offline ones, drift and gaps."""
    sandbox = Sandbox(seed=1)
    org = sandbox.add_org("soda", "acme-eu", runners=2000)
    async with sandbox.serve() as url:
        runners: list[dict[str, Any]] = []
        for page in range(2):
            params = {"page": str(page), "size": "1000"}
            async with http.get(f"{url}/api/v1/runners", params=params, headers=basic(org)) as resp:
                runners += (await resp.json())["content"]
    declared = {"id", "isOnline", "label", "lastSeenTimestamp", "name", "type", "versions"}
    for runner in runners:
        assert_schema(runner, "PublicApiRunnerDTO")
        assert set(runner) <= declared
        assert set(runner["versions"]) <= {"agent", "library", "runner"}
        if "lastSeenTimestamp" in runner:
            assert runner["lastSeenTimestamp"].endswith("Z")
            datetime.fromisoformat(runner["lastSeenTimestamp"])
    assert [r["type"] for r in runners].count("SODA_HOSTED") == 1
    offline = sum(not r["isOnline"] for r in runners) / len(runners)
    assert 0.05 < offline < 0.2
    versions = {r["versions"].get("runner") for r in runners}
    assert {"1.4.2", "1.4.1", "1.3.9", None} <= versions
    assert any("lastSeenTimestamp" not in r for r in runners)
    assert runners[1]["name"] == "runner-eu-0001"
    assert 10 < len(org.in_use) < 100


def test_seeding_is_deterministic() -> None:
    """The same seed and name give the same credentials and runners; another seed does not."""
    moment = datetime.fromisoformat("2026-01-15T12:00:00+00:00")
    one = Sandbox(seed=9, reference_time=moment).add_org("soda", "acme-eu", runners=50)
    two = Sandbox(seed=9, reference_time=moment).add_org("soda", "acme-eu", runners=50)
    other = Sandbox(seed=10, reference_time=moment).add_org("soda", "acme-eu", runners=50)
    assert (one.api_key_id, one.api_key_secret, one.token) == (
        two.api_key_id,
        two.api_key_secret,
        two.token,
    )
    assert one.runners == two.runners
    assert one.in_use == two.in_use
    assert one.api_key_id != other.api_key_id
    explicit = Sandbox(seed=9, reference_time=moment).add_org("soda",
        "acme-eu", runners=50, api_key_id="id", api_key_secret="secret", token="tok"
    )
    assert (explicit.api_key_id, explicit.api_key_secret, explicit.token) == ("id", "secret", "tok")
    assert explicit.runners == one.runners


async def test_get_runner(http: aiohttp.ClientSession) -> None:
    """GET by id wraps the DTO in ``runner``; an unknown id is a 404 ErrorResponse."""
    sandbox = Sandbox()
    org = sandbox.add_org("soda", "acme-eu", runners=5)
    runner_id = list(org.runners)[2]
    async with sandbox.serve() as url:
        async with http.get(f"{url}/api/v1/runners/{runner_id}", headers=basic(org)) as resp:
            assert resp.status == 200
            body = await resp.json()
        assert_schema(body, "PublicApiGetRunnerResponse")
        assert body == {"runner": org.runners[runner_id]}
        async with http.get(f"{url}/api/v1/runners/nope", headers=basic(org)) as resp:
            assert resp.status == 404
            error = await resp.json()
    assert_schema(error, "ErrorResponse")
    assert error["code"] == "not_found"


async def test_runners_are_scoped_to_their_org(http: aiohttp.ClientSession) -> None:
    """One org's runner id is 404 for another org's key."""
    sandbox = Sandbox()
    eu = sandbox.add_org("soda", "acme-eu", runners=3)
    us = sandbox.add_org("soda", "acme-us", runners=3)
    async with (
        sandbox.serve() as url,
        http.get(f"{url}/api/v1/runners/{next(iter(eu.runners))}", headers=basic(us)) as resp,
    ):
        assert resp.status == 404


async def test_create_then_register(http: aiohttp.ClientSession) -> None:
    """POST mints fresh key pairs; the runner is listed only once it registers."""
    sandbox = Sandbox()
    org = sandbox.add_org("soda", "acme-eu", runners=2)
    async with sandbox.serve() as url:
        minted = []
        for body in (None, {"name": "ignored"}):
            async with http.post(f"{url}/api/v1/runners", json=body, headers=basic(org)) as resp:
                assert resp.status == 200
                created = await resp.json()
            assert_schema(created, "PublicApiCreateRunnerResponse")
            assert set(created) == {"apiKeyId", "apiKeySecret"}
            minted.append(created)
        assert minted[0] != minted[1]
        assert org.created == [m["apiKeyId"] for m in minted]
        assert len(org.runners) == 2
        runner = org.register(minted[0]["apiKeyId"], "runner-new")
        async with http.get(f"{url}/api/v1/runners/{runner['id']}", headers=basic(org)) as resp:
            assert (await resp.json())["runner"]["name"] == "runner-new"
    with pytest.raises(ValueError, match="already registered"):
        org.register(minted[0]["apiKeyId"], "again")
    with pytest.raises(KeyError):
        org.register("never-minted", "x")


async def test_delete_rules(http: aiohttp.ClientSession) -> None:
    """Delete answers {} once, then 404; in-use and Soda-hosted runners get 400."""
    sandbox = Sandbox()
    org = sandbox.add_org("soda", "acme-eu", runners=3)
    hosted, busy, free = list(org.runners)
    org.in_use.add(busy)
    async with sandbox.serve() as url:
        expected = [(free, 200), (free, 404), (busy, 400), (hosted, 400), ("unknown", 404)]
        for runner_id, status in expected:
            async with http.delete(f"{url}/api/v1/runners/{runner_id}", headers=basic(org)) as resp:
                assert resp.status == status, runner_id
                body = await resp.json()
            assert_schema(
                body, "PublicApiDeleteRunnerResponse" if status == 200 else "ErrorResponse"
            )
            if status == 200:
                assert body == {}
    assert list(org.runners) == [hosted, busy]
    messages = [r.status for r in sandbox.requests]
    assert messages == [200, 404, 400, 400, 404]


async def test_delete_messages(http: aiohttp.ClientSession) -> None:
    """The 400s say why: still in use, or Soda-hosted."""
    sandbox = Sandbox()
    org = sandbox.add_org("soda", "acme-eu", runners=2)
    hosted, busy = list(org.runners)
    org.in_use.add(busy)
    async with sandbox.serve() as url:
        async with http.delete(f"{url}/api/v1/runners/{busy}", headers=basic(org)) as resp:
            assert (await resp.json())["message"] == "runner is still in use"
        async with http.delete(f"{url}/api/v1/runners/{hosted}", headers=basic(org)) as resp:
            assert (await resp.json())["message"] == "Soda-hosted runners cannot be deleted"


async def test_unknown_route_and_method_use_error_response(http: aiohttp.ClientSession) -> None:
    """Off-route paths and methods answer with Soda's ErrorResponse, after auth."""
    sandbox = Sandbox()
    org = sandbox.add_org("soda", "acme-eu", runners=1)
    async with sandbox.serve() as url:
        async with http.get(f"{url}/api/v1/agents", headers=basic(org)) as resp:
            assert resp.status == 404
            assert_schema(await resp.json(), "ErrorResponse")
        async with http.put(f"{url}/api/v1/runners", headers=basic(org)) as resp:
            assert resp.status == 405
            assert_schema(await resp.json(), "ErrorResponse")
        async with http.get(f"{url}/api/v1/agents") as resp:
            assert resp.status == 401


async def test_limit_429_with_decimal_retry_after(http: aiohttp.ClientSession) -> None:
    """Past N per window: 429 ErrorResponse whose decimal Retry-After is when a slot frees."""
    sandbox = Sandbox(
        retry_after="decimal", vendor_options={"soda": {"limits": {"get_runner": (5, 0.3)}}}
    )
    org = sandbox.add_org("soda", "acme-eu", runners=1)
    runner_id = next(iter(org.runners))
    async with sandbox.serve() as url:
        statuses = []
        for _ in range(6):
            async with http.get(f"{url}/api/v1/runners/{runner_id}", headers=basic(org)) as resp:
                statuses.append(resp.status)
                last_body = await resp.json()
                retry_after = resp.headers.get("Retry-After")
        assert statuses == [200] * 5 + [429]
        assert_schema(last_body, "ErrorResponse")
        assert last_body["code"] == "too_many_requests"
        assert retry_after is not None
        wait = float(retry_after)
        assert 0 < wait <= 0.3
        # Other operations and other credentials have their own windows.
        async with http.get(f"{url}/api/v1/runners", headers=basic(org)) as resp:
            assert resp.status == 200
        async with http.get(
            f"{url}/api/v1/runners/{runner_id}", headers={"Cookie": f"token={org.token}"}
        ) as resp:
            assert resp.status == 200
        await asyncio.sleep(wait)
        async with http.get(f"{url}/api/v1/runners/{runner_id}", headers=basic(org)) as resp:
            assert resp.status == 200
    assert sandbox.max_in_window("soda", "get_runner", 0.3) <= 5


async def test_rejected_requests_do_not_extend_the_wait(http: aiohttp.ClientSession) -> None:
    """Retrying into a full window does not delay the slot the first 429 promised."""
    sandbox = Sandbox(vendor_options={"soda": {"limits": {"list_runners": (2, 0.4)}}})
    org = sandbox.add_org("soda", "acme-eu")
    async with sandbox.serve() as url:
        for _ in range(2):
            async with http.get(f"{url}/api/v1/runners", headers=basic(org)) as resp:
                assert resp.status == 200
        async with http.get(f"{url}/api/v1/runners", headers=basic(org)) as resp:
            first_wait = float(resp.headers["Retry-After"])
        loop = asyncio.get_running_loop()
        deadline = loop.time() + first_wait
        for _ in range(5):
            async with http.get(f"{url}/api/v1/runners", headers=basic(org)) as resp:
                assert resp.status == 429
        await asyncio.sleep(max(0.0, deadline - loop.time()))
        async with http.get(f"{url}/api/v1/runners", headers=basic(org)) as resp:
            assert resp.status == 200
    assert sandbox.count(status=429) == 6


@pytest.mark.parametrize(
    ("style", "check"), [("int", str.isdigit), ("date", lambda v: v.endswith(" GMT"))]
)
async def test_retry_after_formats(http: aiohttp.ClientSession, style: Any, check: Any) -> None:
    """``retry_after="int"`` sends whole seconds, ``"date"`` an HTTP date."""
    sandbox = Sandbox(
        retry_after=style, vendor_options={"soda": {"limits": {"create_runner": (1, 0.2)}}}
    )
    org = sandbox.add_org("soda", "acme-eu")
    async with sandbox.serve() as url:
        for _ in range(2):
            async with http.post(f"{url}/api/v1/runners", headers=basic(org)) as resp:
                header = resp.headers.get("Retry-After")
    assert resp.status == 429
    assert header is not None
    assert check(header)


async def test_no_retry_after_header(http: aiohttp.ClientSession) -> None:
    """``retry_after=None`` sends 429 without the header, as Soda documents nothing."""
    sandbox = Sandbox(
        retry_after=None, vendor_options={"soda": {"limits": {"delete_runner": (1, 1.0)}}}
    )
    org = sandbox.add_org("soda", "acme-eu")
    async with sandbox.serve() as url:
        for _ in range(2):
            async with http.delete(f"{url}/api/v1/runners/x", headers=basic(org)) as resp:
                pass
    assert resp.status == 429
    assert "Retry-After" not in resp.headers


async def test_time_scale_shortens_published_limits(http: aiohttp.ClientSession) -> None:
    """``time_scale=600`` turns create's 10 per 60 s into 10 per 0.1 s."""
    sandbox = Sandbox(time_scale=600, retry_after="decimal")
    org = sandbox.add_org("soda", "acme-eu")
    async with sandbox.serve() as url:
        statuses = []
        for _ in range(11):
            async with http.post(f"{url}/api/v1/runners", headers=basic(org)) as resp:
                statuses.append(resp.status)
        wait = float(resp.headers["Retry-After"])
        assert statuses == [200] * 10 + [429]
        assert wait <= 0.1
        await asyncio.sleep(wait)
        async with http.post(f"{url}/api/v1/runners", headers=basic(org)) as resp:
            assert resp.status == 200


async def test_unenforced_limits_only_record(http: aiohttp.ClientSession) -> None:
    """With ``enforce_limits=False`` nothing is rejected and ``max_in_window`` shows the excess."""
    sandbox = Sandbox(
        enforce_limits=False, vendor_options={"soda": {"limits": {"list_runners": (2, 10.0)}}}
    )
    org = sandbox.add_org("soda", "acme-eu")
    async with sandbox.serve() as url:
        for _ in range(5):
            async with http.get(f"{url}/api/v1/runners", headers=basic(org)) as resp:
                assert resp.status == 200
    assert sandbox.max_in_window("soda", "list_runners", 10.0) == 5
