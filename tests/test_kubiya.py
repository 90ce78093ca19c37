"""Kubiya-only behaviour: the nine routes, error styles, auth, config and the wire mapping."""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import aiohttp
import attrs
import pytest

from runnerhub import HealthCheck, KubiyaProvider, RunnerKind, RunnerStatus, errors
from runnerhub.sandbox import Fault, FaultKind, KubiyaOrg, Sandbox
from runnerhub.vendors.kubiya import (
    DEFAULT_BASE_URL,
    health_from_wire,
    overall_status,
    runner_from_wire,
)

from .conftest import KUBIYA_LIMITS, TIME_SCALE

SAMPLES = Path(__file__).parent / "samples"
FAST: dict[str, Any] = {"timeout": 2.0, "rate_limits": KUBIYA_LIMITS}


def _sample(name: str) -> Any:
    return json.loads((SAMPLES / name).read_text())


@attrs.define
class Served:
    """A served sandbox with one Kubiya org, and a way to build providers for it."""

    sandbox: Sandbox
    org: KubiyaOrg
    base_url: str

    def provider(self, **options: Any) -> KubiyaProvider:
        return KubiyaProvider(self.org.api_key, base_url=self.base_url, **{**FAST, **options})


# The sandbox's opt-in rules beyond Kubiya's docs, for tests that need a 400 from create or ops.
STRICT: dict[str, Any] = {"vendor_options": {"kubiya": {"strict": True}}}


@asynccontextmanager
async def _serve(runners: int = 6, **sandbox_options: Any) -> AsyncIterator[Served]:
    sandbox = Sandbox(seed=11, time_scale=TIME_SCALE, **sandbox_options)
    org = sandbox.add_org("kubiya", "kubiya-dev", runners=runners)
    async with sandbox.serve() as base_url:
        yield Served(sandbox, org, base_url)


# -- the nine routes ---------------------------------------------------------


async def test_list_maps_every_runner() -> None:
    """The list route yields every runner by name, with kinds from runner_type."""
    async with _serve() as served, served.provider() as provider:
        runners = {r.id: r async for r in provider.list_runners()}
    assert list(runners) == list(served.org.runners)
    assert runners["kubiya-hosted"].kind is RunnerKind.MANAGED
    legacy = list(runners.values())[1]
    assert served.org.runners[legacy.id]["runner_type"] == "kubiya_operator"
    assert legacy.kind is RunnerKind.SELF_HOSTED
    assert legacy.versions["generation"] == "v1"
    assert all(r.id == r.name for r in runners.values())
    assert served.sandbox.count(operation="list_runners") == 1


async def test_describe_matches_the_wire() -> None:
    """get_runner uses /describe and maps the org's runner object."""
    async with _serve() as served, served.provider() as provider:
        served.org.add_runner("edge-1", description="Edge cluster")
        runner = await provider.get_runner("edge-1")
    assert runner.id == "edge-1"
    assert runner.description == "Edge cluster"
    assert runner.kind is RunnerKind.SELF_HOSTED
    assert runner.versions == {"generation": "v2"}
    assert runner.raw == served.org.runners["edge-1"]
    assert served.sandbox.requests[-1].path == "/api/v3/runners/edge-1/describe"


@pytest.mark.parametrize(
    ("state", "status"),
    [
        ("ok", RunnerStatus.ONLINE),
        ("degraded", RunnerStatus.DEGRADED),
        ("non-responsive", RunnerStatus.OFFLINE),
    ],
)
async def test_health_states(state: Any, status: RunnerStatus) -> None:
    """Each reported health state maps to its status, with the component checks."""
    async with _serve() as served, served.provider() as provider:
        served.org.add_runner("edge-1", health=state)
        health = await provider.runner_health("edge-1")
    assert health.status is status
    assert [c.name for c in health.checks] == ["tool-manager", "agent-manager", "workflow-engine"]
    assert health.checked_at is not None
    assert health.checked_at.tzinfo is not None
    if state == "degraded":
        agent = health.checks[1]
        assert agent.status is RunnerStatus.DEGRADED
        assert agent.error is not None


