"""Soda-only behaviour: paging, auth forms, configuration, deletes, creates and the wire mapping."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import aiohttp
import pytest
from yarl import URL

from runnerhub import RunnerKind, RunnerStatus, SodaProvider, errors
from runnerhub.sandbox import Fault, FaultKind, Sandbox, SodaOrg
from runnerhub.vendors.soda import REGIONS, health_from_runner, runner_from_wire

from .conftest import SODA_LIMITS, VendorCase

SAMPLES = Path(__file__).parent / "samples"


def _sample(name: str) -> Any:
    return json.loads((SAMPLES / name).read_text())


def _org(case: VendorCase) -> SodaOrg:
    org: SodaOrg = case.sandbox.service("soda").orgs["acme-eu"]
    return org


def _base_url(case: VendorCase) -> str:
    assert case.sandbox.base_url is not None
    return case.sandbox.base_url


def _soda(case: VendorCase, **options: Any) -> SodaProvider:
    provider = case.provider(**options)
    assert isinstance(provider, SodaProvider)
    return provider


@asynccontextmanager
async def _recording_session() -> AsyncIterator[tuple[aiohttp.ClientSession, list[URL]]]:
    """A session whose trace hook records every request URL (query included)."""
    urls: list[URL] = []

    async def on_start(
        session: aiohttp.ClientSession,
        context: SimpleNamespace,
        params: aiohttp.TraceRequestStartParams,
    ) -> None:
        urls.append(params.url)

    trace = aiohttp.TraceConfig()
    trace.on_request_start.append(on_start)
    async with aiohttp.ClientSession(trace_configs=[trace]) as session:
        yield session, urls


# -- paging ------------------------------------------------------------------


async def test_pages_of_ten(soda_case: VendorCase) -> None:
    """25 runners with page_size=10 take exactly 3 list requests for pages 0, 1 and 2."""
    async with _recording_session() as (session, urls), _soda(soda_case, session=session) as p:
        runners = [r async for r in p.list_runners(page_size=10)]
    assert [r.id for r in runners] == soda_case.runner_ids
    assert soda_case.sandbox.count(operation="list_runners") == 3
    assert [dict(u.query) for u in urls] == [
        {"page": "0", "size": "10"},
        {"page": "1", "size": "10"},
        {"page": "2", "size": "10"},
    ]
    mount = URL(soda_case.sandbox.url("soda")).path
    assert all(u.path == f"{mount}/api/v1/runners" for u in urls)


async def test_default_page_size_is_1000(soda_case: VendorCase) -> None:
    """Without page_size, one request asks for 1000 runners."""
    async with _recording_session() as (session, urls), _soda(soda_case, session=session) as p:
        runners = [r async for r in p.list_runners()]
    assert len(runners) == 25
    assert [dict(u.query) for u in urls] == [{"page": "0", "size": "1000"}]


async def test_listing_is_lazy(soda_case: VendorCase) -> None:
    """Only as many pages are fetched as the caller consumes."""
    async with _soda(soda_case) as provider:
        runners = provider.list_runners(page_size=10)
        assert isinstance(runners, AsyncGenerator)
        first = await anext(runners)
        await runners.aclose()
    assert first.id == soda_case.runner_ids[0]
    assert soda_case.sandbox.count(operation="list_runners") == 1


async def test_empty_org_lists_nothing() -> None:
    """An org without runners gives an empty listing after one request."""
    sandbox = Sandbox(seed=1)
    org = sandbox.add_org("soda", "empty-eu")
    async with (
        sandbox.serve() as base_url,
        SodaProvider(org.api_key_id, org.api_key_secret, base_url=base_url) as provider,
    ):
        runners = [r async for r in provider.list_runners(page_size=10)]
    assert runners == []
    assert sandbox.count(operation="list_runners") == 1


@pytest.mark.parametrize("page_size", [9, 1001, 0, -10])
async def test_page_size_bounds(soda_case: VendorCase, page_size: int) -> None:
    """A page size outside 10..1000 is a UsageError before any request."""
    async with _soda(soda_case) as provider:
        with pytest.raises(errors.UsageError, match="page_size"):
            _ = [r async for r in provider.list_runners(page_size=page_size)]
    assert soda_case.sandbox.requests == []


@pytest.mark.parametrize("page_size", [10, 1000])
async def test_page_size_limits_are_inclusive(soda_case: VendorCase, page_size: int) -> None:
    """The bounds 10 and 1000 themselves are accepted."""
    async with _soda(soda_case) as provider:
        runners = [r async for r in provider.list_runners(page_size=page_size)]
    assert len(runners) == 25


async def test_insert_between_pages_yields_no_duplicate(soda_case: VendorCase) -> None:
    """A runner inserted before the cursor shifts the next page, but no id repeats."""
    org = _org(soda_case)
    async with _soda(soda_case) as provider:
        iterator = provider.list_runners(page_size=10)
        seen = [(await anext(iterator)).id for _ in range(10)]
        # Prepend a runner: every later runner moves one place towards page 1's end.
        items = list(org.runners.items())
        new = org.add_runner(name="inserted")
        org.runners.clear()
        org.runners.update([(new["id"], new), *items])
        seen += [r.id async for r in iterator]
    assert len(seen) == len(set(seen))
    assert set(soda_case.runner_ids) <= set(seen)


async def test_append_between_pages_yields_no_duplicate(soda_case: VendorCase) -> None:
    """Runners appended at the end while listing appear once, none twice."""
    org = _org(soda_case)
    async with _soda(soda_case) as provider:
        iterator = provider.list_runners(page_size=10)
        seen = [(await anext(iterator)).id for _ in range(10)]
        appended = [org.add_runner(name=f"late-{n}")["id"] for n in range(6)]
        seen += [(await anext(iterator)).id for _ in range(10)]
        org.add_runner(name="later")
        seen += [r.id async for r in iterator]
    assert len(seen) == len(set(seen))
    assert set(appended) <= set(seen)


async def test_removal_between_pages_yields_no_duplicate(soda_case: VendorCase) -> None:
    """Runners removed while listing never cause a repeat; only existing ids are yielded."""
    org = _org(soda_case)
    async with _soda(soda_case) as provider:
        iterator = provider.list_runners(page_size=10)
        seen = [(await anext(iterator)).id for _ in range(10)]
        org.remove_runner(seen[0])
        org.remove_runner(seen[1])
        seen.append((await anext(iterator)).id)
        org.remove_runner(soda_case.runner_ids[-1])
        seen += [r.id async for r in iterator]
    assert len(seen) == len(set(seen))
    assert set(seen) <= set(soda_case.runner_ids)


async def test_shrinking_listing_stops(soda_case: VendorCase) -> None:
    """A listing whose later pages vanish ends cleanly instead of looping."""
    org = _org(soda_case)
    async with _soda(soda_case) as provider:
        iterator = provider.list_runners(page_size=10)
        seen = [(await anext(iterator)).id for _ in range(10)]
        for runner_id in soda_case.runner_ids[10:]:
            org.remove_runner(runner_id)
        seen += [r.id async for r in iterator]
    assert seen == soda_case.runner_ids[:10]
    assert soda_case.sandbox.count(operation="list_runners") == 2


# -- auth and configuration --------------------------------------------------


async def test_cookie_token_auth(soda_case: VendorCase) -> None:
    """A pre-authenticated ``token`` cookie works in place of the key pair."""
    org = _org(soda_case)
    base_url = _base_url(soda_case)
    async with SodaProvider(token=org.token, base_url=base_url) as provider:
        runner = await provider.get_runner(soda_case.runner_ids[0])
    assert runner.id == soda_case.runner_ids[0]
    async with SodaProvider(token="not-the-token", base_url=base_url) as provider:
        with pytest.raises(errors.AuthenticationError):
            await provider.get_runner(soda_case.runner_ids[0])


@pytest.mark.parametrize("token", ["a;b=c", "a,b", "line\nbreak", "tab\there"])
def test_cookie_token_must_be_cookie_safe(token: str) -> None:
    """A token that could break the Cookie header is refused."""
    with pytest.raises(errors.UsageError):
        SodaProvider(token=token)


def test_empty_cookie_token_refused() -> None:
    """An empty token is a UsageError, like an empty key id."""
    with pytest.raises(errors.UsageError):
        SodaProvider(token="")


async def test_from_env_key_pair(soda_case: VendorCase) -> None:
    """from_env reads the key pair and base URL; the account is then plain "soda"."""
    org = _org(soda_case)
    env = {
        "SODA_API_KEY_ID": org.api_key_id,
        "SODA_API_KEY_SECRET": org.api_key_secret,
        "SODA_BASE_URL": _base_url(soda_case),
    }
    async with SodaProvider.from_env(env, rate_limits=SODA_LIMITS) as provider:
        runner = await provider.get_runner(soda_case.runner_ids[0])
    assert provider.base_url == _base_url(soda_case)
    assert provider.account == "soda"
    assert runner.account == "soda"


async def test_from_env_token(soda_case: VendorCase) -> None:
    """from_env falls back to SODA_TOKEN when no key id is set."""
    env = {"SODA_TOKEN": _org(soda_case).token, "SODA_BASE_URL": _base_url(soda_case)}
    async with SodaProvider.from_env(env) as provider:
        runners = [r async for r in provider.list_runners()]
    assert len(runners) == 25


def test_from_env_region_and_options() -> None:
    """SODA_REGION picks the host and label; keyword options win over the environment."""
    env = {"SODA_API_KEY_ID": "kid", "SODA_API_KEY_SECRET": "ksecret", "SODA_REGION": "us"}
    provider = SodaProvider.from_env(env)
    assert provider.base_url == "https://cloud.us.soda.io"
    assert provider.account == "soda-us"
    env["SODA_BASE_URL"] = "https://elsewhere.example"
    overridden = SodaProvider.from_env(env, base_url="https://chosen.example", account="mine")
    assert overridden.base_url == "https://chosen.example"
    assert overridden.account == "mine"


def test_from_env_reads_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without a mapping, from_env reads the process environment."""
    monkeypatch.setenv("SODA_API_KEY_ID", "kid")
    monkeypatch.setenv("SODA_API_KEY_SECRET", "ksecret")
    monkeypatch.delenv("SODA_REGION", raising=False)
    monkeypatch.delenv("SODA_BASE_URL", raising=False)
    provider = SodaProvider.from_env()
    assert provider.base_url == "https://cloud.soda.io"
    assert provider.account == "soda-eu"


