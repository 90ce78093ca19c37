"""The interface every vendor implements, and what a vendor can declare it offers.

Besides the protocols, each provider class declares as class attributes what
the accounts file and the CLI need without naming a vendor: ``provider``
(``"soda"``), ``title`` (``"Soda Cloud"``), ``credentials`` (a tuple of
:class:`CredentialField`) and ``options`` (a tuple of :class:`VendorOption`).
"""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator, Mapping
from types import TracebackType
from typing import Any, Protocol, Self, runtime_checkable

import attrs

from .models import CreatedRunner, Runner, RunnerHealth

__all__ = [
    "Capability",
    "CredentialField",
    "RunnerProvider",
    "SupportsDescription",
    "SupportsHealth",
    "SupportsManifests",
    "SupportsOperations",
    "VendorOption",
]


@attrs.frozen
class CredentialField:
    """One credential a provider's constructor takes.

    Attributes:
        name: The constructor keyword, e.g. ``"api_key_secret"``.
        env: The environment variable ``from_env()`` reads it from.
        secret: False for a value that may be written inline in an accounts
            file (a key id); True refuses it there.
    """

    name: str
    env: str
    secret: bool = True


@attrs.frozen
class VendorOption:
    """A vendor-specific constructor option, e.g. Soda's ``region``.

    Attributes:
        name: The constructor keyword, also the accounts-file key.
        help: One line for ``--help`` and error messages.
        env: The environment variable ``from_env()`` reads it from, if any.
        choices: The values allowed (any string when empty).
    """

    name: str
    help: str
    env: str | None = None
    choices: tuple[str, ...] = ()


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


@runtime_checkable
class RunnerProvider(Protocol):
    """One vendor account's runners behind one async API.

    A provider that lacks an operation (see :attr:`capabilities`) raises
    :class:`runnerhub.errors.UnsupportedOperation` before sending anything.
    Entering ``async with`` sends no request; leaving it closes what the
    provider owns.
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

    async def runner_health(self, runner_id: str) -> RunnerHealth:
        """Return the runner's health."""
        ...

    async def update_description(self, runner_id: str, description: str) -> Any:
        """Set the runner's description; returns the vendor's answer (may be None)."""
        ...

    async def deployment_manifest(self, runner_id: str) -> str:
        """Return the runner's deployment manifest (YAML text)."""
        ...

    async def helm_values(self, runner_id: str) -> Mapping[str, Any] | bytes:
        """Return the runner's Helm values (JSON), or raw bytes when not JSON."""
        ...

    async def run_operation(
        self, runner_id: str, operation: str, parameters: Mapping[str, Any] | None = None
    ) -> Any:
        """Run a vendor operation (e.g. restart) on the runner; returns the vendor's answer."""
        ...

    async def verify(self) -> Any:
        """Check the credentials with the vendor's cheapest authenticated request."""
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
    """A provider that reports a runner's health."""

    async def runner_health(self, runner_id: str) -> RunnerHealth:
        """Return the runner's health."""
        ...


@runtime_checkable
class SupportsDescription(Protocol):
    """A provider that can set a runner's description."""

    async def update_description(self, runner_id: str, description: str) -> Any:
        """Set the runner's description; returns the vendor's answer (may be None)."""
        ...


@runtime_checkable
class SupportsManifests(Protocol):
    """A provider that hands out deployment manifests and Helm values."""

    async def deployment_manifest(self, runner_id: str) -> str:
        """Return the runner's deployment manifest (YAML text)."""
        ...

    async def helm_values(self, runner_id: str) -> Mapping[str, Any] | bytes:
        """Return the runner's Helm values (JSON), or raw bytes when not JSON."""
        ...


@runtime_checkable
class SupportsOperations(Protocol):
    """A provider that runs vendor operations (restart, stop, ...) on a runner."""

    async def run_operation(
        self, runner_id: str, operation: str, parameters: Mapping[str, Any] | None = None
    ) -> Any:
        """Run a vendor operation on the runner; returns the vendor's answer."""
        ...
