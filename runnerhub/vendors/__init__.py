"""The vendor registry: one line per vendor, read by everything above the vendor modules.

``VENDORS`` maps a vendor's name to the import paths of its provider class and
of the sandbox service that emulates it. Both are imported only when asked
for, so reading the registry loads no vendor module. Adding a vendor means
adding its module, its sandbox module and one line here; the accounts file,
the CLI, the sandbox and the test fixtures iterate this mapping.
"""

from __future__ import annotations

import importlib
import types
from collections.abc import Mapping
from typing import Any, Final

import attrs

__all__ = ["VENDORS", "VendorEntry", "provider_class", "sandbox_class", "vendor_names"]


@attrs.frozen
class VendorEntry:
    """Where one vendor's code lives, as ``"module:attribute"`` import paths.

    Attributes:
        name: The vendor's name, e.g. ``"soda"`` (``Runner.provider`` and the
            accounts file's ``provider =``).
        provider: The provider class, e.g. ``"runnerhub.vendors.soda:SodaProvider"``.
        sandbox: The sandbox service that emulates the vendor, e.g.
            ``"runnerhub.sandbox._soda:SodaService"``.
    """

    name: str
    provider: str
    sandbox: str


def _entries(*entries: VendorEntry) -> Mapping[str, VendorEntry]:
    return types.MappingProxyType({entry.name: entry for entry in entries})


VENDORS: Final[Mapping[str, VendorEntry]] = _entries(
    VendorEntry(
        "soda", "runnerhub.vendors.soda:SodaProvider", "runnerhub.sandbox._soda:SodaService"
    ),
    VendorEntry(
        "kubiya",
        "runnerhub.vendors.kubiya:KubiyaProvider",
        "runnerhub.sandbox._kubiya:KubiyaService",
    ),
    VendorEntry(
        "github",
        "runnerhub.vendors.github:GitHubProvider",
        "runnerhub.sandbox._github:GitHubService",
    ),
)


def provider_class(vendor: str) -> type[Any]:
    """The provider class registered for ``vendor``, imported on first use.

    Raises:
        KeyError: for a vendor not in :data:`VENDORS`.
    """
    cls: type[Any] = _load(VENDORS[vendor].provider)
    return cls


def sandbox_class(vendor: str) -> type[Any]:
    """The sandbox service class registered for ``vendor``, imported on first use.

    Raises:
        KeyError: for a vendor not in :data:`VENDORS`.
    """
    cls: type[Any] = _load(VENDORS[vendor].sandbox)
    return cls


def vendor_names() -> tuple[str, ...]:
    """Every registered vendor's name, sorted."""
    return tuple(sorted(VENDORS))


def _load(path: str) -> Any:
    module, _, attribute = path.partition(":")
    return getattr(importlib.import_module(module), attribute)