@pytest.mark.parametrize(
    "env",
    [
        {},
        {"SODA_API_KEY_ID": "kid"},
        {"SODA_API_KEY_SECRET": "ksecret"},
        {"SODA_API_KEY_ID": "", "SODA_API_KEY_SECRET": "ksecret"},
        {"SODA_REGION": "eu", "SODA_BASE_URL": "https://cloud.soda.io"},
    ],
)
def test_from_env_missing_credentials(env: dict[str, str]) -> None:
    """from_env without usable credentials is a UsageError naming the variables."""
    with pytest.raises(errors.UsageError, match="SODA_API_KEY_ID"):
        SodaProvider.from_env(env)


@pytest.mark.parametrize(("region", "host"), sorted(REGIONS.items()))
def test_regions(region: str, host: str) -> None:
    """Each region selects its documented host and a "soda-<region>" account label."""
    provider = SodaProvider("kid", "ksecret", region=region)
    assert provider.base_url == host
    assert provider.account == f"soda-{region}"


def test_default_region_is_eu() -> None:
    """Without a region the EU host is used."""
    provider = SodaProvider("kid", "ksecret")
    assert provider.base_url == "https://cloud.soda.io"
    assert provider.account == "soda-eu"


@pytest.mark.parametrize("region", ["EU", "de", "", "us-east-1"])
def test_unknown_region(region: str) -> None:
    """An unknown region is a UsageError."""
    with pytest.raises(errors.UsageError, match="region"):
        SodaProvider("kid", "ksecret", region=region)


