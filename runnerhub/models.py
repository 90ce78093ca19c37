"""The vendor-neutral model every provider maps its payloads into."""

from __future__ import annotations

import enum
import hmac
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final, final

import attrs

__all__ = [
    "CreatedRunner",
    "HealthCheck",
    "RegistrationToken",
    "Runner",
    "RunnerCredentials",
    "RunnerHealth",
    "RunnerKind",
    "RunnerStatus",
    "Secret",
]

_MASK: Final = "**********"


class RunnerKind(enum.Enum):
    """Who operates the runner."""

    SELF_HOSTED = "self_hosted"
    MANAGED = "managed"
    UNKNOWN = "unknown"


class RunnerStatus(enum.Enum):
    """How the runner is doing, as far as its vendor tells."""

    ONLINE = "online"
    DEGRADED = "degraded"
    OFFLINE = "offline"
    UNKNOWN = "unknown"


@final
class Secret:
    """A string that never shows itself in ``repr``, ``str`` or logs.

    Read it deliberately with :meth:`get_secret_value`.
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def get_secret_value(self) -> str:
        """Return the secret itself."""
        return self._value

    def __repr__(self) -> str:
        return f"Secret('{_MASK}')"

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return repr(self)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        return hmac.compare_digest(self._value.encode(), other._value.encode())

    def __hash__(self) -> int:
        return hash((Secret, self._value))

    def __bool__(self) -> bool:
        return bool(self._value)

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickling is how secrets reach multiprocessing workers; keep it possible.
        return (Secret, (self._value,))


@attrs.frozen
class Runner:
    """One runner of one account, whatever the vendor.

    Attributes:
        provider: Vendor name, e.g. ``"soda"`` or ``"kubiya"``.
        account: The provider's account label, e.g. ``"soda-eu"``.
        id: The vendor's identifier (Kubiya identifies runners by name).
        name: Display name.
        kind: Who operates it.
        status: Online, degraded, offline, or unknown.
        description: Free text (Soda ``label``, Kubiya ``description``).
        last_seen: When the vendor last heard from it (timezone-aware).
        versions: The version strings the vendor reports, by component.
        raw: The vendor payload as received; excluded from eq, hash and repr.
        labels: The runner's labels (GitHub), empty for vendors without labels.
    """

    provider: str
    account: str
    id: str
    name: str
    kind: RunnerKind = RunnerKind.UNKNOWN
    status: RunnerStatus = RunnerStatus.UNKNOWN
    description: str | None = None
    last_seen: datetime | None = None
    versions: Mapping[str, str] = attrs.field(factory=dict, hash=False)
    raw: Mapping[str, Any] = attrs.field(factory=dict, eq=False, hash=False, repr=False)
    labels: tuple[str, ...] = ()


# A frozen attrs __init__ stores each field through object.__setattr__ (~1.6 µs
# for Runner's eleven). Vendor mappers build one Runner per listed item, so they use
# build_runner, which stores the same slots through their descriptors (~0.8 µs).
_RUNNER_SLOTS: Final = (
    "provider",
    "account",
    "id",
    "name",
    "kind",
    "status",
    "description",
    "last_seen",
    "versions",
    "raw",
    "labels",
)
if tuple(field.name for field in attrs.fields(Runner)) != _RUNNER_SLOTS:  # pragma: no cover
    raise AssertionError("build_runner must set exactly Runner's fields, in order")
(
    _set_provider,
    _set_account,
    _set_id,
    _set_name,
    _set_kind,
    _set_status,
    _set_description,
    _set_last_seen,
    _set_versions,
    _set_raw,
    _set_labels,
) = (Runner.__dict__[name].__set__ for name in _RUNNER_SLOTS)
_new_object = object.__new__


def build_runner(  # noqa: PLR0917 - positional on purpose: keywords cost more per call
    provider: str,
    account: str,
    id: str,
    name: str,
    kind: RunnerKind,
    status: RunnerStatus,
    description: str | None,
    last_seen: datetime | None,
    versions: Mapping[str, str],
    raw: Mapping[str, Any],
    labels: tuple[str, ...] = (),
) -> Runner:
    """``Runner(...)`` with every field given positionally, for mappers' hot paths.

    The result is indistinguishable from the constructor's (same class, same
    slots, equal and hashing alike); no field is validated or defaulted.
    """
    runner: Runner = _new_object(Runner)
    _set_provider(runner, provider)
    _set_account(runner, account)
    _set_id(runner, id)
    _set_name(runner, name)
    _set_kind(runner, kind)
    _set_status(runner, status)
    _set_description(runner, description)
    _set_last_seen(runner, last_seen)
    _set_versions(runner, versions)
    _set_raw(runner, raw)
    _set_labels(runner, labels)
    return runner


@attrs.frozen
class HealthCheck:
    """One component check inside a :class:`RunnerHealth`."""

    name: str
    status: RunnerStatus
    version: str | None = None
    error: str | None = None


@attrs.frozen
class RunnerHealth:
    """A runner's health as its vendor reports it.

    Attributes:
        status: The overall status.
        checks: Per-component checks, empty when the vendor has none.
        checked_at: When the vendor measured it, if it says.
        raw: The vendor payload; excluded from eq, hash and repr.
    """

    status: RunnerStatus
    checks: tuple[HealthCheck, ...] = ()
    checked_at: datetime | None = None
    raw: Any = attrs.field(default=None, eq=False, hash=False, repr=False)


@attrs.frozen
class RunnerCredentials:
    """A key pair minted for a new runner; the secret is shown only once by the vendor."""

    api_key_id: str
    api_key_secret: Secret


@attrs.frozen
class CreatedRunner:
    """What a create call returns.

    Attributes:
        runner_id: The new runner's id when the vendor tells it (Soda does not).
        name: The new runner's name when known.
        credentials: One-time credentials (Soda) or None.
        jit_config: The one-time configuration a just-in-time runner starts
            with (GitHub's ``encoded_jit_config``), or None. Anyone holding it
            can start the runner: it is a :class:`Secret`.
        manifest_url: Where the deployment manifest can be fetched (Kubiya).
            It works without authentication, so treat it as a credential:
            it is kept out of ``repr``.
        raw: The vendor payload; excluded from eq, hash and repr.
    """

    runner_id: str | None = None
    name: str | None = None
    credentials: RunnerCredentials | None = None
    manifest_url: str | None = attrs.field(default=None, repr=False)
    raw: Any = attrs.field(default=None, eq=False, hash=False, repr=False)
    jit_config: Secret | None = None


@attrs.frozen
class RegistrationToken:
    """A short-lived token that registers (or removes) a runner by hand.

    Attributes:
        token: The token; a credential until it expires.
        expires_at: When the vendor stops accepting it (timezone-aware), if it says.
    """

    token: Secret
    expires_at: datetime | None
