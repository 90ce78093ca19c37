"""What every RunnerProvider must do, run against each vendor's sandbox (see conftest.case)."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import pytest

from runnerhub import (
    Capability,
    CreatedRunner,
    Runner,
    RunnerHealth,
    RunnerKind,
    RunnerStatus,
    errors,
)
from runnerhub.provider import (
    RunnerProvider,
    SupportsDescription,
    SupportsHealth,
    SupportsLabels,
    SupportsManifests,
    SupportsOperations,
    SupportsRegistrationTokens,
)
from runnerhub.sandbox import Fault, FaultKind

from .conftest import VendorCase


async def test_satisfies_protocol(case: VendorCase) -> None:
    """Each provider is a RunnerProvider at runtime, with a non-empty capability set."""
    async with case.provider() as provider:
        assert isinstance(provider, RunnerProvider)
        assert Capability.LIST in provider.capabilities
        assert provider.provider == case.vendor


async def test_lists_every_runner_once(case: VendorCase) -> None:
    """list_runners yields each runner of the org exactly once, as Runner values."""
    async with case.provider() as provider:
        runners = [r async for r in provider.list_runners()]
    assert sorted(r.id for r in runners) == sorted(case.runner_ids)
    assert all(isinstance(r, Runner) and r.provider == case.vendor for r in runners)
    assert {r.account for r in runners} == {provider.account}


async def test_get_matches_list(case: VendorCase) -> None:
    """get_runner returns the same runner the listing returned."""
    async with case.provider() as provider:
        listed = {r.id: r async for r in provider.list_runners()}
        runner_id = case.runner_ids[3]
        got = await provider.get_runner(runner_id)
    assert got == listed[runner_id]
    assert got.raw  # the vendor payload is kept


async def test_not_found(case: VendorCase) -> None:
    """An unknown id raises NotFoundError with status, provider and operation."""
    async with case.provider() as provider:
        with pytest.raises(errors.NotFoundError) as info:
            await provider.get_runner("no-such-runner")
    assert info.value.status == 404
    assert info.value.provider == case.vendor
    assert info.value.operation == "get_runner"
    assert case.sandbox.count(status=404) == 1  # 404 is never retried


async def test_escaping_keeps_one_segment(case: VendorCase) -> None:
    """An id like ``../x?y`` stays one path segment and cannot reach another route."""
    async with case.provider() as provider:
        for hostile in ("../x?y", "a/../../description/b", "..", "%2e%2e", "a#b"):
            with pytest.raises(errors.NotFoundError):
                await provider.get_runner(hostile)
    # Every request reached the vendor's get route, whatever it calls that route.
    assert len({r.operation for r in case.sandbox.requests}) == 1
    assert len(case.sandbox.requests) == 5


async def test_empty_id_is_refused_locally(case: VendorCase) -> None:
    """An empty id is a UsageError before any request (it would address the list route)."""
    async with case.provider() as provider:
        with pytest.raises(errors.UsageError):
            await provider.get_runner("")
    assert case.sandbox.requests == []


async def test_create_returns_what_the_vendor_returns_once(case: VendorCase) -> None:
    """create_runner returns credentials (Soda), a manifest URL (Kubiya) or a JIT config."""
    async with case.provider() as provider:
        created = await provider.create_runner(case.create_name)
    assert isinstance(created, CreatedRunner)
    assert (
        created.credentials is not None
        or created.manifest_url is not None
        or created.jit_config is not None
    )
    if created.credentials is not None:
        secret = created.credentials.api_key_secret.get_secret_value()
        assert secret
        assert secret not in repr(created)
    if created.manifest_url is not None:
        assert created.manifest_url not in repr(created)
    if created.jit_config is not None:
        assert created.jit_config.get_secret_value() not in repr(created)


async def test_delete_then_gone(case: VendorCase) -> None:
    """A deleted runner is gone: get_runner raises NotFoundError afterwards."""
    async with case.provider() as provider:
        await provider.delete_runner(case.deletable_id)
        with pytest.raises(errors.NotFoundError):
            await provider.get_runner(case.deletable_id)


async def test_health(case: VendorCase) -> None:
    """runner_health, where offered, returns a RunnerHealth for a runner that reports."""
    async with case.provider() as provider:
        if not isinstance(provider, SupportsHealth):
            pytest.skip(f"{case.vendor} reports no health")
        runners = [r async for r in provider.list_runners()]
        healths = await asyncio.gather(
            *(provider.runner_health(r.id) for r in runners), return_exceptions=True
        )
    assert any(isinstance(h, RunnerHealth) for h in healths)
    assert all(isinstance(h, (RunnerHealth, errors.APIError)) for h in healths)


async def test_authentication_failure(case: VendorCase) -> None:
    """Wrong credentials raise AuthenticationError, without retrying."""
    async with case.build_bad_auth() as provider:
        with pytest.raises(errors.AuthenticationError) as info:
            await provider.get_runner(case.runner_ids[0])
    assert info.value.status == 401
    assert case.sandbox.count(status=401) == 1


# Each capability protocol and the capabilities that announce it.
PROTOCOLS: dict[type, frozenset[Capability]] = {
    SupportsHealth: frozenset({Capability.HEALTH}),
    SupportsDescription: frozenset({Capability.UPDATE_DESCRIPTION}),
    SupportsManifests: frozenset({Capability.DEPLOYMENT_MANIFEST, Capability.HELM_VALUES}),
    SupportsOperations: frozenset({Capability.RUN_OPERATION}),
    SupportsLabels: frozenset({Capability.LABELS}),
    SupportsRegistrationTokens: frozenset({Capability.REGISTRATION_TOKENS}),
}


async def test_capabilities_match_protocols(case: VendorCase) -> None:
    """A provider implements a capability protocol exactly when it announces the capability."""
    async with case.provider() as provider:
        for protocol, announced in PROTOCOLS.items():
            offered = announced <= provider.capabilities
            assert isinstance(provider, protocol) == offered, protocol.__name__
            assert offered or not announced & provider.capabilities
    assert case.sandbox.requests == []


async def test_retries_server_errors_on_get(case: VendorCase) -> None:
    """Two 503s on a GET are retried; the third attempt succeeds."""
    runner_id = case.runner_ids[0]
    case.sandbox.faults.add(Fault(FaultKind.STATUS, status=503, times=2, method="GET"))
    async with case.provider() as provider:
        runner = await provider.get_runner(runner_id)
    assert runner.id == runner_id
    assert len(case.sandbox.requests) == 3


async def test_gives_up_after_max_retries(case: VendorCase) -> None:
    """A persistent 502 raises ServerError after 1 + max_retries attempts."""
    case.sandbox.faults.add(Fault(FaultKind.STATUS, status=502, method="GET"))
    async with case.provider(max_retries=2) as provider:
        with pytest.raises(errors.ServerError) as info:
            await provider.get_runner(case.runner_ids[0])
    assert info.value.status == 502
    assert len(case.sandbox.requests) == 3


async def test_max_retries_zero_disables_retry(case: VendorCase) -> None:
    """max_retries=0 sends exactly one request."""
    case.sandbox.faults.add(Fault(FaultKind.STATUS, status=503, method="GET"))
    async with case.provider(max_retries=0) as provider:
        with pytest.raises(errors.ServerError):
            await provider.get_runner(case.runner_ids[0])
    assert len(case.sandbox.requests) == 1


@pytest.mark.parametrize("status", [400, 403])
async def test_client_errors_are_not_retried(case: VendorCase, status: int) -> None:
    """400 and 403 raise their typed error after a single request."""
    case.sandbox.faults.add(Fault(FaultKind.STATUS, status=status, method="GET"))
    expected = {400: errors.BadRequestError, 403: errors.PermissionDeniedError}[status]
    async with case.provider() as provider:
        with pytest.raises(expected):
            await provider.get_runner(case.runner_ids[0])
    assert len(case.sandbox.requests) == 1


def _posts(case: VendorCase) -> int:
    # Every vendor creates with a POST; the sandboxes name the operation as their vendor does.
    return sum(1 for r in case.sandbox.requests if r.method == "POST")


async def test_create_not_retried_after_server_error(case: VendorCase) -> None:
    """POST create is never retried after a 5xx: the vendor may have acted."""
    case.sandbox.faults.add(Fault(FaultKind.STATUS, status=500, method="POST"))
    async with case.provider() as provider:
        with pytest.raises(errors.ServerError):
            await provider.create_runner(case.create_name)
    assert _posts(case) == 1


async def test_create_not_retried_after_reset(case: VendorCase) -> None:
    """POST create is not retried after a dropped connection: it may have reached the vendor."""
    case.sandbox.faults.add(Fault(FaultKind.RESET, method="POST", times=1))
    async with case.provider() as provider:
        with pytest.raises(errors.TransportError):
            await provider.create_runner(case.create_name)
    assert _posts(case) == 1


async def test_create_retried_after_429(case: VendorCase) -> None:
    """POST create is retried after a 429, since the vendor refused before acting."""
    case.sandbox.faults.add(
        Fault(FaultKind.STATUS, status=429, method="POST", times=1, retry_after="0.05")
    )
    async with case.provider() as provider:
        created = await provider.create_runner(case.create_name)
    assert created is not None
    assert _posts(case) == 2


async def test_retry_after_is_honoured(case: VendorCase) -> None:
    """A 429 with Retry-After: 0.3 delays the retry by at least 0.3 s."""
    case.sandbox.faults.add(
        Fault(FaultKind.STATUS, status=429, method="GET", times=1, retry_after="0.3")
    )
    async with case.provider() as provider:
        started = time.monotonic()
        await provider.get_runner(case.runner_ids[0])
    assert time.monotonic() - started >= 0.3
    assert len(case.sandbox.requests) == 2


async def test_reset_on_get_is_retried(case: VendorCase) -> None:
    """A dropped connection on a GET is retried."""
    case.sandbox.faults.add(Fault(FaultKind.RESET, method="GET", times=1))
    async with case.provider() as provider:
        runner = await provider.get_runner(case.runner_ids[0])
    assert runner.id == case.runner_ids[0]


async def test_stall_times_out_as_transport_error(case: VendorCase) -> None:
    """A server that stalls past the timeout yields TransportError within the bound."""
    case.sandbox.faults.add(Fault(FaultKind.STALL, method="GET", delay=5.0))
    async with case.provider(timeout=0.2, max_retries=1) as provider:
        started = time.monotonic()
        with pytest.raises(errors.TransportError):
            await provider.get_runner(case.runner_ids[0])
    assert time.monotonic() - started < 2.0


@pytest.mark.parametrize("kind", [FaultKind.MALFORMED, FaultKind.WRONG_SHAPE])
async def test_bad_bodies_raise_response_format_error(case: VendorCase, kind: FaultKind) -> None:
    """A 200 whose body is not JSON, or the wrong shape, raises ResponseFormatError."""
    case.sandbox.faults.add(Fault(kind, method="GET"))
    async with case.provider() as provider:
        with pytest.raises(errors.ResponseFormatError) as info:
            await provider.get_runner(case.runner_ids[0])
        assert info.value.operation == "get_runner"
        with pytest.raises(errors.ResponseFormatError):
            _ = [r async for r in provider.list_runners()]


async def test_html_proxy_error_keeps_status(case: VendorCase) -> None:
    """An HTML 502 from a proxy gives ServerError with a readable message, no HTML."""
    case.sandbox.faults.add(Fault(FaultKind.HTML, method="GET"))
    async with case.provider(max_retries=0) as provider:
        with pytest.raises(errors.ServerError) as info:
            await provider.get_runner(case.runner_ids[0])
    assert info.value.status == 502
    assert "<" not in str(info.value)


async def test_unknown_enum_values_are_kept(case: VendorCase) -> None:
    """Unknown kind, type or status values map to UNKNOWN and stay in raw; nothing crashes."""
    case.sandbox.faults.add(Fault(FaultKind.UNKNOWN_ENUM, method="GET"))
    async with case.provider() as provider:
        runners = [r async for r in provider.list_runners()]
    assert runners
    assert any(r.kind is RunnerKind.UNKNOWN or r.status is RunnerStatus.UNKNOWN for r in runners)


async def test_limits_hold_against_the_vendor_window(case: VendorCase) -> None:
    """Concurrent gets over the limit draw zero 429s and stay within N per window."""
    async with case.provider() as provider:
        ids = case.runner_ids
        await asyncio.gather(*(provider.get_runner(ids[i % len(ids)]) for i in range(45)))
    # 429 is Soda's and Kubiya's refusal; GitHub refuses with 403 (or 429).
    assert case.sandbox.count(status=429) == 0
    assert case.sandbox.count(status=403) == 0
    operation, period, most = case.window
    assert case.sandbox.max_in_window(case.vendor, operation, period) <= most


async def test_owned_session_is_closed(case: VendorCase) -> None:
    """Leaving ``async with`` closes the session the provider opened (no warning)."""
    provider = case.provider()
    async with provider:
        await provider.get_runner(case.runner_ids[0])
        session = provider._http._session  # type: ignore[attr-defined]
        assert session is not None
        assert not session.closed
    assert session.closed


async def test_injected_session_is_left_open(case: VendorCase) -> None:
    """A session passed in belongs to the caller and stays open."""
    async with aiohttp.ClientSession() as session:
        async with case.provider(session=session) as provider:
            await provider.get_runner(case.runner_ids[0])
        assert not session.closed


async def test_entering_sends_nothing(case: VendorCase) -> None:
    """``async with`` sends no request of its own."""
    async with case.provider():
        pass
    assert case.sandbox.requests == []


async def test_secrets_never_leak(case: VendorCase, debug_log: pytest.LogCaptureFixture) -> None:
    """No credential appears in reprs, error messages or DEBUG logs, on success or failure."""
    texts: list[str] = []
    case.sandbox.faults.add(Fault(FaultKind.STATUS, status=503, method="GET", times=1))
    async with case.provider() as provider:
        texts.append(repr(provider))
        runners = [r async for r in provider.list_runners()]
        texts += [repr(r) for r in runners]
        created = await provider.create_runner(case.create_name)
        texts += [repr(created), str(created)]
        if created.credentials is not None:
            case.secrets.append(created.credentials.api_key_secret.get_secret_value())
        if created.jit_config is not None:
            case.secrets.append(created.jit_config.get_secret_value())
        with pytest.raises(errors.RunnerHubError) as info:
            await provider.get_runner("missing")
        texts += [str(info.value), repr(info.value)]
    async with case.build_bad_auth() as bad:
        with pytest.raises(errors.AuthenticationError) as auth:
            await bad.get_runner("x")
        texts += [str(auth.value), repr(auth.value), repr(bad)]
    texts += [record.getMessage() for record in debug_log.records]
    assert debug_log.records  # DEBUG logging was on and said something
    blob = "\n".join(texts)
    for secret in case.secrets:
        assert secret not in blob