async def test_missing_health_is_an_error_sent_once() -> None:
    """A runner that does not report gives ServerError after exactly one request."""
    async with _serve() as served, served.provider() as provider:
        served.org.add_runner("edge-1", health="missing")
        with pytest.raises(errors.ServerError) as info:
            await provider.runner_health("edge-1")
    assert info.value.status == 503
    assert "not reporting" in info.value.message
    assert served.sandbox.count(operation="runner_health") == 1


async def test_health_of_wrong_shape_is_response_format_error() -> None:
    """A health body of the wrong shape raises ResponseFormatError for runner_health."""
    async with _serve() as served, served.provider() as provider:
        served.sandbox.faults.add(Fault(FaultKind.WRONG_SHAPE, path="/api/v3/runners/edge-1/"))
        served.org.add_runner("edge-1")
        with pytest.raises(errors.ResponseFormatError) as info:
            await provider.runner_health("edge-1")
    assert info.value.operation == "runner_health"
    assert info.value.provider == "kubiya"


async def test_create_returns_the_manifest_url() -> None:
    """create_runner returns the manifest URL; creating again returns the same URL."""
    async with _serve() as served, served.provider() as provider:
        first = await provider.create_runner("edge-new")
        second = await provider.create_runner("edge-new")
        listed = [r.id async for r in provider.list_runners()]
    assert first.manifest_url is not None
    pattern = re.escape(served.base_url) + r"/api/v3/runners/helm/[0-9a-f]{40}\.yaml"
    assert re.fullmatch(pattern, first.manifest_url)
    assert second.manifest_url == first.manifest_url
    assert (first.runner_id, first.name) == ("edge-new", "edge-new")
    assert first.credentials is None
    assert "edge-new" in listed
    assert served.sandbox.count(operation="create_runner") == 2


@pytest.mark.parametrize("name", [None, ""])
async def test_create_needs_a_name(name: str | None) -> None:
    """Kubiya creates runners by name: no name is a UsageError before any request."""
    async with _serve() as served, served.provider() as provider:
        with pytest.raises(errors.UsageError, match="name"):
            await provider.create_runner(name)
    assert served.sandbox.requests == []


async def test_create_bad_name_is_bad_request() -> None:
    """A name the strict sandbox refuses (upper case) is a BadRequestError, not retried."""
    async with _serve(**STRICT) as served, served.provider() as provider:
        with pytest.raises(errors.BadRequestError):
            await provider.create_runner("Edge_New")
    assert served.sandbox.count(operation="create_runner") == 1


async def test_deployment_manifest_by_name_and_by_key() -> None:
    """The manifest is YAML text, by runner name or by the key from the manifest URL."""
    async with _serve() as served, served.provider() as provider:
        created = await provider.create_runner("edge-new")
        assert created.manifest_url is not None
        key = created.manifest_url.rsplit("/", 1)[1]
        by_name = await provider.deployment_manifest("edge-new")
        by_key = await provider.deployment_manifest(key)
    assert isinstance(by_name, str)
    assert by_name == by_key
    assert by_name.startswith("---\n")
    assert "kind: Deployment" in by_name
    assert 'kubiya.ai/runner: "edge-new"' in by_name


async def test_deployment_manifest_unknown_key_is_not_found() -> None:
    """A manifest key Kubiya never minted is a NotFoundError."""
    async with _serve() as served, served.provider() as provider:
        with pytest.raises(errors.NotFoundError):
            await provider.deployment_manifest("0" * 40 + ".yaml")


async def test_helm_values_as_json() -> None:
    """helm_values returns the Helm values object Kubiya's CLI decodes."""
    async with _serve() as served, served.provider() as provider:
        name = list(served.org.runners)[2]
        values = await provider.helm_values(name)
    assert isinstance(values, dict)
    assert values["runner_name"] == name
    assert values["organization"] == "kubiya-dev"
    assert set(values["nats"]) == {"jwt", "secondJwt", "subject"}
    assert set(values) == set(_sample("kubiya_helm_values.json"))


