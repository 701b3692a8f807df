"""/healthz and /readyz: alive whatever the database does; ready only with the database answering at
the migrations' head, and "degraded" (still ready) when a configured Redis does not answer."""

import time

from alembic.script import ScriptDirectory
from flask_migrate import upgrade

from loyalty.extensions import db
from tests.support.servers import free_port, postgres_cluster, start_cluster, stop_cluster


def readiness(client) -> tuple[int, dict]:
    response = client.get("/readyz")
    assert response.mimetype == "application/json"
    return response.status_code, response.get_json()


def test_healthz_answers_ok_without_setting_a_cookie(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}
    assert "Set-Cookie" not in response.headers


def test_healthz_touches_no_database(make_app):
    """An app whose database does not exist at all is alive, and not ready."""
    app = make_app(SQLALCHEMY_DATABASE_URI=f"postgresql://postgres@127.0.0.1:{free_port()}/nowhere",
                   READINESS_TIMEOUT_SECONDS=1)
    client = app.test_client()
    assert client.get("/healthz").status_code == 200
    status, body = readiness(client)
    assert status == 503
    assert body["status"] == "unavailable"
    assert body["checks"]["database"].startswith("unreachable: ")
    assert body["checks"]["migrations"] == "unknown"


def test_readyz_is_ok_on_the_migrated_database(client, servers):
    status, body = readiness(client)
    assert status == 200
    assert body == {"status": "ok", "checks": {
        "database": "ok", "migrations": "ok", "redis": "ok" if servers["redis_url"] else "not configured"}}


def test_readyz_names_migrations_not_applied_on_an_empty_database(make_app, tmp_path):
    app = make_app(SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path / 'empty.db'}")
    status, body = readiness(app.test_client())
    assert status == 503
    assert body["status"] == "unavailable"
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["migrations"] == "not applied"


def test_readyz_names_migrations_behind_head(make_app, tmp_path):
    app = make_app(SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path / 'behind.db'}")
    with app.app_context():
        first = ScriptDirectory(app.extensions["migrate"].directory).get_base()
        upgrade(revision=first)
    status, body = readiness(app.test_client())
    assert status == 503
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["migrations"].startswith(f"behind head: database at {first}, code at ")
    with app.app_context():
        upgrade(revision="heads")
    assert readiness(app.test_client())[0] == 200
    # Nothing on the way migrated the database: readiness only reads.


def test_readyz_is_degraded_but_ready_when_redis_does_not_answer(make_app):
    """The service lives through a Redis outage (rate limits count per process meanwhile): 200, so the
    load balancer keeps the process, and "degraded" with the reason, for the operator."""
    app = make_app(REDIS_URL=f"redis://127.0.0.1:{free_port()}/0", READINESS_TIMEOUT_SECONDS=1)
    status, body = readiness(app.test_client())
    assert status == 200
    assert body["status"] == "degraded"
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["migrations"] == "ok"
    assert body["checks"]["redis"].startswith("unreachable: ")


def test_readyz_is_unavailable_with_a_dead_database_whatever_redis_does(make_app):
    app = make_app(SQLALCHEMY_DATABASE_URI=f"postgresql://postgres@127.0.0.1:{free_port()}/nowhere",
                   REDIS_URL=f"redis://127.0.0.1:{free_port()}/0", READINESS_TIMEOUT_SECONDS=1)
    status, body = readiness(app.test_client())
    assert status == 503
    assert body["status"] == "unavailable"


def test_readyz_follows_postgresql_going_down_and_coming_back(make_app):
    """A dedicated cluster (not the session's), stopped the way an operator would: the probe says
    503 naming the database within a bounded time, then 200 once the server is back."""
    with postgres_cluster(prefix="loyalty-readyz-") as cluster:
        app = make_app(SQLALCHEMY_DATABASE_URI=cluster["url"], READINESS_TIMEOUT_SECONDS=1)
        with app.app_context():
            upgrade(revision="heads")
        client = app.test_client()
        assert readiness(client)[0] == 200

        stop_cluster(cluster)
        started = time.monotonic()
        status, body = readiness(client)
        assert time.monotonic() - started < 5
        assert status == 503
        assert body["status"] == "unavailable"
        assert body["checks"]["database"].startswith("unreachable: ")
        assert client.get("/healthz").status_code == 200

        start_cluster(cluster)
        deadline = time.monotonic() + 15
        while (status := readiness(client)[0]) != 200 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert status == 200
        with app.app_context():
            db.engine.dispose()


def test_probes_are_never_rate_limited(make_app):
    """Even with a default limit on every route, a probe polled often is never refused."""
    app = make_app(RATELIMIT_DEFAULT="2 per minute")
    client = app.test_client()
    assert [client.get("/portal/login").status_code for _ in range(3)][-1] == 429
    for path in ("/healthz", "/readyz", "/metrics"):
        assert {client.get(path).status_code for _ in range(4)} == {200}
