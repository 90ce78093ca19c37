"""runnerhub: manage and inventory self-hosted runners across SaaS vendors with one async API.

The public surface is re-exported here; the modules behind it are private
unless named in their own ``__all__`` (``errors``, ``limits``, ``sandbox``).
"""

from . import errors
from ._pool import SessionPool
from .fleet import (
    AccountProgress,
    FleetEvent,
    FleetEventKind,
    HealthFailure,
    Inventory,
    PartialFailure,
    RunnerHub,
    VersionDrift,
)
from .limits import RateLimit
from .models import (
    CreatedRunner,
    HealthCheck,
    RegistrationToken,
    Runner,
    RunnerCredentials,
    RunnerHealth,
    RunnerKind,
    RunnerStatus,
    Secret,
)
from .provider import (
    Capability,
    CredentialField,
    RunnerProvider,
    SupportsDescription,
    SupportsHealth,
    SupportsLabels,
    SupportsManifests,
    SupportsOperations,
    SupportsRateLimits,
    SupportsRegistrationTokens,
    SupportsStats,
    VendorOption,
)
from .retry import RetryPolicy
from .vendors.github import GitHubProvider
from .vendors.kubiya import KubiyaProvider
from .vendors.soda import SodaProvider

__all__ = [
    "AccountProgress",
    "Capability",
    "CreatedRunner",
    "CredentialField",
    "FleetEvent",
    "FleetEventKind",
    "GitHubProvider",
    "HealthCheck",
    "HealthFailure",
    "Inventory",
    "KubiyaProvider",
    "PartialFailure",
    "RateLimit",
    "RegistrationToken",
    "RetryPolicy",
    "Runner",
    "RunnerCredentials",
    "RunnerHealth",
    "RunnerHub",
    "RunnerKind",
    "RunnerProvider",
    "RunnerStatus",
    "Secret",
    "SessionPool",
    "SodaProvider",
    "SupportsDescription",
    "SupportsHealth",
    "SupportsLabels",
    "SupportsManifests",
    "SupportsOperations",
    "SupportsRateLimits",
    "SupportsRegistrationTokens",
    "SupportsStats",
    "VendorOption",
    "VersionDrift",
    "errors",
]

__version__ = "0.1.0"
