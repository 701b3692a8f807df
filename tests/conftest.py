"""Test fixtures. One suite, two databases: `--db sqlite` (default) or `--db postgresql` (a throwaway
cluster started here). With `--redis` a private redis-server backs the rate limiter and the job queues.
Each test starts from the freshly migrated database (the default program and nothing else)."""

import shutil
import tempfile
from contextlib import ExitStack
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask_migrate import upgrade

from loyalty import create_app
from loyalty.cache import hot_cache
from loyalty.extensions import db as _db
from tests.support.clock import DEFAULT_NOW, SettableClock
from tests.support.factories import Factory
from tests.support.servers import postgres_server, redis_server

SEED_TABLES = ("alembic_version", "program_settings", "tiers")


def pytest_addoption(parser):
    parser.addoption("--db", choices=("sqlite", "postgresql"), default="sqlite")
    parser.addoption("--redis", action="store_true", help="run a real redis-server for queues and limits")


def pytest_collection_modifyitems(config, items):
    postgresql = config.getoption("--db") == "postgresql"
    skip_postgres_only = pytest.mark.skip(reason="needs PostgreSQL itself (--db postgresql)")
    skip_live = pytest.mark.skip(reason="runs the service on PostgreSQL and Redis (--db postgresql --redis)")
    for item in items:
        if "postgres_only" in item.keywords and not postgresql:
            item.add_marker(skip_postgres_only)
        if "live" in item.keywords and not (postgresql and config.getoption("--redis")):
            item.add_marker(skip_live)


@pytest.fixture(scope="session")
def servers(request):
    with ExitStack() as stack:
        tmp = Path(tempfile.mkdtemp(prefix="loyalty-test-"))
        stack.callback(shutil.rmtree, tmp, ignore_errors=True)
        if request.config.getoption("--db") == "postgresql":
            database_url = stack.enter_context(postgres_server())
        else:
            database_url = f"sqlite:///{tmp / 'test.db'}"
        redis_url = stack.enter_context(redis_server()) if request.config.getoption("--redis") else None
        yield {"database_url": database_url, "redis_url": redis_url, "tmp": tmp}


@pytest.fixture(scope="session")
def clock():
    return SettableClock()


@pytest.fixture(scope="session")
def app(servers, clock):
    app = create_app({
        "TESTING": True,
        "SECRET_KEY": "test-secret-key",
        "SQLALCHEMY_DATABASE_URI": servers["database_url"],
        # A connection for every thread of the concurrency tests (tests/invariants), on both databases.
        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_size": 60, "max_overflow": 20},
        "REDIS_URL": servers["redis_url"],
        "CLOCK": clock,
        "WTF_CSRF_ENABLED": True,
    })
    with app.app_context():
        upgrade(revision="heads")
        seed = _snapshot(_db.engine, SEED_TABLES)
        # Closing every connection moves the WAL into the file (loyalty/db.py): the file alone is then
        # the whole database, ready to copy.
        _db.engine.dispose()
    app.extensions["loyalty-test-seed"] = seed
    if servers["database_url"].startswith("sqlite"):
        _db_file = servers["database_url"].removeprefix("sqlite:///")
        shutil.copyfile(_db_file, servers["tmp"] / "template.db")
    yield app
    # Close the pool's connections before the servers stop. Left open, they would be garbage collected
    # with this app once a second app (tests/operations) has taken the shared extensions' references
    # to it: psycopg's ResourceWarning for each, inside pytest's unraisable-exception check.
    with app.app_context():
        _db.engine.dispose()


def _snapshot(engine, tables):
    with engine.connect() as connection:
        return {table: [dict(row._mapping) for row in connection.execute(sa.text(f"SELECT * FROM {table}"))]
                for table in tables}


def _reset_database(app, servers):
    """Back to the migrated state: SQLite by copying the template file; PostgreSQL by deleting every
    row, children first, with triggers switched off for this transaction (the ledger's append-only
    triggers would refuse the DELETE). Measured ~10x faster than TRUNCATE for small tables."""
    engine = _db.engine
    if engine.dialect.name == "sqlite":
        engine.dispose()
        database = Path(servers["database_url"].removeprefix("sqlite:///"))
        for wal_file in (database.with_name(database.name + "-wal"), database.with_name(database.name + "-shm")):
            wal_file.unlink(missing_ok=True)  # else replayed onto the fresh copy
        shutil.copyfile(servers["tmp"] / "template.db", database)
        return
    seed = app.extensions["loyalty-test-seed"]
    with engine.begin() as connection:
        connection.execute(sa.text("SET LOCAL session_replication_role = replica"))
        for table in reversed(_db.metadata.sorted_tables):
            connection.execute(table.delete())
        for table in SEED_TABLES[1:]:
            if seed[table]:
                connection.execute(_db.metadata.tables[table].insert(), seed[table])


@pytest.fixture(autouse=True)
def _fresh_state(app, servers, clock):
    clock.set(DEFAULT_NOW)
    with app.app_context():
        _reset_database(app, servers)
        hot_cache().clear()
        if servers["redis_url"]:
            from loyalty.jobs import redis_connection

            redis_connection(app).flushdb()
    from loyalty.extensions import limiter

    limiter.reset()
    yield


@pytest.fixture
def app_context(app):
    with app.app_context():
        yield
        _db.session.remove()


@pytest.fixture
def session(app_context):
    return _db.session


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def factory(app, clock):
    return Factory(app, clock)


@pytest.fixture
def pos(factory):
    """An API client bound to store S001 with the pos scope: (client, headers)."""
    return factory.api_client()
