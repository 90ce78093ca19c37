"""runnerhub: manage and inventory self-hosted runners across SaaS vendors with one async API.

The public surface is re-exported here; the modules behind it are private
unless named in their own ``__all__`` (``errors``, ``limits``, ``sandbox``).
"""

from . import errors
from .limits import RateLimit
from .models import (
    CreatedRunner,
    HealthCheck,
    Runner,
    RunnerCredentials,
    RunnerHealth,
    RunnerKind,
    RunnerStatus,
    Secret,
)
from .provider import Capability, RunnerProvider
from .retry import RetryPolicy
from .vendors.kubiya import KubiyaProvider
from .vendors.soda import SodaProvider

__all__ = [
    "Capability",
    "CreatedRunner",
    "HealthCheck",
    "KubiyaProvider",
    "RateLimit",
    "RetryPolicy",
    "Runner",
    "RunnerCredentials",
    "RunnerHealth",
    "RunnerKind",
    "RunnerProvider",
    "RunnerStatus",
    "Secret",
    "SodaProvider",
    "errors",
]

__version__ = "0.1.0"
