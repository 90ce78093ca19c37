"""The sliding-window log: the invariant, utilisation, pauses, and the async bucket."""

from __future__ import annotations

import asyncio
import heapq
import math
import random
import time

import pytest

from runnerhub.limits import (
    Bucket,
    BucketPaused,
    Budget,
    LocalLimiter,
    RateLimit,
    WindowLog,
    bucket_scope,
    shared_local_limiter,
)


def max_in_any_window(arrivals: list[float], period: float) -> int:
    """Most arrivals inside any half-open window (t - period, t]."""
    arrivals = sorted(arrivals)
    best = start = 0
    for end, t in enumerate(arrivals):
        while arrivals[start] <= t - period:
            start += 1
        best = max(best, end - start + 1)
    return best


def simulate(
    limits: tuple[RateLimit, ...],
    *,
    workers: int,
    duration: float,
    max_latency: float,
    seed: int,
) -> list[float]:
    """Run ``workers`` closed-loop clients against one log on a simulated clock.

    Each request arrives at the vendor somewhere between send and response, at
    random. Returns the vendor-side arrival times.
    """
    rng = random.Random(seed)
    log = WindowLog(limits)
    arrivals: list[float] = []
    # Events: (time, kind, worker) with kind 0 = release, 1 = try to send.
    events: list[tuple[float, int, int]] = [(0.0, 1, w) for w in range(workers)]
    waiting: list[int] = []
    while events:
        now, kind, worker = heapq.heappop(events)
        if now > duration:
            break
        if kind == 0:
            log.release(now)
            heapq.heappush(events, (now, 1, worker))
            for other in waiting:
                heapq.heappush(events, (now, 1, other))
            waiting.clear()
            continue
        wait = log.try_acquire(now)
        if wait == 0.0:
            latency = rng.uniform(0.0, max_latency)
            arrivals.append(now + rng.uniform(0.0, latency))
            heapq.heappush(events, (now + latency, 0, worker))
        elif math.isinf(wait):
            waiting.append(worker)
        else:
            heapq.heappush(events, (now + wait, 1, worker))
    return arrivals


@pytest.mark.parametrize(
    ("limit", "workers"), [((60, 60.0), 8), ((10, 60.0), 3), ((1000, 60.0), 64)]
)
def test_never_more_than_n_in_any_window(limit: tuple[int, float], workers: int) -> None:
    """No vendor-side window of the period ever sees more than N arrivals, with jitter."""
    n, period = limit
    arrivals = simulate(
        (RateLimit(n, period),), workers=workers, duration=600, max_latency=2.0, seed=n
    )
    assert max_in_any_window(arrivals, period) <= n


@pytest.mark.parametrize("limit", [(60, 60.0), (10, 60.0), (1000, 60.0)])
def test_sustains_at_least_90_percent(limit: tuple[int, float]) -> None:
    """A long job sustains at least 90% of the documented rate (fast responses)."""
    n, period = limit
    duration = 20 * period
    arrivals = simulate(
        (RateLimit(n, period),), workers=16, duration=duration, max_latency=0.05, seed=1
    )
    assert len(arrivals) >= 0.9 * n * duration / period


def test_burst_goes_out_at_once() -> None:
    """The first N requests need no wait at all: a handful of calls goes out together."""
    log = WindowLog((RateLimit(10, 60),))
    assert [log.try_acquire(0.0) for _ in range(10)] == [0.0] * 10
    assert math.isinf(log.try_acquire(0.0))  # all in flight: only a release helps


def test_wait_counts_from_the_response() -> None:
    """A slot frees one period after its response returned, not after it was sent."""
    log = WindowLog((RateLimit(1, 10),))
    assert log.try_acquire(0.0) == 0.0
    log.release(3.0)
    assert log.try_acquire(5.0) == pytest.approx(8.0)
    assert log.try_acquire(13.0) == 0.0


def test_two_windows_both_hold() -> None:
    """With 100/60 s and 20/10 s, the tighter window in force decides."""
    arrivals = simulate(
        (RateLimit(100, 60), RateLimit(20, 10)), workers=10, duration=300, max_latency=0.5, seed=3
    )
    assert max_in_any_window(arrivals, 60) <= 100
    assert max_in_any_window(arrivals, 10) <= 20


def test_pause_blocks_until_it_ends() -> None:
    """A pause (after a 429) refuses every slot until it ends, then the window decides."""
    log = WindowLog((RateLimit(5, 1),))
    log.pause_until(4.0)
    assert log.try_acquire(1.0) == pytest.approx(3.0)
    assert log.try_acquire(4.0) == 0.0


