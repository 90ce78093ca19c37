"""The sliding-window log, on a simulated clock."""

from __future__ import annotations

from email.utils import parsedate_to_datetime

import pytest

from runnerhub.sandbox._window import Limiter, Window, format_seconds, retry_after_value


def test_window_admits_at_most_limit_in_any_window() -> None:
    """No window of ``period`` seconds, wherever it starts, holds more than ``limit``."""
    limiter = Limiter()
    admitted = [t / 100 for t in range(300) if limiter.acquire("k", [(5, 0.5)], t / 100) == 0.0]
    for start in admitted:
        assert sum(1 for t in admitted if start <= t < start + 0.5) <= 5
    # 3 s at 5 per 0.5 s: the log admits exactly 30, never the 2N of a reset bucket.
    assert len(admitted) == 30


def test_window_entry_leaves_exactly_one_period_later() -> None:
    """A request ``period`` after the oldest one is admitted; a hair earlier is not."""
    window = Window(2, 1.0)
    window.add(10.0)
    window.add(10.5)
    assert window.wait(10.9) == pytest.approx(0.1)
    assert window.wait(11.0) == 0.0
    assert window.remaining(11.0) == 1


def test_wait_for_several_slots() -> None:
    """An entry of weight ``cost`` waits for ``cost`` free slots; one above the limit never fits."""
    window = Window(10, 1.0)
    for t in (0.0, 0.2, 0.4):
        for _ in range(3):
            window.add(t)
    assert window.wait(0.5) == 0.0
    assert window.wait(0.5, cost=1) == 0.0
    # 9 in the log: 5 more fit once the entries of 0.0 and 0.2 are gone.
    assert window.wait(0.5, cost=5) == pytest.approx(0.7)
    assert window.wait(1.2, cost=5) == 0.0
    assert window.wait(0.5, cost=11) == float("inf")


def test_rejected_requests_do_not_count() -> None:
    """Hammering a full window does not push back the moment it frees up."""
    limiter = Limiter()
    assert limiter.acquire("k", [(1, 1.0)], 0.0) == 0.0
    for t in (0.1, 0.2, 0.9):
        assert limiter.acquire("k", [(1, 1.0)], t) > 0.0
    assert limiter.acquire("k", [(1, 1.0)], 1.0) == 0.0


def test_limiter_needs_room_in_every_window() -> None:
    """With a burst window, the wait is the longest of the full windows."""
    limiter = Limiter()
    specs = [(3, 10.0), (2, 1.0)]
    assert limiter.acquire("k", specs, 0.0) == 0.0
    assert limiter.acquire("k", specs, 0.1) == 0.0
    assert limiter.acquire("k", specs, 0.2) == pytest.approx(0.8)
    assert limiter.acquire("k", specs, 1.0) == 0.0
    assert limiter.acquire("k", specs, 1.1) == pytest.approx(8.9)


def test_unenforced_limiter_records_everything() -> None:
    """With enforcement off every request is admitted and the wait reflects the overflow."""
    limiter = Limiter()
    for t in (0.0, 0.1, 0.2):
        assert limiter.acquire("k", [(1, 1.0)], t, enforce=False) == 0.0
    window = limiter.windows("k", [(1, 1.0)])[0]
    assert window.count(0.3) == 3
    assert window.wait(0.3) == pytest.approx(0.9)


def test_retry_after_styles() -> None:
    """Decimal rounds up to milliseconds, int to whole seconds, date is IMF-fixdate."""
    assert retry_after_value(0.2741, "decimal", 0.0) == "0.275"
    assert format_seconds(2.0) == "2"
    assert format_seconds(0.275) == "0.275"
    assert retry_after_value(0.2, "int", 0.0) == "1"
    assert retry_after_value(1.5, "int", 0.0) == "2"
    date = retry_after_value(1.5, "date", 1_700_000_000.2)
    assert date.endswith(" GMT")
    assert parsedate_to_datetime(date).timestamp() == 1_700_000_002
