"""The interface every vendor implements, and the capabilities a vendor may add to it.

:class:`RunnerProvider` holds what every vendor has: list, get, create and
delete runners, verify the credentials, close. Anything else is a small
capability protocol (:class:`SupportsHealth`, :class:`SupportsLabels`, ...)
that a caller checks before calling::

    if isinstance(provider, SupportsHealth):
        health = await provider.runner_health(runner_id)
    else:
        raise unsupported(provider, "runner_health")

``Capability.X in provider.capabilities`` says the same thing as a value
(for listings and JSON). Each provider class also declares, as class
attributes, what the accounts file and the CLI need to build it:
``provider``, ``title``, ``credentials`` (:class:`CredentialField`),
``options`` (:class:`VendorOption`) and ``default_limits``.
"""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator, Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol, Self, runtime_checkable

import attrs

from . import errors
from .models import CreatedRunner, RegistrationToken, Runner, RunnerHealth

if TYPE_CHECKING:
    from ._http import ClientStats
    from .limits import RateLimit

__all__ = [
    "Capability",
    "CredentialField",
    "RunnerProvider",
    "SupportsDescription",
    "SupportsHealth",
    "SupportsLabels",
    "SupportsManifests",
    "SupportsOperations",
    "SupportsRateLimits",
    "SupportsRegistrationTokens",
    "SupportsStats",
    "VendorOption",
    "unsupported",
]


class Capability(enum.Enum):
    """An operation a provider may offer; see ``RunnerProvider.capabilities``."""

    LIST = "list_runners"
    GET = "get_runner"
    CREATE = "create_runner"
    DELETE = "delete_runner"
    HEALTH = "runner_health"
    HEALTH_CHECK = "health_check"
    """A health endpoint of its own that reports more than the listing does."""
    UPDATE_DESCRIPTION = "update_description"
    DEPLOYMENT_MANIFEST = "deployment_manifest"
    HELM_VALUES = "helm_values"
    RUN_OPERATION = "run_operation"
    LABELS = "labels"
    """List, add, set and remove a runner's labels (:class:`SupportsLabels`)."""
    REGISTRATION_TOKENS = "registration_tokens"
    """Mint registration and removal tokens (:class:`SupportsRegistrationTokens`)."""


@attrs.frozen
class CredentialField:
    """One credential a provider's constructor takes.

    Attributes:
        name: The constructor keyword, e.g. ``"api_key_secret"``.
        env: The environment variable ``from_env()`` reads, e.g. ``"SODA_API_KEY_SECRET"``.
        secret: False when the value may be written inline in an accounts
            file (e.g. an API key id); secrets are only read by reference.
    """

    name: str
    env: str
    secret: bool = True


@attrs.frozen
class VendorOption:
    """A vendor-specific constructor keyword, e.g. ``region`` or ``org``.

    Attributes:
        name: The constructor keyword.
        help: One line for ``--help`` and error messages.
        env: The environment variable ``from_env()`` reads, if any.
        choices: The allowed values, when there is a fixed set.
    """

    name: str
    help: str
    env: str | None = None
    choices: tuple[str, ...] = ()


@runtime_checkable
class RunnerProvider(Protocol):
    """One vendor account's runners behind one async API.

    Entering ``async with`` sends no request; leaving it closes what the
    provider owns. Operations beyond these are capability protocols.
    """

    @property
    def provider(self) -> str:
        """The vendor's name, e.g. ``"soda"``."""
        ...

    @property
    def account(self) -> str:
        """This account's label, e.g. ``"soda-eu"``."""
        ...

    @property
    def capabilities(self) -> frozenset[Capability]:
        """The operations this provider offers."""
        ...

    def list_runners(self) -> AsyncIterator[Runner]:
        """Yield every runner of the account, fetching pages lazily."""
        ...

    async def get_runner(self, runner_id: str) -> Runner:
        """Return one runner; raises ``NotFoundError`` if there is none."""
        ...

    async def create_runner(self, name: str | None = None) -> CreatedRunner:
        """Create a runner (or its credentials) and return what the vendor returns once."""
        ...

    async def delete_runner(self, runner_id: str) -> None:
        """Delete a runner."""
        ...

    async def verify(self) -> object:
        """Send the cheapest authenticated request; raise if the credentials are refused.

        What it returns is vendor-specific (Soda: the organisation's name);
        callers need only that it did not raise.
        """
        ...

    async def aclose(self) -> None:
        """Close the HTTP session and limiter the provider owns."""
        ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


