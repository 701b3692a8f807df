"""A settable clock for the app (`app.config["CLOCK"]`), so holds, expiry and tiers can be tested in
minutes of test time over years of program time."""

import threading
from datetime import UTC, datetime, timedelta

DEFAULT_NOW = datetime(2026, 11, 22, 2, 0, tzinfo=UTC)


class SettableClock:
    def __init__(self, now: datetime = DEFAULT_NOW):
        self._now = now
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        with self._lock:
            return self._now

    def set(self, now: datetime) -> None:
        with self._lock:
            self._now = now

    def advance(self, **delta) -> datetime:
        with self._lock:
            self._now += timedelta(**delta)
            return self._now
