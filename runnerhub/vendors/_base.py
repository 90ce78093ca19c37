"""What every provider shares: the HTTP core it holds, its lifecycle and its declarations."""

from __future__ import annotations

from collections.abc import Mapping
from types import TracebackType
from typing import Any, ClassVar, Self

from .._http import ClientStats, HTTPCore
from ..limits import RateLimit
from ..provider import Capability, CredentialField, VendorOption

__all__ = ["ProviderBase"]


class ProviderBase:
    """Lifecycle and common properties; each vendor declares the class attributes below.

    A vendor implements only the operations it has: a capability it lacks is
    absent (so ``isinstance(p, SupportsHealth)`` is False), never a stub.
    """

    provider: ClassVar[str]
    """The vendor's name, e.g. ``"soda"``."""
    title: ClassVar[str]
    """The vendor's name for people, e.g. ``"Soda Cloud"``."""
    credentials: ClassVar[tuple[CredentialField, ...]]
    """The credential keywords of the constructor, and their environment variables."""
    options: ClassVar[tuple[VendorOption, ...]]
    """The vendor-specific constructor keywords (region, org, ...)."""
    default_limits: ClassVar[Mapping[str, tuple[RateLimit, ...]]]
    """The documented limits by bucket name; ``rate_limits=`` overrides them."""
    credential_fields: ClassVar[Mapping[str, bool]]
    """Derived from ``credentials``: keyword -> whether it is a secret (the older form)."""
    capabilities: frozenset[Capability]
    _http: HTTPCore

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "credentials" in cls.__dict__:
            cls.credential_fields = {field.name: field.secret for field in cls.credentials}

    @property
    def account(self) -> str:
        """This account's label."""
        return self._http.account

    @property
    def rate_limits(self) -> Mapping[str, tuple[RateLimit, ...]]:
        """The limits in force by bucket name: the defaults with ``rate_limits=`` applied."""
        return self._http.limits

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
