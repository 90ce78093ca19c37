"""The vendor-neutral ``Sandbox``: services from the registry, per-vendor prefixes, accounts,
threads, and the answers every vendor shares (``Retry-After``, ``Allow``)."""

from __future__ import annotations

import threading
import urllib.request
from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest

from runnerhub.sandbox import Sandbox, SandboxAccount
from runnerhub.vendors import VENDORS, vendor_names


def soda_auth(account: SandboxAccount) -> dict[str, str]:
    """Basic auth from a Soda account's credentials."""
    creds = account.credentials
    return {
        "Authorization": aiohttp.encode_basic_auth(creds["api_key_id"], creds["api_key_secret"])
    }


def kubiya_auth(account: SandboxAccount) -> dict[str, str]:
    """``UserKey`` auth from a Kubiya account's credentials."""
    return {"Authorization": f"UserKey {account.credentials['api_key']}"}


@pytest.fixture
def threaded() -> Iterator[Sandbox]:
    """A sandbox with one Soda and one Kubiya org, served from its own thread."""
    sandbox = Sandbox(seed=4)
    sandbox.add_org("soda", "acme-eu", runners=3)
    sandbox.add_org("kubiya", "kubiya-prod", runners=2)
    with sandbox.serve_in_thread():
        yield sandbox


def test_every_registered_vendor_is_served() -> None:
    """The sandbox builds one service per registry entry, in registry order."""
    sandbox = Sandbox()
    assert sandbox.vendors == tuple(VENDORS)
    assert sorted(sandbox.vendors) == list(vendor_names())
    for name in VENDORS:
        assert sandbox.service(name).vendor == name


def test_unknown_vendors_are_refused() -> None:
    """Unknown vendors in options, ``add_org``, ``service`` and ``url`` fail with their names."""
    with pytest.raises(ValueError, match="nope"):
        Sandbox(vendor_options={"nope": {}})
    with pytest.raises(TypeError):
        Sandbox(vendor_options={"soda": {"no_such_option": 1}})
    sandbox = Sandbox()
    with pytest.raises(KeyError, match="nope"):
        sandbox.add_org("nope", "x")
    with pytest.raises(KeyError, match="nope"):
        sandbox.service("nope")
    with pytest.raises(RuntimeError, match="not serving"):
        sandbox.url("soda")


def test_accounts_and_demo() -> None:
    """``demo()`` asks every service for its orgs; ``accounts()`` gives each one's credentials."""
    sandbox = Sandbox.demo(seed=2)
    accounts = sandbox.accounts()
    assert [(a.vendor, a.name) for a in accounts] == [
        ("soda", "soda-eu"),
        ("soda", "soda-us"),
        ("kubiya", "kubiya-prod"),
        ("github", "gh-acme"),
    ]
    soda = sandbox.service("soda").orgs["soda-eu"]
    assert accounts[0].credentials == {
        "api_key_id": soda.api_key_id,
        "api_key_secret": soda.api_key_secret,
    }
    assert accounts[2].credentials == {
        "api_key": sandbox.service("kubiya").orgs["kubiya-prod"].api_key
    }
    assert soda.api_key_secret not in repr(accounts) + repr(sandbox)


async def test_each_vendor_has_its_own_prefix(
    threaded: Sandbox, http: aiohttp.ClientSession
) -> None:
    """``url(vendor)`` serves that vendor alone: Kubiya's ``/api/v1/`` never reaches Soda there."""
    soda, kubiya = threaded.accounts()
    assert threaded.url("kubiya") == f"{threaded.base_url}/kubiya"
    async with http.get(f"{threaded.url('soda')}/api/v1/runners", headers=soda_auth(soda)) as resp:
        assert resp.status == 200
        assert (await resp.json())["totalElements"] == 3
    async with http.get(
        f"{threaded.url('kubiya')}/api/v3/runners", headers=kubiya_auth(kubiya)
    ) as resp:
        assert len(await resp.json()) == 2
    # At the root, /api/v1/ belongs to the first vendor in the registry; under /kubiya, to Kubiya.
    async with http.get(
        f"{threaded.url('kubiya')}/api/v1/runners", headers=kubiya_auth(kubiya)
    ) as resp:
        assert resp.status == 404
        assert await resp.json() == {"code": 404, "error": "not found"}
    async with http.get(f"{threaded.base_url}/api/v1/runners", headers=soda_auth(soda)) as resp:
        assert resp.status == 200
    records = [(r.vendor, r.path, r.status) for r in threaded.requests]
    assert records == [
        ("soda", "/api/v1/runners", 200),
        ("kubiya", "/api/v3/runners", 200),
        ("kubiya", "/api/v1/runners", 404),
        ("soda", "/api/v1/runners", 200),
    ]


