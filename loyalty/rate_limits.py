"""Where Flask-Limiter keeps its counters, and what happens when Redis is not there.

Three stores:

- Redis (`REDIS_URL`), shared by every web process.
- The process's memory (`ThreadSafeMemoryStorage`): without Redis, and while Redis is unreachable
  (Flask-Limiter's in-memory fallback, `RATELIMIT_IN_MEMORY_FALLBACK_ENABLED`). A limit counted there
  multiplies by the number of processes: fine for the API's per-key request limit, not for a limit
  against guessing.
- The database (`DatabaseCounters`, table rate_limit_counters), for the guessing limits (sign-in,
  password reset, sign-up, the API's failed lookups) whenever the store at hand is the process's
  memory. Their key functions mark their keys with `SHARED_KEY_PREFIX`; `PerProcessOrDatabase` sends
  those to the database and the rest to memory. They are low-volume (most count failures only), so a
  row per key and window costs little, and they hold across processes with or without Redis.

`Limiter` wires this up and says in the log when Redis is lost and when it is back.

`ThreadSafeMemoryStorage` is limits' MemoryStorage made safe for threaded servers and cheaper to run:

- limits 5.8 can start one expiry timer twice when two threads count at the same moment; the losing
  request fails with "threads can only be started once" (a 500, seen under gunicorn gthread by
  bench/ingest.py; fixed upstream in alisaifee/limits#352, not released yet). Its first count of a
  key can also be lost to a thread reading the key at that moment. One lock around every read and
  write of the counters fixes both; it is never held for more than a dictionary update.
- Its timer ran every 10 ms, so a busy process started a hundred threads a second. Counters expire
  when read anyway (`MemoryStorage.get`), so the timer only frees memory: once a second is enough.
"""

import logging
import threading
import time
from contextlib import AbstractContextManager
from datetime import UTC, datetime, timedelta

import flask_limiter
import sqlalchemy as sa
from flask import Flask, has_request_context
from limits.storage import MemoryStorage, Storage
from limits.strategies import STRATEGIES
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

from loyalty.db import lock_sqlite_before_writing

EXPIRY_SWEEP_SECONDS = 1.0
# Starts the value a key function returns for a limit that must hold across processes.
SHARED_KEY_PREFIX = "shared:"
logger = logging.getLogger(__name__)


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


class DatabaseCounters(Storage):
    """Fixed-window counters in the rate_limit_counters table. Windows follow the wall clock
    (time.time), as Flask-Limiter's reset times do.

    A request never holds two of the pool's connections (that deadlocks the pool once as many requests
    do it at once as it has connections: tests/operations/test_connection_pool.py). So a read during a
    request goes through the request's own session, which sees what is committed; a count is written
    in a short transaction of its own, so it stands whatever the request does with its transaction, on
    a connection opened for it outside the pool (writes are rare: failures, sign-ups, reset requests)."""

    STORAGE_SCHEME = None

    def __init__(self, app: Flask) -> None:
        super().__init__()
        self.app = app
        self._writer: sa.Engine | None = None
        self._writer_lock = threading.Lock()

    @property
    def base_exceptions(self) -> type[Exception]:
        return SQLAlchemyError

    def incr(self, key: str, expiry: float, amount: int = 1) -> int:
        table = _table()
        now = _now()
        expires_at = now + timedelta(seconds=expiry)
        with self._writing() as connection:
            insert = (postgresql if connection.dialect.name == "postgresql" else sqlite).insert(table)
            window_ended = table.c.expires_at <= now
            statement = insert.values(key=key, count=amount, expires_at=expires_at).on_conflict_do_update(
                index_elements=[table.c.key],
                set_={"count": sa.case((window_ended, amount), else_=table.c.count + amount),
                      "expires_at": sa.case((window_ended, expires_at), else_=table.c.expires_at)},
            ).returning(table.c.count)
            count = connection.execute(statement).scalar_one()
        self._delete_ended_windows(now)
        return count

    def get(self, key: str) -> int:
        row = self._live_row(key)
        return row.count if row is not None else 0

    def get_expiry(self, key: str) -> float:
        row = self._live_row(key)
        return row.expires_at.timestamp() if row is not None else time.time()

    def check(self) -> bool:
        with self._writing() as connection:
            connection.execute(sa.select(1))
        return True

    def reset(self) -> int:
        with self._writing() as connection:
            return connection.execute(_table().delete()).rowcount

    def clear(self, key: str) -> None:
        table = _table()
        with self._writing() as connection:
            connection.execute(table.delete().where(table.c.key == key))

    def _live_row(self, key: str):
        table = _table()
        query = sa.select(table.c.count, table.c.expires_at).where(table.c.key == key, table.c.expires_at > _now())
        if has_request_context():
            from loyalty.extensions import db

            return db.session.execute(query).first()
        with self._writing() as connection:
            return connection.execute(query).first()

    def _delete_ended_windows(self, now: datetime) -> None:
        """Rows of windows that ended go here rather than in a job: each count pays for one indexed
        DELETE, and the table holds only live windows. Its own transaction, after the count's: two
        of them at once may wait on each other's rows, which must never cost a count (nor make
        Flask-Limiter think its storage is down); a failure is logged and left to the next count."""
        table = _table()
        try:
            with self._writing() as connection:
                connection.execute(table.delete().where(table.c.expires_at <= now))
        except SQLAlchemyError:
            logger.warning("could not delete ended rate-limit windows", exc_info=True)

    def _writing(self) -> AbstractContextManager[sa.Connection]:
        """A transaction on a connection of its own, outside the app's pool (see the class)."""
        if self._writer is None:
            with self._writer_lock:
                if self._writer is None:
                    self._writer = self._make_writer()
        return self._writer.begin()

    def _make_writer(self) -> sa.Engine:
        from loyalty.extensions import db

        with self.app.app_context():
            url = db.engine.url
        connect_args = self.app.config["SQLALCHEMY_ENGINE_OPTIONS"].get("connect_args", {})
        engine = sa.create_engine(url, poolclass=NullPool, connect_args=connect_args)
        if engine.dialect.name == "sqlite":
            lock_sqlite_before_writing(engine)
        return engine


