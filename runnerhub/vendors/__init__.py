"""One module per vendor: routes, default limits, auth, paging and wire-to-model mapping.

``VENDORS`` is the one registry line per vendor: the import paths of its
provider class and of the sandbox service emulating it. The accounts file, the
CLI and the sandbox find vendors here, loading each module only when used.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Final

import attrs

__all__ = ["VENDORS", "VendorEntry", "provider_class", "vendor_names"]


@attrs.frozen
class VendorEntry:
    """Where one vendor's code lives, as ``"module:attribute"`` import paths.

    Attributes:
        name: The vendor's name, e.g. ``"soda"``.
        provider: Its provider class, e.g. ``"runnerhub.vendors.soda:SodaProvider"``.
        sandbox: Its sandbox service class, e.g. ``"runnerhub.sandbox._soda:SodaService"``.
    """

    name: str
    provider: str
    sandbox: str


VENDORS: Final[Mapping[str, VendorEntry]] = MappingProxyType(
    {
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
)


def _load(path: str) -> Any:
    """The object a ``"module:attribute"`` import path names, importing the module."""
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


def provider_class(vendor: str) -> type[Any]:
    """The provider class registered for ``vendor``.

    Raises:
        KeyError: for a vendor not in :data:`VENDORS`.
    """
    cls: type[Any] = _load(VENDORS[vendor].provider)
    return cls


def vendor_names() -> tuple[str, ...]:
    """The registered vendors' names, sorted."""
    return tuple(sorted(VENDORS))
