"""One module per vendor: routes, default limits, auth, paging and wire-to-model mapping.

``VENDORS`` names each vendor's provider class; the accounts file and the CLI
find providers here, so adding a vendor means adding its module and one line.
"""

from __future__ import annotations

import importlib
from typing import Any, Final

__all__ = ["VENDORS", "provider_class"]

VENDORS: Final = {
    "soda": "runnerhub.vendors.soda:SodaProvider",
    "kubiya": "runnerhub.vendors.kubiya:KubiyaProvider",
}


def provider_class(vendor: str) -> Any:
    """The provider class registered for ``vendor``.

    Raises:
        KeyError: for a vendor not in :data:`VENDORS`.
    """
    module, _, name = VENDORS[vendor].partition(":")
    return getattr(importlib.import_module(module), name)
