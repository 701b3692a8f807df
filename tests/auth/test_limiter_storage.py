"""The in-process rate-limit counters (loyalty/rate_limits.py) under many threads at once."""

import sys
import threading
import time

from limits import RateLimitItemPerMinute
from limits.strategies import FixedWindowRateLimiter

from loyalty.extensions import limiter
from loyalty.rate_limits import PerProcessOrDatabase, ThreadSafeMemoryStorage

LIMIT = RateLimitItemPerMinute(10_000_000)
THREADS = 16


def test_the_app_counts_in_the_thread_safe_store_without_redis(app):
    if app.config["REDIS_URL"]:
        assert "redis" in app.config["RATELIMIT_STORAGE_URI"]
    else:
        assert isinstance(limiter.storage, PerProcessOrDatabase)
        assert isinstance(limiter.storage.memory, ThreadSafeMemoryStorage)


def hammer(storage, seconds: float) -> tuple[list[BaseException], int, int]:
    """THREADS threads hit one key for `seconds`, switching threads as often as the interpreter can,
    so the unlucky interleaving of a busy threaded server (two threads restarting the expiry timer
    together) comes up. Returns (errors, hits made, hits counted)."""
    strategy = FixedWindowRateLimiter(storage)
    errors: list[BaseException] = []
    made = [0] * THREADS
    barrier = threading.Barrier(THREADS)
    deadline = time.monotonic() + seconds

    def hit_many(index):
        barrier.wait(timeout=10)
        while time.monotonic() < deadline:
            try:
                strategy.hit(LIMIT, "key")
                made[index] += 1
            except Exception as error:  # collected: the test fails on any
                errors.append(error)

    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        threads = [threading.Thread(target=hit_many, args=(index,)) for index in range(THREADS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
    finally:
        sys.setswitchinterval(previous)
    counted = LIMIT.amount - strategy.get_window_stats(LIMIT, "key").remaining
    return errors, sum(made), counted


def test_threads_hitting_at_once_are_all_counted_and_none_fails():
    errors, made, counted = hammer(ThreadSafeMemoryStorage("loyalty-memory://"), seconds=1.5)
    assert errors == []
    assert made > 1_000
    assert counted == made
