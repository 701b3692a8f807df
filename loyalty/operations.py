"""What load balancers, orchestrators and Prometheus ask of a web process (docs/api.md "Operations
endpoints"): `/healthz` (the process serves), `/readyz` (it can do its work: database reachable and
migrated to head; Redis answering if configured, or else "degraded") and `/metrics`.

None of them is rate-limited, needs a session or a CSRF token, or sets a cookie. /readyz uses its own
short timeouts, so a dead database makes it answer 503 quickly instead of hanging the probe; its
`checks` map each name to a status string, "ok" or a short reason.

A Redis outage is one the service lives with: rate limits count in each process (and the database)
meanwhile (loyalty/rate_limits.py). So Redis alone failing answers 200 with status
"degraded": a load balancer keeps sending traffic, and the body and the log tell the operator.
"""

import hmac
import logging

import sqlalchemy as sa
from flask import Blueprint, Flask, Response, current_app, jsonify, request
from sqlalchemy.pool import NullPool

operations = Blueprint("operations", __name__)

EXTENSION = "loyalty.operations"
VERSION_TABLE = sa.table("alembic_version", sa.column("version_num"))
REASON_LENGTH = 160
logger = logging.getLogger(__name__)


@operations.route("/healthz")
def healthz():
    """Alive: answers as long as the process serves requests. Touches nothing else."""
    return jsonify(status="ok")


@operations.route("/readyz")
def readyz():
    """Ready for traffic: 200 when the database checks are "ok", with status "ok" when Redis is "ok"
    or "not configured" too and "degraded" when it is not; 503 "unavailable" otherwise."""
    database = check_database()
    checks = {**database, "redis": check_redis()}
    if any(status != "ok" for status in database.values()):
        logger.warning("not ready: %s", checks)
        return jsonify(status="unavailable", checks=checks), 503
    status = "ok" if checks["redis"] in ("ok", "not configured") else "degraded"
    _log_change(status, checks)
    return jsonify(status=status, checks=checks), 200


def _log_change(status: str, checks: dict[str, str]) -> None:
    """Degraded is logged when this process first sees it, and its end too; not at every probe."""
    state = _state()
    previous = state.get("status", "ok")
    state["status"] = status
    if status == "degraded" and previous != "degraded":
        logger.warning("degraded: %s", checks)
    elif status == "ok" and previous == "degraded":
        logger.warning("no longer degraded: %s", checks)


@operations.route("/metrics")
def metrics():
    """Prometheus text exposition; with METRICS_TOKEN set, only for `Authorization: Bearer <token>`."""
    from loyalty.jobs import QUEUES
    from loyalty.metrics import JobQueues, exposition

    token = current_app.config["METRICS_TOKEN"]
    if token and not _bearer_matches(str(token)):
        return Response("a valid metrics token is required: Authorization: Bearer <token>\n", 401,
                        {"WWW-Authenticate": 'Bearer realm="metrics"'}, mimetype="text/plain")
    redis_url = current_app.config["REDIS_URL"]
    collectors = [JobQueues(redis_url, QUEUES, _timeout())] if redis_url else []
    body, content_type = exposition(request.headers.get("Accept"), collectors)
    return Response(body, content_type=content_type)


def _bearer_matches(token: str) -> bool:
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())


def register_operations(app: Flask) -> None:
    """Mount the endpoints, exempt from every rate limit (a probe must never be refused for coming often)."""
    from loyalty.extensions import limiter

    limiter.exempt(operations)
    app.register_blueprint(operations)


# --- readiness checks ----------------------------------------------------------------------------

def check_database() -> dict[str, str]:
    """{"database": ..., "migrations": ...}: the database answers within the timeout, and its Alembic
    revisions are the migration scripts' heads (nothing is migrated here)."""
    try:
        with _probe_engine().connect() as connection:
            if connection.dialect.name == "postgresql":
                connection.execute(sa.select(sa.func.set_config("statement_timeout", f"{_timeout_ms()}ms", True)))
            current = _database_revisions(connection)
    except Exception as error:  # whatever the driver raises, the probe answers rather than fails
        return {"database": f"unreachable: {_reason(error)}", "migrations": "unknown"}
    heads, known = _script_revisions()
    if current == heads:
        return {"database": "ok", "migrations": "ok"}
    if not current:
        return {"database": "ok", "migrations": "not applied"}
    # Unknown: migrated by newer code than this process runs (or another branch of history).
    state = "unknown revision" if current - known else "behind head"
    return {"database": "ok",
            "migrations": f"{state}: database at {', '.join(sorted(current))}, code at {', '.join(sorted(heads))}"}


def check_redis() -> str:
    url = current_app.config["REDIS_URL"]
    if not url:
        return "not configured"
    from redis import Redis

    connection = Redis.from_url(url, socket_connect_timeout=_timeout(), socket_timeout=_timeout())
    try:
        connection.ping()
    except Exception as error:  # redis-py's errors and the socket's alike
        return f"unreachable: {_reason(error)}"
    finally:
        connection.close()
    return "ok"


def _database_revisions(connection: sa.Connection) -> set[str]:
    """What Alembic's version table holds (read by hand: Alembic's MigrationContext logs two lines at
    INFO each time it is made, which every probe would repeat)."""
    if not sa.inspect(connection).has_table(VERSION_TABLE.name):
        return set()
    return set(connection.scalars(sa.select(VERSION_TABLE.c.version_num)))


def _probe_engine() -> sa.Engine:
    """The engine the database check connects with. For PostgreSQL (or any server database) a separate
    engine opening a fresh connection per probe with a connect timeout: the app's pool would hand out a
    connection the server already dropped, or wait for one while every thread holds one. An SQLite file
    has no server and no pool worth avoiding."""
    from loyalty.extensions import db

    state = _state()
    engine = state.get("engine")
    if engine is None:
        if db.engine.dialect.name == "sqlite":
            engine = db.engine
        else:
            connect_args = {**current_app.config["SQLALCHEMY_ENGINE_OPTIONS"].get("connect_args", {}),
                            "connect_timeout": max(1, round(_timeout()))}
            engine = sa.create_engine(db.engine.url, poolclass=NullPool, connect_args=connect_args)
        engine = state.setdefault("engine", engine)
    return engine


def _script_revisions() -> tuple[set[str], set[str]]:
    """(heads, every revision) of the migration scripts, read once per process: they change only with
    a deploy, and reading them imports every script."""
    from alembic.script import ScriptDirectory

    state = _state()
    revisions = state.get("revisions")
    if revisions is None:
        scripts = ScriptDirectory(current_app.extensions["migrate"].directory)
        revisions = state.setdefault("revisions", (set(scripts.get_heads()),
                                                   {script.revision for script in scripts.walk_revisions()}))
    return revisions


def _state() -> dict:
    return current_app.extensions.setdefault(EXTENSION, {})


def _timeout() -> float:
    return float(current_app.config["READINESS_TIMEOUT_SECONDS"])


def _timeout_ms() -> int:
    return int(_timeout() * 1000)


def _reason(error: Exception) -> str:
    """The error's first line, short: enough to tell a refused connection from a timeout."""
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return text[:REASON_LENGTH]