async def test_helm_values_as_chart_archive() -> None:
    """A sandbox sending the documented .tgz gets raw bytes back."""
    tgz = {"kubiya": {"helmchart_format": "tgz"}}
    async with _serve(vendor_options=tgz) as served, served.provider() as provider:
        values = await provider.helm_values(list(served.org.runners)[2])
    assert isinstance(values, bytes)
    assert values[:2] == b"\x1f\x8b"
    assert b"kubiya-runner/Chart.yaml" in gzip.decompress(values)


async def test_update_description_round_trip() -> None:
    """update_description returns Kubiya's answer, and describe shows the new text."""
    async with _serve() as served, served.provider() as provider:
        name = list(served.org.runners)[2]
        answer = await provider.update_description(name, "Runs the nightly jobs")
        runner = await provider.get_runner(name)
    assert isinstance(answer, dict)
    assert answer["description"] == "Runs the nightly jobs"
    assert runner.description == "Runs the nightly jobs"
    assert served.sandbox.count(operation="update_description") == 1


async def test_update_description_must_be_a_string() -> None:
    """A non-string description is refused locally."""
    async with _serve() as served, served.provider() as provider:
        with pytest.raises(errors.UsageError):
            await provider.update_description("edge-1", 5)  # type: ignore[arg-type]
    assert served.sandbox.requests == []


async def test_run_operation_restart() -> None:
    """run_operation sends the operation and parameters and returns Kubiya's JSON."""
    async with _serve() as served, served.provider() as provider:
        name = list(served.org.runners)[2]
        answer = await provider.run_operation(name, "restart", {"component": "tool_manager"})
    assert answer["operation"] == "restart"
    assert answer["status"] == "success"
    assert name in answer["message"]
    assert served.sandbox.count(operation="runner_ops") == 1


async def test_run_operation_unknown_is_bad_request() -> None:
    """An operation the strict sandbox does not know is a BadRequestError, sent once."""
    async with _serve(**STRICT) as served, served.provider() as provider:
        name = list(served.org.runners)[2]
        with pytest.raises(errors.BadRequestError, match="explode"):
            await provider.run_operation(name, "explode")
    assert served.sandbox.count(operation="runner_ops") == 1


async def test_run_operation_needs_an_operation() -> None:
    """An empty operation is a UsageError before any request."""
    async with _serve() as served, served.provider() as provider:
        with pytest.raises(errors.UsageError):
            await provider.run_operation("edge-1", "")
    assert served.sandbox.requests == []


async def test_delete_then_not_found() -> None:
    """delete_runner accepts Kubiya's empty 200; the runner is then gone."""
    async with _serve() as served, served.provider() as provider:
        name = list(served.org.runners)[-1]
        assert await provider.delete_runner(name) is None  # type: ignore[func-returns-value]
        with pytest.raises(errors.NotFoundError):
            await provider.get_runner(name)
        with pytest.raises(errors.NotFoundError):
            await provider.delete_runner(name)
    assert name not in served.org.runners


# -- error styles, auth, configuration ---------------------------------------


@pytest.mark.parametrize(
    ("style", "code", "message"),
    [
        ("code_error", "404", "runner not found"),
        ("nested", "not_found", "runner not found"),
        ("message", None, "runner not found"),
        ("detail", None, "runner not found"),
        ("html", None, "Not Found (non-JSON error body)"),
    ],
)
async def test_error_styles(style: Any, code: str | None, message: str) -> None:
    """Every Kubiya error body style gives a NotFoundError with a readable message."""
    styled = {"kubiya": {"error_style": style}}
    async with _serve(vendor_options=styled) as served, served.provider() as provider:
        with pytest.raises(errors.NotFoundError) as info:
            await provider.get_runner("no-such-runner")
    assert info.value.status == 404
    assert info.value.code == code
    assert info.value.message == message
    assert "<" not in str(info.value)
    assert served.sandbox.count(status=404) == 1