class PerProcessOrDatabase(Storage):
    """The process's memory for most limits, the database for keys marked `SHARED_KEY_PREFIX`."""

    STORAGE_SCHEME = None

    def __init__(self, memory: MemoryStorage, database: DatabaseCounters) -> None:
        super().__init__()
        self.memory = memory
        self.database = database

    @property
    def base_exceptions(self) -> tuple[type[Exception], ...]:
        return (SQLAlchemyError,)

    def _store(self, key: str) -> Storage:
        # Flask-Limiter's keys read "LIMITER/<key function's value>/<scope>/<amount>/...".
        _, _, rest = key.partition("/")
        return self.database if rest.startswith(SHARED_KEY_PREFIX) else self.memory

    def incr(self, key: str, expiry: float, amount: int = 1) -> int:
        return self._store(key).incr(key, expiry, amount)

    def get(self, key: str) -> int:
        return self._store(key).get(key)

    def get_expiry(self, key: str) -> float:
        return self._store(key).get_expiry(key)

    def check(self) -> bool:
        return self.memory.check() and self.database.check()

    def reset(self) -> int:
        return (self.memory.reset() or 0) + (self.database.reset() or 0)

    def clear(self, key: str) -> None:
        self._store(key).clear(key)


class Limiter(flask_limiter.Limiter):
    """Flask-Limiter with our stores (see the module's docstring).

    - Without Redis, the configured in-process store is wrapped so that guessing limits count in the
      database.
    - With Redis, everything counts there. When a call to Redis fails, Flask-Limiter logs "Rate limit
      storage unreachable - falling back to in-memory storage" and counts in its fallback instead,
      which is made the same pair here (thread-safe memory, database for guessing limits); it asks
      Redis again after 1, 2, 4 ... 32 s, and `_check_request_limit` below logs when it is back.

    Flask-Limiter has no hook for its stores: this sets its private `_storage`, `_limiter`,
    `_fallback_storage`, `_fallback_limiter` and reads `_storage_dead` (Flask-Limiter 4.1, pinned by
    uv.lock; tests/operations/test_rate_limits.py and tests/auth/test_limiter_storage.py cover them).
    """

    def init_app(self, app: Flask) -> None:
        super().init_app(app)
        # A storage just configured is trusted until a call to it fails (Flask-Limiter keeps the flag
        # across init_app, so a later app would otherwise start out on a fallback it never needed).
        self._storage_dead = False
        strategy = STRATEGIES[self._strategy]
        database = DatabaseCounters(app)
        if isinstance(self._storage, MemoryStorage):
            self._storage = PerProcessOrDatabase(self._storage, database)
            self._limiter = strategy(self._storage)
        if self._in_memory_fallback_enabled:
            self._fallback_storage = PerProcessOrDatabase(ThreadSafeMemoryStorage(), database)
            self._fallback_limiter = strategy(self._fallback_storage)

    def _check_request_limit(self, callable_name: str | None = None, in_middleware: bool = True) -> None:
        was_falling_back = self._storage_dead
        super()._check_request_limit(callable_name, in_middleware)
        if was_falling_back and not self._storage_dead:
            logger.warning("rate-limit storage reachable again (%s): limits are shared by all processes again",
                           type(self._storage).__name__)


def _table() -> sa.Table:
    from loyalty.auth.models import RateLimitCounter

    return RateLimitCounter.__table__


def _now() -> datetime:
    return datetime.fromtimestamp(time.time(), UTC)
