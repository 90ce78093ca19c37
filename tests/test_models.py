"""The vendor-neutral models (Secret, Runner, RunnerHealth, CreatedRunner) and error strings."""

from __future__ import annotations

import copy
import pickle
from datetime import UTC, datetime

import attrs
import pytest

from runnerhub import (
    CreatedRunner,
    HealthCheck,
    Runner,
    RunnerCredentials,
    RunnerHealth,
    RunnerKind,
    RunnerStatus,
    Secret,
    errors,
)

PLANTED = "s3cr3t-planted-value"


def _runner(**changes: object) -> Runner:
    fields: dict[str, object] = {
        "provider": "soda",
        "account": "acme-eu",
        "id": "r-1",
        "name": "runner-eu-0001",
        "kind": RunnerKind.SELF_HOSTED,
        "status": RunnerStatus.ONLINE,
        "description": "analytics",
        "last_seen": datetime(2025, 6, 1, tzinfo=UTC),
        "versions": {"agent": "1.4.2", "runner": "1.4.2"},
        "raw": {"id": "r-1", "secret": PLANTED},
    }
    fields.update(changes)
    return Runner(**fields)  # type: ignore[arg-type]


# -- Secret ------------------------------------------------------------------


def test_secret_never_shows_itself() -> None:
    """repr, str, format and %-formatting of a Secret mask the value."""
    secret = Secret(PLANTED)
    shown = [
        repr(secret),
        str(secret),
        f"{secret}",
        f"{secret!r}",
        f"{secret:>40}",
        format(secret, "s"),
        "%s %r" % (secret, secret),  # noqa: UP031 - %-formatting is what is being checked
        repr([secret]),
        repr({"k": secret}),
    ]
    for text in shown:
        assert PLANTED not in text
        assert "**********" in text


def test_secret_value_is_readable_deliberately() -> None:
    """get_secret_value returns the value itself."""
    assert Secret(PLANTED).get_secret_value() == PLANTED


def test_secret_equality_and_hash() -> None:
    """Secrets compare by value, hash consistently, and never equal a plain string."""
    assert Secret("a") == Secret("a")
    assert Secret("a") != Secret("b")
    assert Secret("a") != "a"
    assert hash(Secret("a")) == hash(Secret("a"))
    assert len({Secret("a"), Secret("a"), Secret("b")}) == 2


def test_secret_truthiness() -> None:
    """An empty secret is falsy, any other truthy."""
    assert not Secret("")
    assert Secret("x")


def test_secret_pickles_and_copies() -> None:
    """A Secret survives pickling (for worker processes) and copying with its value."""
    secret = Secret(PLANTED)
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
        clone = pickle.loads(pickle.dumps(secret, protocol=protocol))  # noqa: S301 - own data
        assert isinstance(clone, Secret)
        assert clone == secret
        assert clone.get_secret_value() == PLANTED
    assert copy.deepcopy(secret).get_secret_value() == PLANTED


def test_secret_has_no_instance_dict() -> None:
    """Secret is slotted, so vars() cannot dump it."""
    with pytest.raises(TypeError):
        vars(Secret(PLANTED))


# -- Runner ------------------------------------------------------------------


def test_runner_is_frozen() -> None:
    """Assigning to a Runner field raises FrozenInstanceError."""
    runner = _runner()
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        runner.name = "other"  # type: ignore[misc]


def test_runner_is_slotted() -> None:
    """Runner uses __slots__ and has no per-instance __dict__."""
    runner = _runner()
    assert "__slots__" in vars(Runner)
    assert not hasattr(runner, "__dict__")


def test_runner_defaults() -> None:
    """Only provider, account, id and name are required; the rest default to unknown/empty."""
    runner = Runner("kubiya", "kubiya", "r", "r")
    assert runner.kind is RunnerKind.UNKNOWN
    assert runner.status is RunnerStatus.UNKNOWN
    assert runner.description is None
    assert runner.last_seen is None
    assert runner.versions == {}
    assert runner.raw == {}


def test_runner_eq_and_hash_ignore_raw() -> None:
    """Two runners differing only in raw are equal and hash alike."""
    a = _runner(raw={"x": 1})
    b = _runner(raw={"y": [2]})
    assert a == b
    assert hash(a) == hash(b)
    assert len({a, b}) == 1


def test_runner_repr_excludes_raw() -> None:
    """The vendor payload (which may hold secrets) is not in repr."""
    text = repr(_runner())
    assert PLANTED not in text
    assert "raw=" not in text
    assert "runner-eu-0001" in text


def test_runner_versions_in_eq_not_in_hash() -> None:
    """versions take part in equality but not in the hash (a dict is unhashable)."""
    a = _runner(versions={"agent": "1.4.2"})
    b = _runner(versions={"agent": "1.3.9"})
    assert a != b
    assert hash(a) == hash(b)


@pytest.mark.parametrize(
    "change",
    [
        {"id": "r-2"},
        {"status": RunnerStatus.OFFLINE},
        {"kind": RunnerKind.MANAGED},
        {"account": "acme-us"},
        {"last_seen": None},
    ],
)
def test_runner_other_fields_count(change: dict[str, object]) -> None:
    """Every other field takes part in equality."""
    assert _runner() != _runner(**change)


def test_runner_evolve_keeps_raw() -> None:
    """attrs.evolve produces a new runner with the same raw payload."""
    runner = _runner()
    evolved = attrs.evolve(runner, status=RunnerStatus.OFFLINE)
    assert evolved.status is RunnerStatus.OFFLINE
    assert evolved.raw is runner.raw


# -- RunnerHealth, HealthCheck, CreatedRunner --------------------------------


