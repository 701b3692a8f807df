"""Flask-Limiter's counters without Redis (the embedded default): limits' MemoryStorage, made safe for
threaded servers and cheaper to run.

- limits 5.8 can start one expiry timer twice when two threads count at the same moment; the losing
  request fails with "threads can only be started once" (a 500, seen under gunicorn gthread by
  bench/ingest.py; fixed upstream in alisaifee/limits#352, not released yet). Its first count of a
  key can also be lost to a thread reading the key at that moment. One lock around every read and
  write of the counters fixes both; it is never held for more than a dictionary update.
- Its timer ran every 10 ms, so a busy process started a hundred threads a second. Counters expire
  when read anyway (`MemoryStorage.get`), so the timer only frees memory: once a second is enough.
"""

import threading

from limits.storage import MemoryStorage

EXPIRY_SWEEP_SECONDS = 1.0


class ThreadSafeMemoryStorage(MemoryStorage):
    STORAGE_SCHEME = ["loyalty-memory"]

    def __init__(self, *args, **kwargs) -> None:
        self._counters_lock = threading.RLock()
        super().__init__(*args, **kwargs)

    def incr(self, key: str, expiry: float, amount: int = 1) -> int:
        with self._counters_lock:
            return super().incr(key, expiry, amount)

    def decr(self, key: str, amount: int = 1) -> int:
        with self._counters_lock:
            return super().decr(key, amount)

    def get(self, key: str) -> int:
        with self._counters_lock:
            return super().get(key)

    def get_expiry(self, key: str) -> float:
        with self._counters_lock:
            return super().get_expiry(key)

    def clear(self, key: str) -> None:
        with self._counters_lock:
            super().clear(key)

    # The two name-mangled private methods of MemoryStorage, replaced.
    def _MemoryStorage__expire_events(self) -> None:
        with self._counters_lock:
            MemoryStorage._MemoryStorage__expire_events(self)

    def _MemoryStorage__schedule_expiry(self) -> None:
        with self._counters_lock:
            if not self.timer.is_alive():
                self.timer = threading.Timer(EXPIRY_SWEEP_SECONDS, self._MemoryStorage__expire_events)
                self.timer.daemon = True
                self.timer.start()
