"""Short-lived per-process copies of the few rows every API request reads: the program (settings,
tiers, earning rules) and the API clients. Reading them from the database on every call was a third
of a sale's statements (bench/profile_sale.py).

A web process keeps a copy for `HOT_CACHE_SECONDS`. A change committed through this process clears
its copies at once; other processes pick it up within `HOT_CACHE_SECONDS` (so a revoked key or an
edited earning rule takes effect everywhere within that time). The values kept are plain frozen
dataclasses, never ORM instances, so no session's state is shared between requests or threads.
"""

import threading
import time
from collections.abc import Callable
from itertools import chain
from typing import TypeVar

import sqlalchemy as sa
from flask import current_app, has_app_context
from sqlalchemy.orm import Session

T = TypeVar("T")
EXTENSION = "loyalty.hot_cache"
# Model classes whose committed change clears the cache (registered by the modules that cache them).
WATCHED: set[type] = set()


class HotCache:
    def __init__(self) -> None:
        # key -> (time.monotonic() when loaded, value)
        self._entries: dict[object, tuple[float, object]] = {}
        self._lock = threading.Lock()

    def get(self, key: object, ttl: float, load: Callable[[], T]) -> T:
        """The kept value, or `load()` kept for `ttl` seconds (a None result is not kept)."""
        now = time.monotonic()
        found = self._entries.get(key)
        if found is not None and now - found[0] < ttl:
            return found[1]
        value = load()
        if ttl > 0 and value is not None:
            with self._lock:
                self._entries[key] = (now, value)
        return value

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


def hot_cache() -> HotCache | None:
    """The application's cache, or None outside an application context (nothing is kept then)."""
    if not has_app_context():
        return None
    return current_app.extensions.setdefault(EXTENSION, HotCache())


def cached(key: object, load: Callable[[], T]) -> T:
    cache = hot_cache()
    if cache is None:
        return load()
    return cache.get(key, current_app.config["HOT_CACHE_SECONDS"], load)


def watch(*models: type) -> None:
    WATCHED.update(models)


@sa.event.listens_for(Session, "after_flush")
def _note_watched_changes(session: Session, _flush_context) -> None:
    if WATCHED and any(type(obj) in WATCHED for obj in chain(session.new, session.dirty, session.deleted)):
        session.info["loyalty.hot_cache_stale"] = True


@sa.event.listens_for(Session, "do_orm_execute")
def _note_watched_statements(state) -> None:
    """Bulk UPDATE/INSERT/DELETE statements on a watched model (session.execute(sa.update(Tier)...))."""
    if (state.is_update or state.is_delete or state.is_insert) and state.bind_mapper is not None \
            and state.bind_mapper.class_ in WATCHED:
        state.session.info["loyalty.hot_cache_stale"] = True


@sa.event.listens_for(Session, "after_commit")
def _clear_after_commit(session: Session) -> None:
    # Cleared after the commit, not the flush: a copy loaded in between would hold the old rows.
    if session.info.pop("loyalty.hot_cache_stale", False) and (cache := hot_cache()) is not None:
        cache.clear()