def test_runner_health_eq_ignores_raw_and_repr_hides_it() -> None:
    """RunnerHealth compares without raw, hashes, and keeps raw out of repr."""
    checks = (HealthCheck("tool-manager", RunnerStatus.ONLINE, version="0.18.3"),)
    a = RunnerHealth(RunnerStatus.ONLINE, checks, raw={"jwt": PLANTED})
    b = RunnerHealth(RunnerStatus.ONLINE, checks, raw=None)
    assert a == b
    assert hash(a) == hash(b)
    assert PLANTED not in repr(a)
    assert "tool-manager" in repr(a)


def test_runner_health_defaults_and_frozen() -> None:
    """A bare RunnerHealth has no checks and no time, and cannot be changed."""
    health = RunnerHealth(RunnerStatus.UNKNOWN)
    assert health.checks == ()
    assert health.checked_at is None
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        health.status = RunnerStatus.ONLINE  # type: ignore[misc]


def test_health_check_fields() -> None:
    """HealthCheck carries name, status, version and error, and compares by them."""
    check = HealthCheck("agent-manager", RunnerStatus.DEGRADED, error="1 of 2 replicas ready")
    assert check.version is None
    same = HealthCheck("agent-manager", RunnerStatus.DEGRADED, None, "1 of 2 replicas ready")
    assert check == same
    assert check != HealthCheck("agent-manager", RunnerStatus.ONLINE)


def test_created_runner_repr_hides_manifest_url_and_secret() -> None:
    """CreatedRunner's repr shows neither the capability URL nor the key secret."""
    url = "https://api.kubiya.ai/api/v3/runners/helm/850b4cfa14c8a7b24882441c8767228405fbbf8a.yaml"
    created = CreatedRunner(
        runner_id="edge-1",
        name="edge-1",
        credentials=RunnerCredentials("key-id", Secret(PLANTED)),
        manifest_url=url,
        raw={"url": url, "apiKeySecret": PLANTED},
    )
    for text in (repr(created), str(created)):
        assert "850b4cfa" not in text
        assert PLANTED not in text
        assert "edge-1" in text
        assert "key-id" in text
    assert created.manifest_url == url
    assert created.credentials is not None
    assert created.credentials.api_key_secret.get_secret_value() == PLANTED


def test_created_runner_eq_ignores_raw() -> None:
    """Two CreatedRunner values differing only in raw are equal."""
    assert CreatedRunner(name="n", raw={"a": 1}) == CreatedRunner(name="n", raw={"b": 2})


# -- error strings -----------------------------------------------------------


def test_api_error_str_with_code_trace_and_context() -> None:
    """APIError shows status, code, message, trace id, then account and operation."""
    error = errors.NotFoundError(
        "Runner not found",
        status=404,
        code="not_found",
        trace_id="4bf92f35",
        provider="soda",
        account="acme-eu",
        operation="get_runner",
    )
    assert str(error) == (
        "HTTP 404 not_found: Runner not found (trace id 4bf92f35) [acme-eu, get_runner]"
    )
    assert error.message == "Runner not found"
    assert (error.status, error.code, error.trace_id) == (404, "not_found", "4bf92f35")


def test_api_error_str_minimal() -> None:
    """Without code, trace id or context only status and message show."""
    assert str(errors.ServerError("boom", status=503)) == "HTTP 503: boom"


def test_api_error_str_falls_back_to_provider() -> None:
    """With no account the provider names where the error happened."""
    error = errors.APIError("teapot", status=418, provider="kubiya", operation="run_operation")
    assert str(error) == "HTTP 418: teapot [kubiya, run_operation]"


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({}, "bad id"),
        ({"account": "acme-eu"}, "bad id [acme-eu]"),
        ({"provider": "soda"}, "bad id [soda]"),
        ({"operation": "get_runner"}, "bad id [get_runner]"),
        ({"provider": "soda", "account": "acme-eu", "operation": "x"}, "bad id [acme-eu, x]"),
    ],
)
def test_runnerhub_error_str(kwargs: dict[str, str], expected: str) -> None:
    """RunnerHubError appends account (or provider) and operation in brackets."""
    error = errors.RunnerHubError("bad id", **kwargs)
    assert str(error) == expected
    assert error.message == "bad id"


def test_error_tree() -> None:
    """The error classes form the documented tree."""
    assert issubclass(errors.UsageError, ValueError)
    assert issubclass(errors.ResponseTooLargeError, errors.ResponseFormatError)
    for name in errors.__all__:
        assert issubclass(getattr(errors, name), errors.RunnerHubError)
    for cls in (
        errors.BadRequestError,
        errors.AuthenticationError,
        errors.PermissionDeniedError,
        errors.NotFoundError,
        errors.RateLimitError,
        errors.ServerError,
    ):
        assert issubclass(cls, errors.APIError)
    assert errors.RateLimitError("x", status=429).retry_after is None


def test_plain_errors_pickle() -> None:
    """A RunnerHubError crosses a process boundary with its message and context."""
    error = errors.TransportError("reset", provider="soda", account="acme-eu", operation="x")
    clone = pickle.loads(pickle.dumps(error))  # noqa: S301 - own data
    assert str(clone) == str(error)


def test_api_errors_pickle() -> None:
    """An APIError survives pickling, e.g. from a ProcessPoolExecutor worker."""
    error = errors.NotFoundError("gone", status=404, code="not_found", account="acme-eu")
    clone = pickle.loads(pickle.dumps(error))  # noqa: S301 - own data
    assert type(clone) is errors.NotFoundError
    assert str(clone) == str(error)