@pytest.mark.parametrize(
    ("args", "kwargs", "match"),
    [
        (("kid", "ksecret"), {"token": "tok"}, "not both"),
        (("kid", None), {}, "go together"),
        ((None, "ksecret"), {}, "go together"),
        (("", "ksecret"), {}, "go together"),
        ((), {}, "needs"),
        (("k:id", "ksecret"), {}, "':'"),
        (("kid", "line\nbreak"), {}, "printable"),
        (("kid", "cr\rhere"), {}, "printable"),
        (("k\tid", "ksecret"), {}, "printable"),
    ],
)
def test_bad_credentials_refused(args: tuple[Any, ...], kwargs: dict[str, Any], match: str) -> None:
    """Conflicting, incomplete or header-breaking credentials are UsageErrors."""
    with pytest.raises(errors.UsageError, match=match) as info:
        SodaProvider(*args, **kwargs)
    assert "break" not in str(info.value)


def test_insecure_base_url_refused() -> None:
    """Plain http to a remote host is refused for Soda too."""
    with pytest.raises(errors.UsageError):
        SodaProvider("kid", "ksecret", base_url="http://cloud.soda.io")


# -- delete and create -------------------------------------------------------


async def test_delete_in_use_runner_is_bad_request(soda_case: VendorCase) -> None:
    """Deleting a runner still in use is a BadRequestError, sent once, with a trace id."""
    in_use = sorted(_org(soda_case).in_use)[0]
    async with _soda(soda_case) as provider:
        with pytest.raises(errors.BadRequestError) as info:
            await provider.delete_runner(in_use)
    assert info.value.status == 400
    assert info.value.code == "bad_request"
    assert "in use" in info.value.message
    assert info.value.trace_id is not None
    assert len(info.value.trace_id) == 32
    assert soda_case.sandbox.count(operation="delete_runner") == 1
    assert in_use in _org(soda_case).runners