@runtime_checkable
class SupportsHealth(Protocol):
    """A provider that reports a runner's health (``Capability.HEALTH``)."""

    async def runner_health(self, runner_id: str) -> RunnerHealth:
        """Return the runner's health."""
        ...


@runtime_checkable
class SupportsDescription(Protocol):
    """A provider that stores a free-text description per runner."""

    async def update_description(self, runner_id: str, description: str) -> Any:
        """Set the runner's description; returns the vendor's answer (may be None)."""
        ...


@runtime_checkable
class SupportsManifests(Protocol):
    """A provider that serves a runner's Kubernetes manifest and Helm values."""

    async def deployment_manifest(self, runner_id: str) -> str:
        """Return the runner's deployment manifest (YAML text)."""
        ...

    async def helm_values(self, runner_id: str) -> Mapping[str, Any] | bytes:
        """Return the runner's Helm values (JSON), or raw bytes when not JSON."""
        ...


@runtime_checkable
class SupportsOperations(Protocol):
    """A provider that runs named operations (e.g. restart) on a runner."""

    async def run_operation(
        self, runner_id: str, operation: str, parameters: Mapping[str, Any] | None = None
    ) -> Any:
        """Run a vendor operation on the runner; returns the vendor's answer."""
        ...


@runtime_checkable
class SupportsLabels(Protocol):
    """A provider whose runners carry labels that can be changed."""

    async def list_labels(self, runner_id: str) -> tuple[str, ...]:
        """Return every label of the runner."""
        ...

    async def add_labels(self, runner_id: str, labels: Sequence[str]) -> tuple[str, ...]:
        """Add labels; return every label the runner has afterwards."""
        ...

    async def set_labels(self, runner_id: str, labels: Sequence[str]) -> tuple[str, ...]:
        """Replace the changeable labels; return every label the runner has afterwards."""
        ...

    async def remove_label(self, runner_id: str, label: str) -> tuple[str, ...]:
        """Remove one label; return the labels that remain."""
        ...


@runtime_checkable
class SupportsRegistrationTokens(Protocol):
    """A provider that mints tokens to register and to remove a runner by hand."""

    async def registration_token(self) -> RegistrationToken:
        """Mint a token that registers a new runner."""
        ...

    async def remove_token(self) -> RegistrationToken:
        """Mint a token that removes a registered runner."""
        ...


@runtime_checkable
class SupportsRateLimits(Protocol):
    """A provider that says which limits it keeps (for tools that share its budget)."""

    @property
    def rate_limits(self) -> Mapping[str, tuple[RateLimit, ...]]:
        """The limits in force by bucket name, after any ``rate_limits=`` override."""
        ...


@runtime_checkable
class SupportsStats(Protocol):
    """A provider that counts its own traffic (for progress displays)."""

    @property
    def stats(self) -> ClientStats:
        """Live counters: requests sent, retries, 429s, calls waiting for a slot."""
        ...


def unsupported(provider: RunnerProvider, operation: str) -> errors.UnsupportedOperation:
    """The error for calling ``operation`` on a provider that lacks it (raise it).

    Example::

        if not isinstance(provider, SupportsDescription):
            raise unsupported(provider, "update_description")
    """
    return errors.UnsupportedOperation(
        f"{provider.provider} has no {operation} operation",
        provider=provider.provider,
        account=provider.account,
        operation=operation,
    )
