"""The embedded default's engine (loyalty/db.py): SQLite in WAL mode, reads outside any transaction,
and the database's write lock taken at the first statement that PostgreSQL would lock for. The
concurrency tests (tests/invariants/test_concurrency.py) show what it is for; these show the
mechanism, so that a change to it (or to Flask-SQLAlchemy's engine hook) fails here first."""

import sqlite3

import pytest
import sqlalchemy as sa

from loyalty.db import SQLITE_BUSY_TIMEOUT_MS, take_sqlite_write_lock
from loyalty.extensions import db
from loyalty.members.models import Member


@pytest.fixture
def database_file(app_context):
    if db.engine.dialect.name != "sqlite":
        pytest.skip("the SQLite engine setup")
    return db.engine.url.database


def write_lock_is_free(database_file) -> bool:
    """Whether another connection could start writing right now."""
    other = sqlite3.connect(database_file, timeout=0, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        other.execute("ROLLBACK")
        return True
    except sqlite3.OperationalError as error:
        assert "locked" in str(error)
        return False
    finally:
        other.close()


def test_connections_use_wal_and_wait_for_the_write_lock(session, database_file):
    assert session.scalar(sa.text("PRAGMA journal_mode")) == "wal"
    assert session.scalar(sa.text("PRAGMA busy_timeout")) == SQLITE_BUSY_TIMEOUT_MS


def test_reads_take_no_lock_and_a_locking_read_takes_the_write_lock(session, factory, database_file):
    member_no = factory.member()
    session.scalar(sa.select(Member).where(Member.member_no == member_no))
    assert write_lock_is_free(database_file)

    session.scalar(sa.select(Member).where(Member.member_no == member_no).with_for_update())
    assert not write_lock_is_free(database_file)
    # A reader elsewhere still reads (WAL): the last committed state.
    reader = sqlite3.connect(database_file, timeout=0)
    assert reader.execute("SELECT count(*) FROM members").fetchone() == (1,)
    reader.close()

    session.commit()
    assert write_lock_is_free(database_file)


def test_a_write_takes_the_write_lock_until_rollback(session, factory, database_file):
    member_no = factory.member()
    session.execute(sa.update(Member).where(Member.member_no == member_no).values(name="Li Lei"))
    assert not write_lock_is_free(database_file)
    session.rollback()
    assert write_lock_is_free(database_file)
    assert session.scalar(sa.select(Member.name).where(Member.member_no == member_no)) == "Wang Fang"


def test_a_savepoint_before_any_write_is_inside_the_callers_transaction(session, factory, database_file):
    """pysqlite's own transaction handling made such a SAVEPOINT the transaction itself, and its
    RELEASE a commit the caller could not roll back."""
    member_no = factory.member()
    with session.begin_nested():
        session.execute(sa.update(Member).where(Member.member_no == member_no).values(name="Li Lei"))
    session.rollback()
    assert session.scalar(sa.select(Member.name).where(Member.member_no == member_no)) == "Wang Fang"


def test_a_transaction_can_take_the_write_lock_before_it_reads(session, database_file):
    """For a job that reads what it then replaces (loyalty/insights/rfm.py): PostgreSQL's advisory lock."""
    take_sqlite_write_lock(session)
    assert not write_lock_is_free(database_file)
    session.scalar(sa.select(Member.id))
    session.rollback()
    assert write_lock_is_free(database_file)
