"""Declarative base, constraint naming convention and the column types the whole schema shares; the
engine setup that makes SQLite, the embedded default, as safe under concurrent writers as PostgreSQL."""

from datetime import UTC, datetime

import flask_sqlalchemy
import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, mapped_column, registry
from sqlalchemy.sql.selectable import GenerativeSelect

from loyalty.clock import utcnow

# Stable constraint names, so migrations can name what they alter on every backend.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(sa.TypeDecorator):
    """Timezone-aware UTC in and out, on PostgreSQL (timestamptz) and SQLite (which drops the offset)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime refused: store timezone-aware UTC only")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# 64-bit keys on PostgreSQL; SQLite only auto-increments a column declared INTEGER.
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
# The largest key either backend stores (signed 64-bit). Id routes cap their converter with it, so a
# larger number in a URL is a 404 instead of a driver overflow (a 500).
MAX_ID = 2**63 - 1


def id_column():
    """Primary key column used by every table."""
    return mapped_column(BigId, primary_key=True)


def created_at_column():
    """`created_at` set from the program clock when the row is inserted."""
    return mapped_column(UTCDateTime(), default=utcnow, nullable=False)


class Base(DeclarativeBase):
    # Every `Mapped[datetime]` column is a UTCDateTime.
    registry = registry(
        metadata=sa.MetaData(naming_convention=NAMING_CONVENTION), type_annotation_map={datetime: UTCDateTime()}
    )


# --- SQLite, the embedded default -----------------------------------------------------------------
#
# The rules lock what they are about to check the way PostgreSQL wants it: SELECT ... FOR UPDATE of
# the member, the sale, the offer, or a conditional UPDATE, then read, check and write. SQLite ignores
# FOR UPDATE, and pysqlite by default opens a transaction only at the first INSERT/UPDATE/DELETE, so
# two threads of `loyalty run` both read and passed the same check before either wrote: 20 refunds of
# 1,000 accepted on a sale of 10,000, points redeemed twice (issue 12, finding 2).
#
# SQLite has one lock for writing, the whole database's. The engine below takes it (BEGIN IMMEDIATE)
# at the first statement of a transaction that PostgreSQL would lock for: a SELECT ... FOR UPDATE, an
# INSERT/UPDATE/DELETE (the ORM's flush), a SAVEPOINT, DDL. It holds it to COMMIT or ROLLBACK, so from
# that statement on nobody else writes at all: what a rule reads after locking, as it must on
# PostgreSQL, cannot change under it. Statements before that point run in autocommit, each seeing what
# was committed when it ran, which is PostgreSQL's READ COMMITTED; a transaction never upgrades a read
# snapshot to a write (SQLite would refuse such an upgrade when another writer has committed since,
# with "database is locked" however long the timeout). So the code correct on PostgreSQL is correct
# here, and a read-only request (a GET, a report) never takes the write lock: readers do not queue
# behind each other, or behind a writer, since WAL lets them read the last commit while one writes.
#
# WAL also makes a commit one append to the log instead of a journal plus the pages in place. Its
# price: the database is three files (loyalty.db, -wal, -shm) on a local disk, and a copy of loyalty.db
# alone is not a backup while the server runs (`sqlite3 loyalty.db ".backup copy.db"` is).
# synchronous stays FULL: a sale answered 201 must survive a power cut.
#
# A writer waits for the lock (up to SQLITE_BUSY_TIMEOUT_MS) rather than failing with "database is
# locked": SQLite always waits at BEGIN IMMEDIATE, since nothing is held yet, and each writer holds the
# lock for one transaction, so the wait is the queue of writers ahead of it. A thread must therefore
# never wait for another connection's write while its own transaction holds the lock.
SQLITE_BUSY_TIMEOUT_MS = 30_000
# First words of statements that never take the write lock: reads and pragmas, and the transaction
# control statements themselves (VACUUM cannot run inside a transaction). Anything else takes it,
# including a statement this list does not know: a needless wait is better than a lost update.
_SQLITE_NO_WRITE_LOCK = frozenset({"SELECT", "PRAGMA", "EXPLAIN", "BEGIN", "COMMIT", "END", "ROLLBACK",
                                   "RELEASE", "VACUUM"})


def lock_sqlite_before_writing(engine: sa.Engine) -> None:
    """Make `engine` (SQLite) take the database's write lock at the first statement of a transaction
    that writes or locks, and never otherwise (see above)."""
    sa.event.listen(engine, "connect", _configure_sqlite_connection)
    sa.event.listen(engine, "before_cursor_execute", _begin_immediate_before_writing)


def _configure_sqlite_connection(dbapi_connection, _connection_record) -> None:
    # None: pysqlite never emits BEGIN (or COMMIT before DDL) by itself; _begin_immediate_before_writing
    # does. COMMIT and ROLLBACK still go through the driver, which sends them only inside a transaction.
    dbapi_connection.isolation_level = None
    dbapi_connection.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
    dbapi_connection.execute("PRAGMA journal_mode = WAL")  # stored in the file; ":memory:" keeps its own


def _begin_immediate_before_writing(_connection, cursor, statement, _parameters, context, _executemany) -> None:
    if not cursor.connection.in_transaction and _takes_write_lock(statement, context):
        cursor.connection.execute("BEGIN IMMEDIATE")


def _takes_write_lock(statement: str, context) -> bool:
    compiled = getattr(context, "compiled", None)
    if compiled is not None and isinstance(compiled.statement, GenerativeSelect):
        # SQLite's compiler drops FOR UPDATE from the SQL, so ask the statement itself.
        return compiled.statement._for_update_arg is not None
    words = statement.split(None, 1)
    return not words or words[0].upper() not in _SQLITE_NO_WRITE_LOCK


def take_sqlite_write_lock(session) -> None:
    """On SQLite, take the write lock now, for a transaction that must read under it before its first
    locking statement (what an advisory lock does on PostgreSQL, where this does nothing)."""
    connection = session.connection()
    if connection.dialect.name == "sqlite" and not connection.connection.dbapi_connection.in_transaction:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


class SQLAlchemy(flask_sqlalchemy.SQLAlchemy):
    """Flask-SQLAlchemy whose SQLite engines lock before writing (`lock_sqlite_before_writing`)."""

    def _make_engine(self, bind_key, options, app) -> sa.Engine:
        # The one place every engine of the app is made (the factory's, the CLI's, a worker's); a
        # private hook of Flask-SQLAlchemy, pinned by uv.lock and covered by tests/test_sqlite_locking.py.
        engine = super()._make_engine(bind_key, options, app)
        if engine.dialect.name == "sqlite":
            lock_sqlite_before_writing(engine)
        return engine
