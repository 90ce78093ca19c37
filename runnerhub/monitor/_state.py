"""What the monitor knows of one account: immutable values, replaced on every change."""

from __future__ import annotations

import enum
from datetime import datetime

import attrs

from .. import errors
from ..fleet import HealthFailure
from ..models import Runner

__all__ = ["AccountState", "AccountStatus"]


class AccountState(enum.Enum):
    """Where an account stands in the monitor."""

    PENDING = "pending"
    """Not tried yet."""
    UP = "up"
    """The last refresh succeeded."""
    STALE = "stale"
    """The last refresh failed; the runners are those of the last good one."""
    DOWN = "down"
    """Every refresh so far failed; no runners are known."""


@attrs.frozen
class AccountStatus:
    """One account as the monitor last saw it.

    Attributes:
        account: The account label.
        provider: The vendor.
        runners: The runners of the last successful refresh, with the statuses
            of the last health pass applied where there was one.
        up: The last refresh succeeded.
        tried: At least one refresh finished, successfully or not.
        last_success: When the last successful refresh started (UTC).
        last_attempt: When the last refresh started (UTC).
        error: The last refresh's error, if it failed.
        health_checked_at: When the last health pass finished (UTC).
        health_failures: Health calls of the last pass that failed.
        list_seconds: Seconds between listings the budget allows.
        health_seconds: Seconds between health passes (``inf``: none).
    """

    account: str
    provider: str
    runners: tuple[Runner, ...] = ()
    up: bool = False
    tried: bool = False
    last_success: datetime | None = None
    last_attempt: datetime | None = None
    error: errors.RunnerHubError | None = None
    health_checked_at: datetime | None = None
    health_failures: tuple[HealthFailure, ...] = ()
    list_seconds: float = 0.0
    health_seconds: float = 0.0

    @property
    def state(self) -> AccountState:
        """Pending, up, stale (failed, last good data kept) or down (failed, no data)."""
        if not self.tried:
            return AccountState.PENDING
        if self.up:
            return AccountState.UP
        return AccountState.STALE if self.last_success is not None else AccountState.DOWN

    @property
    def stale(self) -> bool:
        """The runners shown are older than the last refresh, which failed."""
        return self.state is AccountState.STALE