def test_rate_limit_validates() -> None:
    """A limit of zero requests or a non-positive period is refused."""
    with pytest.raises(ValueError, match="max_requests"):
        RateLimit(0, 1)
    with pytest.raises(ValueError, match="period_seconds"):
        RateLimit(1, 0)


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_local_limiter_waits_and_releases() -> None:
    """Slots queue when the window is full and are released even on cancellation."""
    limiter = LocalLimiter()
    bucket = Bucket("test:x:get", (RateLimit(2, 0.2),))
    started = time.monotonic()
    async with limiter.slot(bucket), limiter.slot(bucket):
        assert limiter.in_flight(bucket) == 2
        blocked = asyncio.ensure_future(limiter.slot(bucket).__aenter__())
        await asyncio.sleep(0.01)
        assert not blocked.done()
        blocked.cancel()
        with pytest.raises(asyncio.CancelledError):
            await blocked
    assert limiter.in_flight(bucket) == 0
    async with limiter.slot(bucket):  # waits for the window to pass
        pass
    assert time.monotonic() - started >= 0.2
    await limiter.aclose()


async def test_local_limiter_pause_applies_to_all_callers() -> None:
    """A pause on a bucket holds back every later caller of that bucket."""
    async with LocalLimiter() as limiter:
        bucket = Bucket("test:x:list", (RateLimit(100, 1),))
        await limiter.pause(bucket, 0.1)
        started = time.monotonic()
        await asyncio.gather(*(_one(limiter, bucket) for _ in range(3)))
        assert time.monotonic() - started >= 0.09


async def _one(limiter: LocalLimiter, bucket: Bucket) -> None:
    async with limiter.slot(bucket):
        pass


async def test_paced_bucket_uses_aiolimiter() -> None:
    """With ``burst`` set, requests past the burst are spread at the sustained rate."""
    limiter = LocalLimiter()
    bucket = Bucket("test:x:paced", (RateLimit(20, 1.0, burst=2),))
    started = time.monotonic()
    for _ in range(4):
        async with limiter.slot(bucket):
            pass
    # Two at once, then one per 1/20 s: at least ~0.1 s for the next two.
    assert time.monotonic() - started >= 0.08


async def test_shared_limiter_is_per_event_loop() -> None:
    """Providers in one event loop share one limiter; it is created on first use."""
    assert shared_local_limiter() is shared_local_limiter()


def test_fake_clock_drives_the_async_bucket() -> None:
    """The async bucket reads its injected clock (tests can move time by hand)."""
    clock = FakeClock()
    limiter = LocalLimiter(clock=clock)
    bucket = Bucket("test:x:clock", (RateLimit(1, 10),))

    async def run() -> None:
        async with limiter.slot(bucket):
            pass
        clock.now = 10.5
        async with limiter.slot(bucket):  # the window passed on the fake clock: no wait
            pass

    asyncio.run(run())


# -- the fast path, withdrawals, pauses and budgets on a simulated clock -------


def test_withdraw_gives_the_place_back_without_a_stamp() -> None:
    """A slot whose request was never sent leaves no mark in the window."""
    log = WindowLog((RateLimit(1, 10),))
    assert log.try_acquire(0.0) == 0.0
    log.withdraw()
    assert log.in_flight == 0
    assert log.try_acquire(0.1) == 0.0  # no stamp: room at once


def test_closed_for_reports_only_what_the_vendor_imposed() -> None:
    """A pause counts as closed; a full window of our own does not."""
    log = WindowLog((RateLimit(1, 10),))
    log.try_acquire(0.0)
    log.release(0.0)
    assert log.closed_for(1.0) == 0.0
    assert log.try_acquire(1.0) > 0.0  # full, but ours
    log.pause_until(100.0)
    assert log.closed_for(40.0) == pytest.approx(60.0)


def test_budget_admits_remaining_minus_in_flight_until_the_reset() -> None:
    """Told 3 remain with one in flight, the log admits 2 more, then none until the reset."""
    log = WindowLog(())
    assert log.try_acquire(0.0) == 0.0  # in flight when the budget arrives
    log.set_budget(3, until=5.0)
    assert log.try_acquire(0.1) == 0.0
    assert log.try_acquire(0.2) == 0.0
    assert log.try_acquire(0.3) == pytest.approx(4.7, abs=1e-3)
    assert log.closed_for(0.3) == pytest.approx(4.7)
    assert log.try_acquire(5.0) == 0.0  # reset passed: the budget no longer applies