async def test_authorization_is_userkey() -> None:
    """Requests carry ``Authorization: UserKey <key>`` and are accepted."""
    seen: list[str] = []

    async def on_start(
        session: aiohttp.ClientSession,
        context: SimpleNamespace,
        params: aiohttp.TraceRequestStartParams,
    ) -> None:
        seen.append(params.headers.get("Authorization", ""))

    trace = aiohttp.TraceConfig()
    trace.on_request_start.append(on_start)
    async with (
        _serve() as served,
        aiohttp.ClientSession(trace_configs=[trace]) as session,
        served.provider(session=session) as provider,
    ):
        runner = await provider.get_runner("kubiya-hosted")
    assert runner.id == "kubiya-hosted"
    assert seen == [f"UserKey {served.org.api_key}"]


async def test_wrong_key_is_authentication_error() -> None:
    """A key Kubiya does not know gives AuthenticationError."""
    async with (
        _serve() as served,
        KubiyaProvider("not-a-key", base_url=served.base_url, **FAST) as provider,
    ):
        with pytest.raises(errors.AuthenticationError):
            await provider.get_runner("kubiya-hosted")


@pytest.mark.parametrize("suffix", ["", "/", "/api/v1", "/api/v1/"])
async def test_from_env(suffix: str) -> None:
    """from_env reads KUBIYA_API_KEY and KUBIYA_BASE_URL, trimming a trailing /api/v1."""
    async with _serve() as served:
        env = {"KUBIYA_API_KEY": served.org.api_key, "KUBIYA_BASE_URL": served.base_url + suffix}
        async with KubiyaProvider.from_env(env, **FAST) as provider:
            runner = await provider.get_runner("kubiya-hosted")
    assert provider.base_url == served.base_url
    assert provider.account == "kubiya"
    assert runner.account == "kubiya"


def test_from_env_defaults_and_options() -> None:
    """Without KUBIYA_BASE_URL the production host is used; options override the env."""
    provider = KubiyaProvider.from_env({"KUBIYA_API_KEY": "k"})
    assert provider.base_url == DEFAULT_BASE_URL == "https://api.kubiya.ai"
    env = {"KUBIYA_API_KEY": "k", "KUBIYA_BASE_URL": "https://api-staging.dev.kubiya.ai/api/v1"}
    assert KubiyaProvider.from_env(env).base_url == "https://api-staging.dev.kubiya.ai"
    chosen = KubiyaProvider.from_env(env, base_url="https://chosen.example", account="prod")
    assert (chosen.base_url, chosen.account) == ("https://chosen.example", "prod")


