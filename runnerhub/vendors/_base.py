"""What every provider shares: the HTTP core it holds, lifecycle, and refusals."""

from __future__ import annotations

from collections.abc import Mapping
from types import TracebackType
from typing import Any, NoReturn, Self

from .._http import ClientStats, HTTPCore, fail_unsupported
from ..provider import Capability

__all__ = ["ProviderBase"]


class ProviderBase:
    """Lifecycle and ``UnsupportedOperation`` defaults; vendors override what they offer."""

    provider: str
    capabilities: frozenset[Capability]
    _http: HTTPCore

    @property
    def account(self) -> str:
        """This account's label."""
        return self._http.account

    @property
    def stats(self) -> ClientStats:
        """Live counters of this provider's requests, retries, 429s and limiter waits."""
        return self._http.stats

    @property
    def base_url(self) -> str:
        """The vendor API's base URL."""
        return self._http.base_url

    def __repr__(self) -> str:
        return f"<{type(self).__name__} account={self.account!r} base_url={self.base_url!r}>"

    def _unsupported(self, capability: Capability) -> NoReturn:
        fail_unsupported(self.provider, self.account, capability.value)

    async def update_description(self, runner_id: str, description: str) -> Any:
        """Not offered by this vendor: raises ``UnsupportedOperation``."""
        self._unsupported(Capability.UPDATE_DESCRIPTION)

    async def deployment_manifest(self, runner_id: str) -> str:
        """Not offered by this vendor: raises ``UnsupportedOperation``."""
        self._unsupported(Capability.DEPLOYMENT_MANIFEST)

    async def helm_values(self, runner_id: str) -> Mapping[str, Any] | bytes:
        """Not offered by this vendor: raises ``UnsupportedOperation``."""
        self._unsupported(Capability.HELM_VALUES)

    async def run_operation(
        self, runner_id: str, operation: str, parameters: Mapping[str, Any] | None = None
    ) -> Any:
        """Not offered by this vendor: raises ``UnsupportedOperation``."""
        self._unsupported(Capability.RUN_OPERATION)

    async def aclose(self) -> None:
        """Close the session this provider opened; an injected session stays open."""
        await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
