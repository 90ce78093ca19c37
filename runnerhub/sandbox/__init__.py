"""An in-process emulator of the Soda Cloud v1, Kubiya v3 and GitHub Actions runner APIs.

Written from the vendors' specs alone, never from runnerhub's client code, so
tests against it show the client agrees with the vendor rather than with itself.

    sandbox = Sandbox(seed=1)
    org = sandbox.add_soda_org("acme-eu", runners=2000)
    sandbox.faults.add(Fault(FaultKind.STATUS, status=503, times=2))
    async with sandbox.serve() as base_url:
        ...

Kubiya error bodies, by ``kubiya_error_style``: ``"code_error"``
``{"code": 404, "error": "..."}``; ``"nested"`` ``{"error": {"code": "not_found",
"message": "..."}}``; ``"message"`` ``{"message": "..."}``; ``"detail"``
``{"detail": "..."}``; ``"html"`` a ``text/html`` proxy page.
"""

from ._app import RequestRecord, Sandbox, run_forever
from ._faults import Fault, FaultKind, FaultSet, RandomFaults
from ._github_state import GitHubOrg
from ._kubiya import KubiyaOrg
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
    "SodaOrg",
    "run_forever",
]