def test_budget_keeps_the_smaller_count_within_one_window() -> None:
    """An answer that arrives late with a larger remaining does not widen the budget."""
    log = WindowLog(())
    log.set_budget(1, until=5.0)
    log.set_budget(9, until=5.2)  # same window (clock jitter), stale count
    assert log.try_acquire(0.0) == 0.0
    assert log.try_acquire(0.0) > 0.0
    log.set_budget(9, until=20.0)  # a new window
    assert log.try_acquire(6.0) == 0.0


def test_a_reset_restores_the_announced_limit_not_more() -> None:
    """After the reset the log admits the window's limit until the new window announces itself;
    with answers in flight it waits for them, without any it waits out the assumed window."""
    log = WindowLog(())
    log.set_budget(0, until=5.0, limit=3, now=0.0)  # spent; the window holds 3, resets at 5
    assert log.closed_for(1.0) == pytest.approx(4.0)
    assert [log.try_acquire(5.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert log.try_acquire(5.0) == math.inf  # an answer will say more
    assert log.closed_for(5.0) == 0.0
    for _ in range(3):
        log.release(5.1)  # answered without a budget
    # No announcement: the limit holds for as long as the longest window announced (5 s).
    assert log.try_acquire(5.2) == pytest.approx(4.8, abs=1e-3)
    assert log.closed_for(5.2) == pytest.approx(4.8)
    assert log.try_acquire(10.0) == 0.0  # the next assumed window


def test_the_new_window_replaces_the_assumed_one_and_late_answers_are_ignored() -> None:
    """An answer from the window that ended changes nothing; one from the new window rules."""
    log = WindowLog(())
    log.set_budget(1, until=5.0, limit=3, now=0.0)
    assert log.try_acquire(5.0) == 0.0  # the reset passed: assumed window of 3
    log.set_budget(0, until=5.0, limit=3, now=4.9)  # late answer from the old window
    log.set_budget(0, until=5.1, limit=3, now=5.0)  # the old reset again, clock jitter
    assert log.try_acquire(5.0) == 0.0
    log.release(5.1)
    log.set_budget(1, until=65.0, limit=3, now=5.1)  # the new window: one left, one in flight
    assert log.try_acquire(5.2) == pytest.approx(59.8, abs=1e-3)
    log.set_budget(2, until=4.0, limit=3, now=5.2)  # its reset has passed: ignored
    assert log.closed_for(5.2) == pytest.approx(59.8)


async def test_try_enter_is_the_fast_path_and_enter_the_waiting_one() -> None:
    """try_enter takes a free slot without awaiting and returns None when full."""
    clock = FakeClock()
    limiter = LocalLimiter(clock=clock)
    bucket = Bucket("test:x:fast", (RateLimit(1, 10),))
    slot = limiter.try_enter(bucket)
    assert slot is not None
    assert limiter.try_enter(bucket) is None
    slot.release()
    clock.now = 11.0
    again = await limiter.enter(bucket)
    again.withdraw()
    assert limiter.in_flight(bucket) == 0


async def test_enter_refuses_a_pause_longer_than_max_wait() -> None:
    """enter(max_wait=) raises BucketPaused at once when the bucket is paused for longer."""
    clock = FakeClock()
    limiter = LocalLimiter(clock=clock)
    bucket = Bucket("test:x:paused", (RateLimit(5, 10),))
    await limiter.pause(bucket, 3600)
    with pytest.raises(BucketPaused) as info:
        await limiter.enter(bucket, max_wait=60)
    assert info.value.seconds == pytest.approx(3600)
    limiter.set_budget(bucket, Budget(0, 7200))
    with pytest.raises(BucketPaused) as info:
        await limiter.enter(bucket, max_wait=60)
    assert info.value.seconds == pytest.approx(7200)


def test_paced_buckets_have_no_fast_path() -> None:
    """With burst= set, try_enter declines so that the pacer is always awaited."""
    limiter = LocalLimiter(clock=FakeClock())
    assert limiter.try_enter(Bucket("test:x:paced", (RateLimit(5, 1, burst=1),))) is None


def test_bucket_scope_normalises_the_base_url() -> None:
    """Scheme and host case, default ports and trailing slashes do not split a bucket."""
    same = {
        bucket_scope("v", url, "key")
        for url in ("https://HOST", "https://host:443/", "https://host/", "HTTPS://Host")
    }
    assert len(same) == 1
    assert bucket_scope("v", "https://host:8443", "key") not in same
    assert bucket_scope("v", "https://host/api", "key") not in same
    assert bucket_scope("v", "https://host", "other") not in same
    assert "key" not in bucket_scope("v", "https://host", "key")