async def test_delete_soda_hosted_runner_is_bad_request(soda_case: VendorCase) -> None:
    """The Soda-hosted runner cannot be deleted: BadRequestError, not retried."""
    org = _org(soda_case)
    hosted = next(rid for rid, r in org.runners.items() if r["type"] == "SODA_HOSTED")
    async with _soda(soda_case) as provider:
        with pytest.raises(errors.BadRequestError, match="Soda-hosted"):
            await provider.delete_runner(hosted)
    assert soda_case.sandbox.count(operation="delete_runner") == 1
    assert hosted in org.runners


async def test_delete_unknown_runner_is_not_found(soda_case: VendorCase) -> None:
    """Deleting an id Soda does not know is a NotFoundError."""
    async with _soda(soda_case) as provider:
        with pytest.raises(errors.NotFoundError):
            await provider.delete_runner("00000000-0000-4000-8000-000000000000")


async def test_create_returns_one_time_credentials(soda_case: VendorCase) -> None:
    """create_runner returns the minted key pair; the secret is readable only on purpose."""
    org = _org(soda_case)
    async with _soda(soda_case) as provider:
        created = await provider.create_runner("edge-eu")
    assert created.credentials is not None
    assert created.credentials.api_key_id == org.created[-1]
    secret = created.credentials.api_key_secret.get_secret_value()
    assert len(secret) >= 30
    assert secret not in repr(created)
    assert secret not in repr(created.raw)
    assert created.runner_id is None  # Soda returns no id
    assert created.name == "edge-eu"


async def test_created_runner_listed_only_after_registering(soda_case: VendorCase) -> None:
    """The new runner appears in listings only once it registers with its key."""
    org = _org(soda_case)
    async with _soda(soda_case) as provider:
        created = await provider.create_runner()
        assert created.credentials is not None
        before = {r.id async for r in provider.list_runners()}
        registered = org.register(created.credentials.api_key_id, "edge-eu")
        after = {r.id async for r in provider.list_runners()}
        runner = await provider.get_runner(registered["id"])
    assert before == set(soda_case.runner_ids)
    assert after == before | {registered["id"]}
    assert runner.name == "edge-eu"
    assert runner.kind is RunnerKind.SELF_HOSTED
    assert runner.status is RunnerStatus.ONLINE


async def test_health_is_derived_from_the_runner(soda_case: VendorCase) -> None:
    """runner_health is one GET, mirroring isOnline and lastSeenTimestamp."""
    async with _soda(soda_case) as provider:
        runner = await provider.get_runner(soda_case.runner_ids[0])
        health = await provider.runner_health(soda_case.runner_ids[0])
    assert health.status is runner.status
    assert health.checked_at == runner.last_seen
    assert health.checks == ()
    assert soda_case.sandbox.count(operation="get_runner") == 2


# -- wire mapping ------------------------------------------------------------


def test_list_page_sample_maps() -> None:
    """Every runner of the sample list page maps, with kind, status and description."""
    page = _sample("soda_list_page.json")
    runners = [runner_from_wire(item, "acme-eu") for item in page["content"]]
    hosted, offline, bare = runners
    assert hosted.kind is RunnerKind.MANAGED
    assert hosted.status is RunnerStatus.ONLINE
    assert hosted.description == "Soda-hosted runner"
    assert hosted.versions == {"agent": "1.4.2", "library": "4.1.0", "runner": "1.4.2"}
    assert offline.kind is RunnerKind.SELF_HOSTED
    assert offline.status is RunnerStatus.OFFLINE
    assert offline.versions == {"agent": "1.3.9", "library": "3.5.7"}
    assert offline.last_seen == datetime(2025, 5, 30, 6, 15, tzinfo=UTC)
    assert bare.status is RunnerStatus.UNKNOWN
    assert bare.last_seen is None
    assert bare.versions == {}
    assert all(r.provider == "soda" and r.account == "acme-eu" for r in runners)


