"""One module per vendor: routes, default limits, auth, paging and wire-to-model mapping.

``VENDORS`` is the registry the accounts file, the CLI and the sandbox
iterate: adding a vendor means adding its module, its sandbox service and one
line here. Only strings live here, so importing the registry loads no vendor.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any, Final

import attrs

__all__ = ["VENDORS", "VendorEntry", "provider_class", "vendor_names"]


@attrs.frozen
class VendorEntry:
    """Where one vendor's code lives, as ``module:attribute`` import paths."""

    name: str
    provider: str
    sandbox: str


VENDORS: Final[Mapping[str, VendorEntry]] = {
    entry.name: entry
    for entry in (
        VendorEntry(
            "soda", "runnerhub.vendors.soda:SodaProvider", "runnerhub.sandbox._soda:SodaService"
        ),
        VendorEntry(
            "kubiya",
            "runnerhub.vendors.kubiya:KubiyaProvider",
            "runnerhub.sandbox._kubiya:KubiyaService",
        ),
    )
}


def _load(path: str) -> Any:
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


def provider_class(vendor: str) -> type[Any]:
    """The provider class registered for ``vendor`` (its module is imported now).

    Raises:
        KeyError: for a vendor not in :data:`VENDORS`.
    """
    cls: type[Any] = _load(VENDORS[vendor].provider)
    return cls


def vendor_names() -> tuple[str, ...]:
    """The registered vendors, sorted."""
    return tuple(sorted(VENDORS))