def test_from_env_reads_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without a mapping, from_env reads the process environment."""
    monkeypatch.setenv("KUBIYA_API_KEY", "k")
    monkeypatch.setenv("KUBIYA_BASE_URL", "https://api.kubiya.ai/api/v1")
    assert KubiyaProvider.from_env().base_url == "https://api.kubiya.ai"


@pytest.mark.parametrize("env", [{}, {"KUBIYA_API_KEY": ""}, {"KUBIYA_BASE_URL": "https://x"}])
def test_from_env_without_key(env: dict[str, str]) -> None:
    """from_env without KUBIYA_API_KEY is a UsageError."""
    with pytest.raises(errors.UsageError, match="KUBIYA_API_KEY"):
        KubiyaProvider.from_env(env)


@pytest.mark.parametrize("key", ["", "   ", "key\r\nX-Evil: 1", "key\n"])
def test_bad_keys_refused(key: str) -> None:
    """Empty keys and keys that would break the header line are UsageErrors."""
    with pytest.raises(errors.UsageError) as info:
        KubiyaProvider(key)
    assert "X-Evil" not in str(info.value)


# -- wire mapping ------------------------------------------------------------


def test_docs_rest_list_sample_maps() -> None:
    """The DOCS-REST list example maps: id = name, v1, self-hosted, status unknown."""
    (item,) = _sample("kubiya_list.json")
    runner = runner_from_wire(item, "kubiya")
    assert (runner.provider, runner.account) == ("kubiya", "kubiya")
    assert runner.id == runner.name == "runner-prod"
    assert runner.kind is RunnerKind.SELF_HOSTED
    assert runner.status is RunnerStatus.UNKNOWN  # empty runner_health
    assert runner.versions == {"generation": "v1"}
    assert runner.description is None
    assert runner.last_seen is None
    assert runner.raw == item


@pytest.mark.parametrize(
    ("version", "expected"),
    [(0, "v1"), (2, "v2"), (7, "7"), ("v2", "v2"), ("", None), (None, None), (True, None)],
)
def test_generation_mapping(version: object, expected: str | None) -> None:
    """version 0 → v1, 2 → v2, other integers as text; strings kept; others dropped."""
    versions = runner_from_wire({"name": "r", "version": version}, "k").versions
    assert versions.get("generation") == expected


@pytest.mark.parametrize(
    ("runner_type", "kind"),
    [
        ("managed_cloud", RunnerKind.MANAGED),
        ("kubiya_operator", RunnerKind.SELF_HOSTED),
        ("kubiya_operator_v2", RunnerKind.SELF_HOSTED),
        ("kubiya_operator_v3", RunnerKind.SELF_HOSTED),
        ("quantum_operator", RunnerKind.UNKNOWN),
        ("kubiya_operator_vx", RunnerKind.UNKNOWN),
        ("local", RunnerKind.UNKNOWN),
        ("", RunnerKind.UNKNOWN),
        (None, RunnerKind.UNKNOWN),
        (["managed_cloud"], RunnerKind.UNKNOWN),
    ],
)
def test_runner_type_mapping(runner_type: object, kind: RunnerKind) -> None:
    """runner_type maps managed_cloud and operator types; anything else is UNKNOWN."""
    assert runner_from_wire({"name": "r", "runner_type": runner_type}, "k").kind is kind


@pytest.mark.parametrize(
    ("summary", "status"),
    [
        ({"status": "ok", "health": "true"}, RunnerStatus.ONLINE),
        ({"status": "", "health": "true"}, RunnerStatus.ONLINE),
        ({"status": "degraded", "health": "true"}, RunnerStatus.DEGRADED),
        ({"status": "non-responsive", "health": "false"}, RunnerStatus.OFFLINE),
        ({"status": "ok", "health": "false"}, RunnerStatus.OFFLINE),
        ({"status": "unknown", "health": "false"}, RunnerStatus.OFFLINE),
        ({"status": "rebooting", "health": "true"}, RunnerStatus.UNKNOWN),
        ({"status": "", "health": ""}, RunnerStatus.UNKNOWN),
        ({}, RunnerStatus.UNKNOWN),
    ],
)
def test_filled_runner_health_maps(summary: dict[str, str], status: RunnerStatus) -> None:
    """A filled runner_health summary gives the status; an empty one stays UNKNOWN."""
    payload = {"name": "r", "runner_health": {"error": "", "version": "", **summary}}
    assert runner_from_wire(payload, "k").status is status


def test_component_versions() -> None:
    """Non-empty component versions are kept under runner, tool_manager and agent_manager."""
    payload = {
        "name": "r",
        "version": 2,
        "runner_health": {"status": "ok", "health": "true", "version": "0.18.3"},
        "tool_manager_health": {"status": "ok", "health": "true", "version": "0.18.2"},
        "agent_manager_health": {"status": "", "health": "", "version": ""},
    }
    runner = runner_from_wire(payload, "k")
    assert runner.versions == {"generation": "v2", "runner": "0.18.3", "tool_manager": "0.18.2"}
    assert runner.status is RunnerStatus.ONLINE


def test_odd_health_fields_are_tolerated() -> None:
    """Health summaries that are not objects are ignored, not a crash."""
    payload = {"name": "r", "runner_health": "ok", "tool_manager_health": None}
    assert runner_from_wire(payload, "k").status is RunnerStatus.UNKNOWN


@pytest.mark.parametrize(
    "data", [None, [], "runner", {}, {"name": ""}, {"name": 5}, {"id": "only-an-id"}]
)
def test_malformed_runner_is_response_format_error(data: object) -> None:
    """A non-object or an object without a string name raises ResponseFormatError."""
    with pytest.raises(errors.ResponseFormatError):
        runner_from_wire(data, "k")


def test_health_sample_maps() -> None:
    """The documented health body maps to ONLINE with three checks and its time."""
    data = _sample("kubiya_health.json")
    health = health_from_wire(data)
    assert health.status is RunnerStatus.ONLINE
    assert health.checked_at == datetime(2025, 1, 1, tzinfo=UTC)
    assert health.checks == (
        HealthCheck("tool-manager", RunnerStatus.ONLINE, version="0.18.3"),
        HealthCheck("agent-manager", RunnerStatus.ONLINE, version="0.18.3"),
        HealthCheck("workflow-engine", RunnerStatus.ONLINE),
    )
    assert health.raw == data


def test_degraded_check_sample_maps() -> None:
    """The control plane's mock (ok with a degraded check) maps to DEGRADED."""
    health = health_from_wire(_sample("kubiya_health_degraded.json"))
    assert health.status is RunnerStatus.DEGRADED
    assert health.checks[2] == HealthCheck("agent-manager", RunnerStatus.DEGRADED)
    assert health.checked_at is None


