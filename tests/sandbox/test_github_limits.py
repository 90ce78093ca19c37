"""GitHub's primary budget and secondary limits, on a simulated clock."""

from __future__ import annotations

import attrs
import pytest

from runnerhub.sandbox._common import Settings
from runnerhub.sandbox._github_limits import Budget, GitHubBudgets, GitHubLimits


def budgets(time_scale: float = 1.0, *, enforce: bool = True, **limits: int) -> GitHubBudgets:
    """Budgets over a fresh limiter."""
    return GitHubBudgets(
        GitHubLimits(**limits), Settings(time_scale=time_scale, enforce_limits=enforce)
    )


def test_primary_is_a_fixed_window() -> None:
    """The window opens at the first request; the whole budget returns when it closes."""
    b = budgets()
    assert b.budget("k", 3, 5.0) == Budget(3, 0, 3600.0)
    for t in (10.0, 20.0, 30.0):
        b.charge("k", 3, t)
    assert b.budget("k", 3, 40.0) == Budget(3, 3, 3570.0)
    assert b.budget("k", 3, 40.0).remaining == 0
    # A sliding log would return one slot at 3610 s; the fixed window returns all three.
    assert b.budget("k", 3, 3609.999).reset_after == pytest.approx(0.001)
    assert b.budget("k", 3, 3610.0) == Budget(3, 0, 3600.0)
    b.charge("k", 3, 4000.0)
    assert b.budget("k", 3, 4000.0) == Budget(3, 1, 3600.0)
    assert b.budget("other", 3, 4000.0).used == 0


def test_primary_window_follows_time_scale_and_overflows_when_not_enforced() -> None:
    """``time_scale`` shortens the hour; charges past the limit are counted, remaining stays 0."""
    b = budgets(3600.0)
    for t in (0.0, 0.1, 0.2):
        b.charge("k", 2, t)
    assert b.budget("k", 2, 0.5) == Budget(2, 3, 0.5)
    assert b.budget("k", 2, 0.5).remaining == 0
    assert b.budget("k", 2, 1.0).used == 0


def test_points_weigh_mutations_five_times() -> None:
    """Two mutations and two reads fill 12 points; the next read waits for the oldest to leave."""
    b = budgets(points_per_minute=12)
    assert b.admit("k", mutation=True, now=0.0) == 0.0
    assert b.admit("k", mutation=True, now=1.0) == 0.0
    assert b.admit("k", mutation=True, now=2.0) == 58.0
    assert b.admit("k", mutation=False, now=2.0) == 0.0
    assert b.admit("k", mutation=False, now=3.0) == 0.0
    assert b.admit("k", mutation=False, now=4.0) == 56.0
    # Refusals are not charged: the first mutation's points free at 60 s.
    assert b.admit("k", mutation=True, now=60.0) == 0.0
    assert b.admit("j", mutation=True, now=4.0) == 0.0


def test_content_creation_counts_mutations_only() -> None:
    """``content_per_minute`` refuses the third mutation in a minute; reads pass meanwhile."""
    b = budgets(10.0, content_per_minute=2)
    assert b.admit("k", mutation=True, now=0.0) == 0.0
    assert b.admit("k", mutation=True, now=1.0) == 0.0
    assert b.admit("k", mutation=True, now=1.0) == pytest.approx(5.0)
    assert b.admit("k", mutation=False, now=1.0) == 0.0
    assert b.admit("k", mutation=True, now=6.0) == 0.0


def test_content_per_hour() -> None:
    """The hourly content window binds once the minute windows have room again."""
    b = budgets(content_per_hour=2)
    assert b.admit("k", mutation=True, now=0.0) == 0.0
    assert b.admit("k", mutation=True, now=100.0) == 0.0
    assert b.admit("k", mutation=True, now=200.0) == 3400.0


def test_concurrency() -> None:
    """With ``concurrency`` requests in flight the next waits a scaled second, until one leaves."""
    b = budgets(2.0, concurrency=2)
    b.enter("k")
    b.enter("k")
    assert b.in_flight("k") == 2
    assert b.admit("k", mutation=False, now=0.0) == 0.5
    assert b.admit("j", mutation=False, now=0.0) == 0.0
    b.leave("k")
    assert b.admit("k", mutation=False, now=0.0) == 0.0
    b.leave("k")
    assert b.in_flight("k") == 0


def test_not_enforced_admits_everything() -> None:
    """With enforcement off every request is admitted and still recorded."""
    limits = GitHubLimits(points_per_minute=5, concurrency=1)
    settings = Settings(enforce_limits=False)
    b = GitHubBudgets(limits, settings)
    b.enter("k")
    for t in (0.0, 1.0, 2.0):
        assert b.admit("k", mutation=True, now=t) == 0.0
    # The same windows, enforced: all three mutations are on the log.
    enforced = GitHubBudgets(limits, attrs.evolve(settings, enforce_limits=True))
    assert enforced.admit("k", mutation=False, now=3.0) == 59.0


@pytest.mark.parametrize(
    ("limits", "match"),
    [
        ({"status": 500}, "403 or 429"),
        ({"points_per_minute": 4}, "points_per_minute"),
        ({"concurrency": 0}, "concurrency"),
        ({"content_per_hour": 0}, "content_per_hour"),
        ({"primary": 0}, "primary_limit"),
    ],
)
def test_limits_are_checked(limits: dict[str, int], match: str) -> None:
    """Nonsense limits fail at construction."""
    with pytest.raises(ValueError, match=match):
        GitHubLimits(**limits)
