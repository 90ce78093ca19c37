"""Fault switches, as a client sees them over a real socket."""

from __future__ import annotations

import asyncio
import re

import aiohttp
import pytest

from runnerhub.sandbox import Fault, FaultKind, Sandbox, SodaOrg


def basic(org: SodaOrg) -> dict[str, str]:
    """The org's API key as an HTTP Basic ``Authorization`` header."""
    return {"Authorization": aiohttp.encode_basic_auth(org.api_key_id, org.api_key_secret)}


def soda_sandbox(**options: object) -> tuple[Sandbox, SodaOrg]:
    """A sandbox with one small Soda org."""
    sandbox = Sandbox(seed=1, **options)  # type: ignore[arg-type]
    return sandbox, sandbox.add_org("soda", "acme-eu", runners=3)


async def test_status_fault_fires_times_then_stops(http: aiohttp.ClientSession) -> None:
    """A STATUS fault with ``times=2`` answers twice with the vendor body, then steps aside."""
    sandbox, org = soda_sandbox()
    sandbox.faults.add(
        Fault(FaultKind.STATUS, status=503, times=2, method="get", path="/api/v1/runners")
    )
    async with sandbox.serve() as url:
        statuses = []
        for _ in range(3):
            async with http.get(f"{url}/api/v1/runners", headers=basic(org)) as resp:
                statuses.append(resp.status)
                body = await resp.json()
                if resp.status == 503:
                    assert body["code"] == "service_unavailable"
                    assert "X-Soda-Trace-Id" in resp.headers
    assert statuses == [503, 503, 200]
    assert [r.fault for r in sandbox.requests] == ["status", "status", None]
    assert not list(sandbox.faults)


async def test_status_fault_with_retry_after_and_body(http: aiohttp.ClientSession) -> None:
    """A 429 fault sends the given Retry-After verbatim and a custom body if given."""
    sandbox, org = soda_sandbox()
    sandbox.faults.add(Fault(FaultKind.STATUS, status=429, retry_after="2", body={"x": 1}))
    async with (
        sandbox.serve() as url,
        http.get(f"{url}/api/v1/runners", headers=basic(org)) as resp,
    ):
        assert resp.status == 429
        assert resp.headers["Retry-After"] == "2"
        assert await resp.json() == {"x": 1}


async def test_faults_come_before_auth_and_limits(http: aiohttp.ClientSession) -> None:
    """A faulted request needs no valid credential and uses no limit budget."""
    sandbox, org = soda_sandbox(vendor_options={"soda": {"limits": {"list_runners": (1, 5.0)}}})
    sandbox.faults.add(Fault(FaultKind.STATUS, status=500, times=3))
    async with sandbox.serve() as url:
        statuses = []
        for headers in ({}, basic(org), basic(org), basic(org), basic(org)):
            async with http.get(f"{url}/api/v1/runners", headers=headers) as resp:
                statuses.append(resp.status)
    assert statuses == [500, 500, 500, 200, 429]


async def test_fault_filters(http: aiohttp.ClientSession) -> None:
    """Method, path prefix, regex and vendor each narrow which requests a fault hits."""
    sandbox, org = soda_sandbox()
    kubiya = sandbox.add_org("kubiya", "kubiya-prod", runners=1)
    sandbox.faults.add(Fault(FaultKind.STATUS, status=502, method="POST"))
    sandbox.faults.add(Fault(FaultKind.STATUS, status=504, path=re.compile(r"/runners/[^/]+$")))
    sandbox.faults.add(Fault(FaultKind.STATUS, status=500, vendor="kubiya"))
    runner_id = next(iter(org.runners))
    kubiya_key = {"Authorization": f"UserKey {kubiya.api_key}"}
    async with sandbox.serve() as url:
        async with http.get(f"{url}/api/v1/runners", headers=basic(org)) as resp:
            assert resp.status == 200
        async with http.post(f"{url}/api/v1/runners", headers=basic(org)) as resp:
            assert resp.status == 502
        async with http.get(f"{url}/api/v1/runners/{runner_id}", headers=basic(org)) as resp:
            assert resp.status == 504
        async with http.get(f"{url}/api/v3/runners", headers=kubiya_key) as resp:
            assert resp.status == 500
            assert await resp.json() == {"code": 500, "error": "injected fault"}
            assert "X-RateLimit-Limit" in resp.headers


