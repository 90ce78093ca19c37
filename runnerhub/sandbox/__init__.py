"""An in-process emulator of every registered vendor's runner API.

Written from the vendors' specs alone, never from runnerhub's client code, so
tests against it show the client agrees with the vendor rather than with itself.
Each vendor's service is found through ``runnerhub.vendors.VENDORS``; the
``Sandbox`` names no vendor.

    sandbox = Sandbox(seed=1)
    org = sandbox.add_org("soda", "acme-eu", runners=2000)
    sandbox.faults.add(Fault(FaultKind.STATUS, status=503, times=2))
    async with sandbox.serve():
        soda_url = sandbox.url("soda")   # http://127.0.0.1:PORT/soda
        ...

URLs: every vendor is served under its own prefix, ``sandbox.url(vendor)``
(``{base_url}/{vendor}``), and also at the root (``base_url``). Point clients at
``url(vendor)``: at the root, vendors whose paths overlap (Soda's ``/api/v1/``
and Kubiya's legacy ``/api/v1/`` routes) share one namespace, and a path one
vendor does not route falls to the vendor whose prefix it starts with.

Answers follow the vendors' docs, and only the docs, unless asked otherwise:

- 429s carry ``Retry-After`` in whole seconds, rounded up (``retry_after="int"``);
  ``"decimal"`` gives millisecond precision, ``"date"`` an HTTP date.
- 405s carry ``Allow``.
- Kubiya accepts an API key only as ``Authorization: UserKey <key>``; ``Bearer``
  is refused with 401, as Kubiya's docs say it is for API keys.
- Rules the docs do not state are opt-in: ``vendor_options={"kubiya":
  {"strict": True}}`` limits runner names to 1-63 characters of ``a-z0-9-``
  and operations to the docs' examples (``restart``, ``stop``, ``start``).

Vendor options (``vendor_options={vendor: {...}}``): Soda's ``limits``
(per-operation ``(max_requests, period_seconds)``); Kubiya's ``limits``,
``error_style`` (``"code_error"`` ``{"code": 404, "error": "..."}``,
``"nested"`` ``{"error": {"code": "not_found", "message": "..."}}``,
``"message"``, ``"detail"``, ``"html"``), ``helmchart_format`` and ``strict``.

In pytest: ``pytest_plugins = ["runnerhub.sandbox.pytest_plugin"]`` gives the
``runnerhub_sandbox`` fixture, served from its own thread for sync and async
tests alike.
"""

from ._app import RequestRecord, Sandbox, run_forever
from ._common import SandboxAccount, Service, Settings
from ._faults import Fault, FaultKind, FaultSet, RandomFaults
from ._github_state import GitHubOrg
from ._kubiya_state import KubiyaOrg
from ._soda import SodaOrg

__all__ = [
    "Fault",
    "FaultKind",
    "FaultSet",
    "GitHubOrg",
    "KubiyaOrg",
    "RandomFaults",
    "RequestRecord",
    "Sandbox",
    "SandboxAccount",
    "Service",
    "Settings",
    "SodaOrg",
    "run_forever",
]
