"""What a fleet snapshot says: counts, offline runners and version drift.

Pure analytics over the runners an inventory collected (see
:meth:`runnerhub.RunnerHub.inventory`); no I/O. Runners are told apart by
``(account, id)``: ids are unique only within an account.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import attrs

from . import errors
from ._serialize import inventory_to_json
from .models import Runner, RunnerStatus

__all__ = ["HealthFailure", "Inventory", "VersionDrift"]

_VERSION_NUMBERS = re.compile(r"\d+")


@attrs.frozen
class HealthFailure:
    """A health call that failed; the runner stays in the inventory as UNKNOWN."""

    account: str
    runner_id: str
    error: errors.RunnerHubError


@attrs.frozen
class VersionDrift:
    """A runner whose component version is older than the newest seen for its vendor."""

    runner: Runner
    component: str
    version: str
    newest: str


def _version_key(version: str) -> tuple[int, ...] | None:
    numbers = _VERSION_NUMBERS.findall(version)
    return tuple(int(n) for n in numbers) if numbers else None


@attrs.frozen
class Inventory:
    """A snapshot of the fleet.

    Attributes:
        runners: Every runner received, in account order.
        errors: Accounts that failed, by label; their runners are absent.
        health_failures: Health calls that failed (those runners are UNKNOWN).
        accounts: Every account label asked for, failed ones included.
        taken_at: When the snapshot started (UTC).
        duration_seconds: How long it took.
    """

    runners: tuple[Runner, ...]
    errors: Mapping[str, errors.RunnerHubError]
    accounts: tuple[str, ...]
    taken_at: datetime
    duration_seconds: float
    health_failures: tuple[HealthFailure, ...] = ()

    @property
    def complete(self) -> bool:
        """True when no account failed."""
        return not self.errors

    def by_account(self) -> dict[str, int]:
        """Runner counts per account label (failed accounts count 0)."""
        counts = dict.fromkeys(self.accounts, 0)
        counts.update(Counter(r.account for r in self.runners))
        return counts

    def by_provider(self) -> dict[str, int]:
        """Runner counts per vendor."""
        return dict(Counter(r.provider for r in self.runners))

    def by_status(self) -> dict[str, int]:
        """Runner counts per status value."""
        return dict(Counter(r.status.value for r in self.runners))

    def by_kind(self) -> dict[str, int]:
        """Runner counts per kind value."""
        return dict(Counter(r.kind.value for r in self.runners))

    def offline(self) -> tuple[Runner, ...]:
        """Runners reported offline."""
        return tuple(r for r in self.runners if r.status is RunnerStatus.OFFLINE)

    def newest_versions(self) -> dict[tuple[str, str], str]:
        """The newest version seen per (vendor, component), numerically compared."""
        newest: dict[tuple[str, str], tuple[tuple[int, ...], str]] = {}
        for runner in self.runners:
            for component, version in runner.versions.items():
                key = _version_key(version)
                if key is None:
                    continue
                slot = (runner.provider, component)
                if slot not in newest or key > newest[slot][0]:
                    newest[slot] = (key, version)
        return {slot: version for slot, (_, version) in newest.items()}

    def version_drift(self) -> tuple[VersionDrift, ...]:
        """Runner components older than the newest version seen for that vendor."""
        newest = self.newest_versions()
        keys = {slot: _version_key(version) for slot, version in newest.items()}
        drift = []
        for runner in self.runners:
            for component, version in runner.versions.items():
                key = _version_key(version)
                best = keys.get((runner.provider, component))
                if key is not None and best is not None and key < best:
                    drift.append(
                        VersionDrift(
                            runner, component, version, newest[(runner.provider, component)]
                        )
                    )
        return tuple(drift)

    def summary(self) -> dict[str, Any]:
        """The counts a fleet owner asks first, as plain JSON-ready data."""
        return {
            "taken_at": self.taken_at.isoformat(),
            "duration_seconds": round(self.duration_seconds, 3),
            "runners": len(self.runners),
            "accounts": self.by_account(),
            "providers": self.by_provider(),
            "statuses": self.by_status(),
            "kinds": self.by_kind(),
            "offline": len(self.offline()),
            # Ids are unique per account only: two accounts' "r1" are two runners.
            "version_drift": len({(d.runner.account, d.runner.id) for d in self.version_drift()}),
            "newest_versions": {
                f"{vendor}/{component}": version
                for (vendor, component), version in sorted(self.newest_versions().items())
            },
            "failed_accounts": {label: str(error) for label, error in self.errors.items()},
            "health_failures": len(self.health_failures),
        }

    def to_json(self) -> dict[str, Any]:
        """The whole snapshot as JSON-ready data; vendor payloads and secrets are left out."""
        return inventory_to_json(self)