async def test_remove_and_clear(http: aiohttp.ClientSession) -> None:
    """Removed and cleared faults stop firing."""
    sandbox, org = soda_sandbox()
    first = sandbox.faults.add(Fault(FaultKind.STATUS, status=500))
    sandbox.faults.add(Fault(FaultKind.STATUS, status=502))
    async with sandbox.serve() as url:
        sandbox.faults.remove(first)
        async with http.get(f"{url}/api/v1/runners", headers=basic(org)) as resp:
            assert resp.status == 502
        sandbox.faults.clear()
        async with http.get(f"{url}/api/v1/runners", headers=basic(org)) as resp:
            assert resp.status == 200
    with pytest.raises(ValueError, match="not active"):
        sandbox.faults.remove(first)


async def test_latency(http: aiohttp.ClientSession) -> None:
    """LATENCY delays a normal response by ``delay``."""
    sandbox, org = soda_sandbox()
    sandbox.faults.add(Fault(FaultKind.LATENCY, delay=0.2))
    loop = asyncio.get_running_loop()
    async with sandbox.serve() as url:
        started = loop.time()
        async with http.get(f"{url}/api/v1/runners", headers=basic(org)) as resp:
            assert resp.status == 200
            assert (await resp.json())["totalElements"] == 3
        assert loop.time() - started >= 0.2
    assert sandbox.requests[0].fault == "latency"


async def test_stall_trips_the_client_timeout(http: aiohttp.ClientSession) -> None:
    """STALL sends nothing, so the client's own timeout fires; the log shows status 0."""
    sandbox, org = soda_sandbox()
    sandbox.faults.add(Fault(FaultKind.STALL, delay=2.0))
    async with sandbox.serve() as url:
        with pytest.raises(asyncio.TimeoutError):
            async with http.get(
                f"{url}/api/v1/runners",
                headers=basic(org),
                timeout=aiohttp.ClientTimeout(total=0.2),
            ):
                pass
        for _ in range(50):
            if sandbox.requests:
                break
            await asyncio.sleep(0.01)
    assert (sandbox.requests[0].status, sandbox.requests[0].fault) == (0, "stall")


async def test_reset_drops_the_connection(http: aiohttp.ClientSession) -> None:
    """RESET closes the socket without a response: the client sees a disconnect."""
    sandbox, org = soda_sandbox()
    # aiohttp's client retries an idempotent request once on a dropped connection.
    sandbox.faults.add(Fault(FaultKind.RESET, times=2))
    async with sandbox.serve() as url:
        with pytest.raises(aiohttp.ServerDisconnectedError):
            async with http.get(f"{url}/api/v1/runners", headers=basic(org)):
                pass
        async with http.get(f"{url}/api/v1/runners", headers=basic(org)) as resp:
            assert resp.status == 200
    assert [(r.status, r.fault) for r in sandbox.requests] == [
        (0, "reset"),
        (0, "reset"),
        (200, None),
    ]


async def test_malformed_json(http: aiohttp.ClientSession) -> None:
    """MALFORMED is a 200 application/json body that does not parse."""
    sandbox, org = soda_sandbox()
    sandbox.faults.add(Fault(FaultKind.MALFORMED))
    async with (
        sandbox.serve() as url,
        http.get(f"{url}/api/v1/runners", headers=basic(org)) as resp,
    ):
        assert resp.status == 200
        assert resp.content_type == "application/json"
        with pytest.raises(ValueError, match="Expecting"):
            await resp.json()


async def test_truncated_body(http: aiohttp.ClientSession) -> None:
    """TRUNCATED promises more bytes than it sends; reading the body fails."""
    sandbox, org = soda_sandbox()
    sandbox.faults.add(Fault(FaultKind.TRUNCATED))
    async with (
        sandbox.serve() as url,
        http.get(f"{url}/api/v1/runners", headers=basic(org)) as resp,
    ):
        assert resp.status == 200
        with pytest.raises(aiohttp.ClientPayloadError):
            await resp.read()
    assert sandbox.requests[0].status == 200


async def test_wrong_shape(http: aiohttp.ClientSession) -> None:
    """WRONG_SHAPE is valid JSON that does not fit: an object for a list and vice versa."""
    sandbox, org = soda_sandbox()
    kubiya = sandbox.add_org("kubiya", "kubiya-prod", runners=1)
    sandbox.faults.add(Fault(FaultKind.WRONG_SHAPE, times=3))
    kubiya_key = {"Authorization": f"UserKey {kubiya.api_key}"}
    async with sandbox.serve() as url:
        async with http.get(f"{url}/api/v1/runners", headers=basic(org)) as resp:
            assert await resp.json() == {"content": "nope"}
        async with http.get(f"{url}/api/v1/runners/x", headers=basic(org)) as resp:
            assert isinstance(await resp.json(), list)
        async with http.get(f"{url}/api/v3/runners", headers=kubiya_key) as resp:
            assert isinstance(await resp.json(), dict)


