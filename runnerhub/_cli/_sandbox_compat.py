"""The vendor-neutral face of the sandbox that the ``sandbox`` and ``demo`` commands use.

``Sandbox.accounts()``, ``Sandbox.url(vendor)`` and ``Sandbox.add_org(vendor, ...)``
are the sandbox's generic API. Until every sandbox has them, :func:`generic`
wraps one that still keeps its orgs per vendor (``soda_orgs``, ``kubiya_orgs``);
this module is the only place in the CLI that knows those names, and goes
away with them.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol, cast

import attrs

__all__ = ["GenericSandbox", "SandboxAccount", "generic"]


@attrs.frozen
class SandboxAccount:
    """What a client needs to talk to one emulated account."""

    vendor: str
    name: str
    credentials: Mapping[str, str] = attrs.field(repr=False)
    options: Mapping[str, str] = attrs.field(factory=dict)


class GenericSandbox(Protocol):
    """The part of ``runnerhub.sandbox.Sandbox`` the commands use."""

    seed: int

    def accounts(self) -> list[Any]: ...

    def url(self, vendor: str) -> str: ...

    def add_org(self, vendor: str, name: str, runners: int = 0, **options: Any) -> Any: ...

    def serve(self, host: str = ..., port: int = ...) -> AbstractAsyncContextManager[str]: ...


class _PerVendorSandbox:
    # A sandbox with per-vendor org tables and one root URL for every vendor.

    def __init__(self, sandbox: Any) -> None:
        self._sandbox = sandbox
        self.seed: int = sandbox.seed

    def accounts(self) -> list[Any]:
        found: list[Any] = [
            SandboxAccount(
                "soda",
                name,
                {"api_key_id": org.api_key_id, "api_key_secret": org.api_key_secret},
            )
            for name, org in self._sandbox.soda_orgs.items()
        ]
        found += [
            SandboxAccount("kubiya", name, {"api_key": org.api_key})
            for name, org in self._sandbox.kubiya_orgs.items()
        ]
        return found

    def url(self, vendor: str) -> str:
        base: str = self._sandbox.base_url
        return base

    def add_org(self, vendor: str, name: str, runners: int = 0, **options: Any) -> Any:
        add = getattr(self._sandbox, f"add_{vendor}_org")
        return add(name, runners=runners, **options)

    def serve(self, host: str = "127.0.0.1", port: int = 0) -> AbstractAsyncContextManager[str]:
        served: AbstractAsyncContextManager[str] = self._sandbox.serve(host, port)
        return served


def generic(sandbox: Any) -> GenericSandbox:
    """``sandbox`` itself when it has the generic API, else a wrapper giving it one."""
    if callable(getattr(sandbox, "accounts", None)) and callable(getattr(sandbox, "url", None)):
        return cast("GenericSandbox", sandbox)
    return _PerVendorSandbox(sandbox)