def test_unnamed_and_failing_checks() -> None:
    """A check without a name is "unnamed"; a failing check keeps its error text."""
    body = {"health": "true", "status": "ok", "checks": [{"status": "error", "error": "refused"}]}
    health = health_from_wire(body)
    assert health.checks == (HealthCheck("unnamed", RunnerStatus.OFFLINE, error="refused"),)
    assert health.status is RunnerStatus.DEGRADED


@pytest.mark.parametrize(
    ("health", "status", "checks", "expected"),
    [
        ("false", "ok", (), RunnerStatus.OFFLINE),
        (False, "ok", (), RunnerStatus.OFFLINE),
        (" FALSE ", "healthy", (), RunnerStatus.OFFLINE),
        ("true", "ok", (), RunnerStatus.ONLINE),
        (True, "", (), RunnerStatus.ONLINE),
        ("true", " OK ", (), RunnerStatus.ONLINE),
        (None, "healthy", (), RunnerStatus.ONLINE),
        ("true", "ready", (), RunnerStatus.ONLINE),
        ("true", "warning", (), RunnerStatus.DEGRADED),
        ("true", "ok", (RunnerStatus.DEGRADED,), RunnerStatus.DEGRADED),
        ("true", "ok", (RunnerStatus.OFFLINE,), RunnerStatus.DEGRADED),
        ("true", "ok", (RunnerStatus.UNKNOWN,), RunnerStatus.ONLINE),
        (None, "non-responsive", (), RunnerStatus.OFFLINE),
        ("true", "rebooting", (), RunnerStatus.UNKNOWN),
        ("maybe", "", (), RunnerStatus.UNKNOWN),
        (None, None, (), RunnerStatus.UNKNOWN),
        (1, 2, (), RunnerStatus.UNKNOWN),
    ],
)
def test_overall_status(
    health: object, status: object, checks: tuple[RunnerStatus, ...], expected: RunnerStatus
) -> None:
    """health "false" is down; ok with a bad check is degraded; unknown words are UNKNOWN."""
    made = tuple(HealthCheck(f"c{i}", s) for i, s in enumerate(checks))
    assert overall_status(health, status, made) is expected


