"""Client-side rate limits: the public names (see :mod:`runnerhub._limits` for the invariant).

``RedisLimiter`` lives in :mod:`runnerhub._redis` and needs the optional
``redis`` package; it is imported only when asked for. Both limiters build on
:mod:`runnerhub._limits`, so neither module imports the other.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._limits import (
    Bucket,
    BucketPaused,
    Budget,
    Limiter,
    LocalLimiter,
    RateLimit,
    Slot,
    WindowLog,
    bucket_scope,
    shared_local_limiter,
)

if TYPE_CHECKING:
    from ._redis import RedisLimiter

__all__ = [
    "Bucket",
    "BucketPaused",
    "Budget",
    "Limiter",
    "LocalLimiter",
    "RateLimit",
    "RedisLimiter",
    "Slot",
    "WindowLog",
    "bucket_scope",
    "shared_local_limiter",
]


def __getattr__(name: str) -> Any:
    # RedisLimiter needs the optional ``redis`` package; import it only when asked for.
    if name == "RedisLimiter":
        from ._redis import RedisLimiter  # noqa: PLC0415 - optional dependency, loaded on demand

        return RedisLimiter
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