def test_get_sample_maps() -> None:
    """The sample get response's runner maps field by field, keeping the payload in raw."""
    data = _sample("soda_get_runner.json")["runner"]
    runner = runner_from_wire(data, "acme-eu")
    assert runner.id == "7e1c2f44-8b0a-4d7e-b1c3-52a9f0e6d4a2"
    assert runner.name == "runner-eu-0001"
    assert runner.description == "Kubernetes (EKS)"
    assert runner.last_seen == datetime(2025, 6, 1, 11, 59, 30, 412000, tzinfo=UTC)
    assert runner.raw == data


@pytest.mark.parametrize(
    ("wire", "kind"),
    [
        ("SELF_HOSTED", RunnerKind.SELF_HOSTED),
        ("SODA_HOSTED", RunnerKind.MANAGED),
        ("VIRTUAL", RunnerKind.UNKNOWN),
        ("self_hosted", RunnerKind.UNKNOWN),
        (None, RunnerKind.UNKNOWN),
        (7, RunnerKind.UNKNOWN),
    ],
)
def test_type_mapping(wire: object, kind: RunnerKind) -> None:
    """type maps SELF_HOSTED and SODA_HOSTED; anything else is UNKNOWN, kept in raw."""
    runner = runner_from_wire({"id": "r", "type": wire}, "a")
    assert runner.kind is kind
    assert runner.raw["type"] == wire


@pytest.mark.parametrize(
    ("payload", "status"),
    [
        ({"isOnline": True}, RunnerStatus.ONLINE),
        ({"isOnline": False}, RunnerStatus.OFFLINE),
        ({}, RunnerStatus.UNKNOWN),
        ({"isOnline": None}, RunnerStatus.UNKNOWN),
        ({"isOnline": "true"}, RunnerStatus.UNKNOWN),
    ],
)
def test_is_online_mapping(payload: dict[str, Any], status: RunnerStatus) -> None:
    """isOnline true/false give ONLINE/OFFLINE; missing or not a boolean gives UNKNOWN."""
    assert runner_from_wire({"id": "r", **payload}, "a").status is status


@pytest.mark.parametrize(
    "payload",
    [
        {"type": ["SELF_HOSTED"]},
        {"type": {"name": "SELF_HOSTED"}},
        {"isOnline": [True]},
        {"isOnline": 1},
        {"isOnline": 0},
    ],
)
def test_odd_type_and_is_online_values_are_unknown(payload: dict[str, Any]) -> None:
    """Non-string type and non-boolean isOnline values map to UNKNOWN, never crash."""
    runner = runner_from_wire({"id": "r", **payload}, "a")
    assert runner.kind is RunnerKind.UNKNOWN
    assert runner.status is RunnerStatus.UNKNOWN


@pytest.mark.parametrize(
    ("label", "description"),
    [("Kubernetes (EKS)", "Kubernetes (EKS)"), ("", None), (None, None), (3, None)],
)
def test_label_is_description(label: object, description: str | None) -> None:
    """label becomes description; empty or non-string labels give None."""
    assert runner_from_wire({"id": "r", "label": label}, "a").description == description


@pytest.mark.parametrize(
    ("versions", "expected"),
    [
        ({"agent": "1.4.2", "library": "4.1.0", "runner": "1.4.2"},
         {"agent": "1.4.2", "library": "4.1.0", "runner": "1.4.2"}),
        ({"agent": "1.3.9"}, {"agent": "1.3.9"}),
        ({"agent": "1.4.2", "library": 4, "runner": "", "extra": None}, {"agent": "1.4.2"}),
        ("1.4.2", {}),
        (None, {}),
    ],
)
def test_versions_keep_strings(versions: object, expected: dict[str, str]) -> None:
    """versions keeps the non-empty string entries only."""
    assert dict(runner_from_wire({"id": "r", "versions": versions}, "a").versions) == expected