@pytest.mark.parametrize(
    "body",
    [
        None,
        [],
        "ok",
        42,
        {"status": 5},
        {"time": 1735689600},
        {"version": 3},
        {"checks": 5},
        {"checks": [1]},
        {"checks": ["ok"]},
        {"checks": [{"name": 5}]},
        {"checks": [{"name": "x", "status": True}]},
        {"checks": {"name": "x"}},
    ],
)
def test_malformed_health_is_response_format_error(body: object) -> None:
    """Health bodies that are not the documented shape raise ResponseFormatError."""
    with pytest.raises(errors.ResponseFormatError):
        health_from_wire(body)


def test_string_checks_are_refused() -> None:
    """A string where the checks array belongs is a ResponseFormatError."""
    with pytest.raises(errors.ResponseFormatError):
        health_from_wire({"health": "true", "status": "ok", "checks": ""})


def test_samples_of_create_and_errors_have_documented_shapes() -> None:
    """The create sample is ``{url}``; the error samples are the four JSON styles."""
    assert set(_sample("kubiya_create.json")) == {"url"}
    assert _sample("kubiya_error_code_error.json")["code"] == 404
    assert _sample("kubiya_error_nested.json")["error"]["code"] == "not_found"


# -- secrets -----------------------------------------------------------------


async def test_secrets_never_leak(debug_log: pytest.LogCaptureFixture) -> None:
    """The key, gateway passwords and helm JWTs never reach reprs, errors or DEBUG logs."""
    texts: list[str] = []
    async with _serve(runners=12, **STRICT) as served:
        org = served.org
        org.add_runner("edge-gw", gateway_password="gw-pass-planted-0123456789abcdef")
        secrets = [org.api_key]
        secrets += [r["gateway_password"] for r in org.runners.values() if r["gateway_password"]]
        served.sandbox.faults.add(Fault(FaultKind.STATUS, status=503, method="GET", times=1))
        async with served.provider() as provider:
            texts.append(repr(provider))
            runners = [r async for r in provider.list_runners()]
            texts += [repr(r) for r in runners] + [str(r) for r in runners]
            runner = await provider.get_runner("edge-gw")
            texts.append(repr(runner))
            values = await provider.helm_values("edge-gw")
            assert isinstance(values, dict)  # returned to the caller who asked: allowed
            secrets += [values["nats"]["jwt"], values["nats"]["secondJwt"]]
            health = await provider.runner_health("edge-gw")
            texts.append(repr(health))
            created = await provider.create_runner("edge-new")
            texts += [repr(created), str(created)]
            for call in (
                provider.get_runner("missing"),
                provider.helm_values("missing"),
                provider.runner_health("edge-new"),  # not reporting: 503
                provider.run_operation("edge-gw", "explode"),
            ):
                with pytest.raises(errors.APIError) as info:
                    await call
                texts += [str(info.value), repr(info.value)]
        async with KubiyaProvider("wrong-" + org.api_key[:8], base_url=served.base_url) as bad:
            with pytest.raises(errors.AuthenticationError) as auth:
                await bad.get_runner("edge-gw")
            texts += [str(auth.value), repr(bad)]
    texts += [record.getMessage() for record in debug_log.records]
    assert any("retrying" in record.getMessage() for record in debug_log.records)
    blob = "\n".join(texts)
    assert len(secrets) >= 4
    for secret in secrets:
        assert secret not in blob


async def test_manifest_key_never_logged(debug_log: pytest.LogCaptureFixture) -> None:
    """The manifest URL's key (a credential, hidden from repr) is not written to DEBUG logs."""
    async with _serve() as served, served.provider() as provider:
        created = await provider.create_runner("edge-new")
        assert created.manifest_url is not None
        key = created.manifest_url.rsplit("/", 1)[1].removesuffix(".yaml")
        await provider.deployment_manifest(key + ".yaml")
    assert debug_log.records
    assert not any(key in record.getMessage() for record in debug_log.records)