async def test_unknown_enum_values(http: aiohttp.ClientSession) -> None:
    """UNKNOWN_ENUM serves real data with enum values outside the spec."""
    sandbox, org = soda_sandbox()
    kubiya = sandbox.add_org("kubiya", "kubiya-prod", runners=2)
    sandbox.faults.add(Fault(FaultKind.UNKNOWN_ENUM))
    kubiya_key = {"Authorization": f"UserKey {kubiya.api_key}"}
    async with sandbox.serve() as url:
        async with http.get(f"{url}/api/v1/runners", headers=basic(org)) as resp:
            listed = await resp.json()
        assert {r["type"] for r in listed["content"]} == {"VIRTUAL"}
        assert listed["totalElements"] == 3
        async with http.get(
            f"{url}/api/v1/runners/{next(iter(org.runners))}", headers=basic(org)
        ) as resp:
            assert (await resp.json())["runner"]["type"] == "VIRTUAL"
        async with http.get(f"{url}/api/v3/runners", headers=kubiya_key) as resp:
            assert {r["runner_type"] for r in await resp.json()} == {"quantum_operator"}
        async with http.get(
            f"{url}/api/v3/runners/kubiya-hosted/health", headers=kubiya_key
        ) as resp:
            assert (await resp.json())["status"] == "rebooting"
        async with http.get(f"{url}/api/v3/runners") as resp:
            assert resp.status == 401
    assert org.runners[next(iter(org.runners))]["type"] == "SODA_HOSTED"


async def test_html_proxy_page(http: aiohttp.ClientSession) -> None:
    """HTML is a 502 text/html page without vendor headers."""
    sandbox, org = soda_sandbox()
    sandbox.faults.add(Fault(FaultKind.HTML))
    async with (
        sandbox.serve() as url,
        http.get(f"{url}/api/v1/runners", headers=basic(org)) as resp,
    ):
        assert resp.status == 502
        assert resp.content_type == "text/html"
        assert "502 Bad Gateway" in await resp.text()
        assert "X-Soda-Trace-Id" not in resp.headers


async def test_probability_is_seeded(http: aiohttp.ClientSession) -> None:
    """A fault with ``probability`` hits the same requests for the same sandbox seed."""
    outcomes = []
    for _ in range(2):
        sandbox, org = soda_sandbox()
        sandbox.faults.add(Fault(FaultKind.STATUS, status=500, probability=0.5))
        async with sandbox.serve() as url:
            statuses = []
            for _ in range(20):
                async with http.get(f"{url}/api/v1/runners", headers=basic(org)) as resp:
                    statuses.append(resp.status)
        outcomes.append(statuses)
    assert outcomes[0] == outcomes[1]
    assert 3 < outcomes[0].count(500) < 17


async def test_random_faults_are_repeatable(http: aiohttp.ClientSession) -> None:
    """``faults.random`` hits about ``rate`` of requests, identically for the same seed."""
    runs = []
    for _ in range(2):
        sandbox, org = soda_sandbox()
        rule = sandbox.faults.random(
            rate=0.3, seed=11, kinds=[FaultKind.STATUS, FaultKind.MALFORMED, FaultKind.HTML]
        )
        async with sandbox.serve() as url:
            for _ in range(40):
                async with http.get(f"{url}/api/v1/runners", headers=basic(org)) as resp:
                    await resp.read()
            sandbox.faults.remove(rule)
            async with http.get(f"{url}/api/v1/runners", headers=basic(org)) as resp:
                assert resp.status == 200
        runs.append([(r.status, r.fault) for r in sandbox.requests])
    assert runs[0] == runs[1]
    hit = [fault for _, fault in runs[0] if fault]
    assert 4 <= len(hit) <= 20
    assert len(set(hit)) > 1


def test_fault_validation() -> None:
    """Nonsense ``times`` and ``probability`` are rejected up front."""
    with pytest.raises(ValueError, match="times"):
        Fault(FaultKind.RESET, times=0)
    with pytest.raises(ValueError, match="probability"):
        Fault(FaultKind.RESET, probability=1.5)
    assert Fault(FaultKind.STALL).seconds == 30.0
    assert Fault(FaultKind.LATENCY, delay=0.5).seconds == 0.5