async def test_kubiya_legacy_v1_describe(threaded: Sandbox, http: aiohttp.ClientSession) -> None:
    """Under ``/kubiya``, Kubiya's legacy v1 describe answers with the docs' four fields."""
    kubiya = threaded.accounts()[1]
    url = f"{threaded.url('kubiya')}/api/v1/runners/kubiya-hosted/describe"
    async with http.get(url, headers=kubiya_auth(kubiya)) as resp:
        assert resp.status == 200
        body = await resp.json()
    assert set(body) == {"name", "version", "namespace", "kubernetes_namespace"}
    assert (body["name"], body["version"]) == ("kubiya-hosted", "v2")
    assert threaded.requests[-1].operation == "describe_runner_v1"


async def test_manifest_url_keeps_the_prefix(
    threaded: Sandbox, http: aiohttp.ClientSession
) -> None:
    """A runner created under ``/kubiya`` gets a manifest URL under ``/kubiya`` that works."""
    kubiya = threaded.accounts()[1]
    base = threaded.url("kubiya")
    async with http.post(f"{base}/api/v3/runners/edge-1", headers=kubiya_auth(kubiya)) as resp:
        manifest_url = (await resp.json())["url"]
    assert manifest_url.startswith(f"{base}/api/v3/runners/helm/")
    async with http.get(manifest_url) as resp:
        assert resp.status == 200
        assert "kind: Deployment" in await resp.text()


@pytest.mark.parametrize(
    ("vendor", "path", "allowed"),
    [
        ("soda", "/api/v1/runners", {"GET", "POST"}),
        ("kubiya", "/api/v3/runners/edge-1/health", {"GET"}),
    ],
)
async def test_405_carries_allow(
    threaded: Sandbox,
    http: aiohttp.ClientSession,
    vendor: str,
    path: str,
    allowed: set[str],
) -> None:
    """A method a route does not take is a 405 in the vendor's error shape, with ``Allow``."""
    soda, kubiya = threaded.accounts()
    headers = soda_auth(soda) if vendor == "soda" else kubiya_auth(kubiya)
    async with http.patch(threaded.url(vendor) + path, headers=headers) as resp:
        assert resp.status == 405
        assert set(resp.headers["Allow"].replace(" ", "").split(",")) == allowed
        assert resp.content_type == "application/json"


async def test_retry_after_is_whole_seconds_by_default(http: aiohttp.ClientSession) -> None:
    """A 0.2 s wait is announced as ``Retry-After: 1``: whole seconds, rounded up."""
    sandbox = Sandbox(vendor_options={"kubiya": {"limits": [(1, 0.2)]}})
    org = sandbox.add_org("kubiya", "kubiya-prod")
    headers = {"Authorization": f"UserKey {org.api_key}"}
    async with sandbox.serve():
        for _ in range(2):
            async with http.get(f"{sandbox.url('kubiya')}/api/v3/runners", headers=headers) as resp:
                pass
    assert resp.status == 429
    assert resp.headers["Retry-After"] == "1"


def test_serve_in_thread_from_sync_code(threaded: Sandbox) -> None:
    """Sync code reaches the threaded server, and orgs added from this thread are served."""
    added: Any = threaded.add_org("kubiya", "kubiya-dev", runners=4)
    request = urllib.request.Request(  # noqa: S310 - loopback http URL built from base_url
        f"{threaded.url('kubiya')}/api/v3/runners",
        headers={"Authorization": f"UserKey {added.api_key}"},
    )
    with urllib.request.urlopen(request, timeout=5) as resp:  # noqa: S310 - as above
        assert resp.status == 200
    assert threaded.requests[-1].org == "kubiya-dev"
    threaded.reset_limits()
    with pytest.raises(ValueError, match="already exists"):
        threaded.add_org("kubiya", "kubiya-dev")


def test_serve_in_thread_reports_a_bind_failure() -> None:
    """A port that cannot be bound raises in the caller, and leaves no thread behind."""
    first = Sandbox()
    with first.serve_in_thread() as url:
        port = int(url.rsplit(":", 1)[1])
        before = threading.active_count()
        with pytest.raises(OSError, match="address"), Sandbox().serve_in_thread(port=port):
            pass
        assert threading.active_count() == before
    assert first.base_url is None