@pytest.mark.parametrize(
    ("stamp", "expected"),
    [
        ("2025-06-01T12:00:03.000Z", datetime(2025, 6, 1, 12, 0, 3, tzinfo=UTC)),
        (
            "2025-06-01T14:00:03+02:00",
            datetime(2025, 6, 1, 14, 0, 3, tzinfo=timezone(timedelta(hours=2))),
        ),
        ("2025-06-01T12:00:03", datetime(2025, 6, 1, 12, 0, 3, tzinfo=UTC)),
        ("yesterday", None),
        ("", None),
        (1717243203, None),
        (None, None),
    ],
)
def test_last_seen_timestamp(stamp: object, expected: datetime | None) -> None:
    """Z, offset and naive timestamps give aware datetimes; garbage and absence give None."""
    last_seen = runner_from_wire({"id": "r", "lastSeenTimestamp": stamp}, "a").last_seen
    assert last_seen == expected
    if last_seen is not None:
        assert last_seen.tzinfo is not None


def test_last_seen_missing() -> None:
    """A runner never seen (no lastSeenTimestamp key) has last_seen None."""
    assert runner_from_wire({"id": "r"}, "a").last_seen is None


def test_name_falls_back_to_id() -> None:
    """A runner without a name is named by its id."""
    assert runner_from_wire({"id": "r-9"}, "a").name == "r-9"
    assert runner_from_wire({"id": "r-9", "name": ""}, "a").name == "r-9"


@pytest.mark.parametrize(
    "data",
    [None, [], "runner", 5, {}, {"id": None}, {"id": ""}, {"id": 42}, {"name": "no-id"}],
)
def test_malformed_runner_is_response_format_error(data: object) -> None:
    """A non-object, or an object without a string id, raises ResponseFormatError."""
    with pytest.raises(errors.ResponseFormatError):
        runner_from_wire(data, "a")


def test_health_from_runner() -> None:
    """health_from_runner mirrors status and last_seen and keeps the payload."""
    data = _sample("soda_get_runner.json")["runner"]
    runner = runner_from_wire(data, "acme-eu")
    health = health_from_runner(runner)
    assert health.status is RunnerStatus.ONLINE
    assert health.checked_at == runner.last_seen
    assert health.checks == ()
    assert health.raw == data
    offline = runner_from_wire({"id": "r", "isOnline": False}, "a")
    assert health_from_runner(offline).status is RunnerStatus.OFFLINE
    assert health_from_runner(offline).checked_at is None


def test_create_sample_has_the_documented_keys() -> None:
    """The create sample is the documented {apiKeyId, apiKeySecret} shape."""
    assert set(_sample("soda_create_runner.json")) == {"apiKeyId", "apiKeySecret"}


async def test_verify_returns_the_organisation(soda_case: VendorCase) -> None:
    """verify() calls test-login and returns the organisation name."""
    async with soda_case.provider() as provider:
        assert isinstance(provider, SodaProvider)
        assert await provider.verify() == "acme-eu"
    assert [r.path for r in soda_case.sandbox.requests] == ["/api/v1/test-login"]


async def test_consistent_listing_retries_until_stable(soda_case: VendorCase) -> None:
    """consistent=True reads again when the count changed mid-listing, then yields it all once."""
    org = soda_case.sandbox.service("soda").orgs["acme-eu"]
    soda_case.sandbox.faults.add(Fault(FaultKind.LATENCY, delay=0.02, path="/api/v1/runners"))

    async def add_one_soon() -> None:
        await asyncio.sleep(0.03)  # during the first read of 3 pages
        org.add_runner()

    async with soda_case.provider() as provider:
        assert isinstance(provider, SodaProvider)
        adder = asyncio.create_task(add_one_soon())
        ids = [r.id async for r in provider.list_runners(page_size=10, consistent=True)]
        await adder
    assert sorted(ids) == sorted(org.runners)
    assert len(ids) == 26
    # 3 pages + check, then 3 pages + check again.
    assert soda_case.sandbox.count(operation="list_runners") == 8


async def test_consistent_listing_gives_up_on_a_churning_fleet(soda_case: VendorCase) -> None:
    """A fleet that changes between every page and the check raises InconsistentListingError."""
    org = soda_case.sandbox.service("soda").orgs["acme-eu"]
    soda_case.sandbox.faults.add(Fault(FaultKind.LATENCY, delay=0.0, path="/api/v1/runners"))

    async def churn() -> None:
        while True:
            org.add_runner()
            await asyncio.sleep(0.001)

    task = asyncio.create_task(churn())
    try:
        async with soda_case.provider() as provider:
            assert isinstance(provider, SodaProvider)
            with pytest.raises(errors.InconsistentListingError):
                _ = [r async for r in provider.list_runners(page_size=10, consistent=True)]
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
