"""Operator self-service (issue 11): an empty install brought to its first sale with nothing but the
`loyalty` console script; revoked keys and disabled staff refused at once in the process that made the
change; when a key was last used, recorded without a write in the request's transaction; and the
services the admin console shares with the CLI (auth/services.py), each change audited."""

import json
import os
import secrets
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
import sqlalchemy as sa

from loyalty.audit import record_audit
from loyalty.auth import services
from loyalty.auth.models import ApiClient, AuditEvent, StaffUser, Store
from loyalty.config import DefaultConfig
from loyalty.errors import NotFound, ValidationFailed
from loyalty.extensions import db
from tests.support.clock import DEFAULT_NOW
from tests.support.portal import staff_log_in, use_cheap_password_hashing
from tests.support.servers import free_port

LOYALTY = Path(sys.executable).with_name("loyalty")
# The console script imports the whole application (scikit-learn too): slow on a busy machine.
COMMAND_TIMEOUT = 600


@pytest.fixture(autouse=True)
def _cheap_password_hashing(monkeypatch):
    use_cheap_password_hashing(monkeypatch)


# --- from an empty database to a posted sale, with the CLI only -------------------------------------

@pytest.fixture
def empty_database(servers, tmp_path):
    """The URL of a database nobody has touched: a new SQLite file, or a new database on the test
    run's PostgreSQL cluster (dropped afterwards)."""
    url = servers["database_url"]
    if url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path / 'fresh.db'}"
        return
    name = f"fresh_{secrets.token_hex(4)}"
    cluster = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with cluster.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield f"{url.rsplit('/', 1)[0]}/{name}"
    finally:
        with cluster.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        cluster.dispose()


@pytest.fixture
def operator_env(empty_database, servers):
    """The environment an operator's shell gives `loyalty`: the database by LOYALTY_SQLALCHEMY_DATABASE_URI
    and nothing else of this test run's configuration."""
    env = {name: value for name, value in os.environ.items() if not name.startswith(("LOYALTY_", "FLASK_"))}
    env.update(LOYALTY_SQLALCHEMY_DATABASE_URI=empty_database, LOYALTY_SECRET_KEY="operator-test-secret")
    # Bytecode cached for the run (outside the venv), so only the first command compiles the imports.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(servers["tmp"] / "pycache")
    return env


def loyalty(env: dict, *args: str) -> str:
    """Run the console script as an operator would; its standard output, which must be a success."""
    done = subprocess.run([str(LOYALTY), *args], env=env, capture_output=True, text=True, timeout=COMMAND_TIMEOUT)
    assert done.returncode == 0, f"loyalty {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture
def web_server(operator_env, tmp_path):
    """`loyalty run` on a free port with the operator's environment; yields its base URL."""
    port = free_port()
    log = open(tmp_path / "server.log", "w")
    process = subprocess.Popen([str(LOYALTY), "run", "--host", "127.0.0.1", "--port", str(port), "--no-reload",
                                "--no-debugger"], env=operator_env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + COMMAND_TIMEOUT
        while True:
            assert process.poll() is None, (tmp_path / "server.log").read_text()
            assert time.monotonic() < deadline, "loyalty run did not answer"
            try:
                if requests.get(f"{base}/api/v1/openapi.json", timeout=5).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            time.sleep(0.5)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


@pytest.mark.slow
def test_from_an_empty_database_to_a_posted_sale_with_cli_commands_only(operator_env, web_server):
    loyalty(operator_env, "db", "upgrade")
    assert "S001" in loyalty(operator_env, "store", "create", "--code", "S001", "--name", "Nanjing Road")
    key = loyalty(operator_env, "api-key", "create", "--name", "till-1").strip().splitlines()[-1]
    assert key.startswith("lk_")
    base = web_server
    headers = {"Authorization": f"Bearer {key}"}

    enrolled = requests.post(f"{base}/api/v1/members", headers=headers, timeout=60,
                             json={"name": "Li Lei", "email": "li.lei@example.com"})
    assert enrolled.status_code == 201, enrolled.text
    member_no = enrolled.json()["member_no"]
    sale = requests.post(f"{base}/api/v1/transactions", headers=headers, timeout=60, json={
        "external_id": "S001-1", "member": member_no, "occurred_at": datetime.now(UTC).isoformat(),
        "currency": "CNY", "amount": 12850})

    assert sale.status_code == 201, sale.text
    # A fresh install earns floor(amount / 100) at BRONZE (x1.0), docs/api.md.
    assert sale.json()["points_earned"] == 128
    assert sale.json()["member"]["points"]["balance"] == 128

    # The server recorded the key's use; the operator sees it, then revokes the key from another
    # process, and the server refuses it once its copy is HOT_CACHE_SECONDS old.
    [header, row] = [line.split() for line in loyalty(operator_env, "api-key", "list").splitlines()]
    listed = dict(zip(header, row, strict=True))
    assert (listed["PREFIX"], listed["NAME"], listed["STORE"], listed["SCOPE"]) == (key[:10], "till-1", "S001", "pos")
    assert listed["LAST_USED"].endswith("Z") and listed["REVOKED"] == "-"
    loyalty(operator_env, "api-key", "revoke", key[:10])
    time.sleep(DefaultConfig.HOT_CACHE_SECONDS + 0.5)
    refused = requests.get(f"{base}/api/v1/members/{member_no}", headers=headers, timeout=60)
    assert refused.status_code == 401


# --- disabled staff and new passwords end sessions ---------------------------------------------------

@pytest.fixture
def signed_in_cashier(app, factory):
    factory.staff("admin@example.com", "admin")
    factory.staff("cashier@example.com", "cashier")
    browser = app.test_client()
    assert staff_log_in(browser, "cashier@example.com").status_code == 302
    assert browser.get("/staff/").status_code == 200
    return browser


def test_a_disabled_cashier_cannot_sign_in_and_their_open_session_is_refused(runner, app, signed_in_cashier):
    assert runner.invoke(args=["user", "disable", "cashier@example.com"]).exit_code == 0

    refused = signed_in_cashier.get("/staff/")
    assert refused.status_code == 302 and refused.location.startswith("/staff/login")
    again = staff_log_in(app.test_client(), "cashier@example.com")
    assert again.status_code == 200 and "Wrong email or password." in again.get_data(as_text=True)

    assert runner.invoke(args=["user", "enable", "cashier@example.com"]).exit_code == 0
    assert staff_log_in(app.test_client(), "cashier@example.com").status_code == 302


def test_a_new_password_ends_the_open_sessions(runner, app, signed_in_cashier):
    changed = runner.invoke(args=["user", "set-password", "cashier@example.com", "--password", "a new password"])

    assert changed.exit_code == 0, changed.output
    assert signed_in_cashier.get("/staff/").status_code == 302
    assert staff_log_in(app.test_client(), "cashier@example.com").status_code == 200
    assert staff_log_in(app.test_client(), "cashier@example.com", "a new password").status_code == 302


# --- when a key was last used ------------------------------------------------------------------------

def _last_used(app, client_id: int) -> datetime | None:
    with app.app_context():
        return db.session.scalar(sa.select(ApiClient.last_used_at).where(ApiClient.id == client_id))


def _set_last_used_behind_the_app(app, client_id: int, value: datetime | None) -> None:
    with app.app_context(), db.engine.begin() as connection:
        connection.execute(sa.update(ApiClient).where(ApiClient.id == client_id).values(last_used_at=value))


class _Monotonic:
    """loyalty.cache's clock, movable: the hot cache times its entries with time.monotonic()."""

    def __init__(self):
        self.offset = 0.0

    def monotonic(self) -> float:
        return time.monotonic() + self.offset


def test_a_key_records_its_use_at_most_once_per_resolution_per_process(app, pos, clock, monkeypatch):
    import loyalty.cache

    moved = _Monotonic()
    monkeypatch.setattr(loyalty.cache, "time", moved)
    assert _last_used(app, pos.client_id) is None

    assert pos.get("/members/1000000018").status_code == 404
    assert _last_used(app, pos.client_id) == DEFAULT_NOW

    # Not a write per request: a later request in the same process leaves the row alone...
    _set_last_used_behind_the_app(app, pos.client_id, None)
    clock.advance(minutes=1)
    assert pos.get("/members/1000000018").status_code == 404
    assert _last_used(app, pos.client_id) is None

    # ...until the resolution has passed.
    moved.offset += services.KEY_USE_RESOLUTION.total_seconds() + 1
    assert pos.get("/members/1000000018").status_code == 404
    assert _last_used(app, pos.client_id) == DEFAULT_NOW + timedelta(minutes=1)


def test_a_recent_use_recorded_by_another_process_is_not_rewritten(app, pos, clock):
    recent = DEFAULT_NOW - timedelta(minutes=1)
    _set_last_used_behind_the_app(app, pos.client_id, recent)

    assert pos.get("/members/1000000018").status_code == 404

    assert _last_used(app, pos.client_id) == recent


def test_the_use_is_recorded_outside_the_request_transaction(app, pos):
    """A request that fails and rolls back still leaves the key's use recorded: the write was not in
    its transaction (nor holding the client's row lock until the request ended)."""
    refused = pos.post("/transactions", json={"external_id": "S-1", "currency": "CNY", "amount": -5})

    assert refused.status_code == 422
    assert _last_used(app, pos.client_id) == DEFAULT_NOW


def test_a_failed_use_write_never_fails_the_request(app, pos, factory, caplog):
    member_no = factory.member()

    def refuse(conn, cursor, statement, parameters, context, executemany):
        if "last_used_at" in statement and statement.lstrip().upper().startswith("UPDATE"):
            raise RuntimeError("the database refused the write")

    with app.app_context():
        engine = db.engine
    sa.event.listen(engine, "before_cursor_execute", refuse)
    try:
        assert pos.get(f"/members/{member_no}").status_code == 200
    finally:
        sa.event.remove(engine, "before_cursor_execute", refuse)
    assert _last_used(app, pos.client_id) is None
    assert "could not record the use of API client" in caplog.text


# --- the services the admin console shares ---------------------------------------------------------

@pytest.fixture
def admin(session, factory) -> StaffUser:
    return session.get(StaffUser, factory.staff("admin@example.com", "admin"))


def _events(session, action: str) -> list[AuditEvent]:
    return list(session.scalars(sa.select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)))


def test_changes_made_by_a_staff_user_name_them_in_the_audit_trail(session, admin):
    store = services.create_store(session, code="S002", name="Online", timezone="Europe/Paris", actor=admin)
    client, key = services.create_api_client(session, name="web", store=store, actor=admin)
    services.revoke_api_client_by_prefix(session, client.key_prefix, actor=admin, now=DEFAULT_NOW)
    session.commit()

    for action in ("store.create", "api_key.create", "api_key.revoke"):
        [event] = _events(session, action)
        assert event.staff_user_id == admin.id
    assert _events(session, "store.create")[0].subject == "store:S002"


def test_set_staff_role(session, admin, factory):
    marketer = session.get(StaffUser, factory.staff("marketer@example.com", "marketer"))
    marketer.store = None
    session.flush()

    with pytest.raises(ValidationFailed) as no_store:
        services.set_staff_role(session, marketer, "cashier", actor=admin)
    assert "store" in no_store.value.errors and marketer.role == "marketer"
    with pytest.raises(ValidationFailed):
        services.set_staff_role(session, marketer, "owner", actor=admin)

    store = session.scalar(sa.select(Store))
    services.set_staff_role(session, marketer, "cashier", actor=admin, store=store)
    session.commit()

    assert (marketer.role, marketer.store.code) == ("cashier", "S001")
    [event] = _events(session, "staff.role")
    assert (event.subject, event.staff_user_id) == ("staff:marketer@example.com", admin.id)
    assert (event.before["role"], event.before["store"]) == ("marketer", None)
    assert (event.after["role"], event.after["store"]) == ("cashier", "S001")


def test_the_last_active_admin_cannot_be_demoted(session, admin, factory):
    with pytest.raises(ValidationFailed, match="last active admin"):
        services.set_staff_role(session, admin, "marketer", actor=admin)
    assert admin.role == "admin" and _events(session, "staff.role") == []

    services.create_staff_user(session, email="second@example.com", role="admin", password="a long password")
    services.set_staff_role(session, admin, "marketer", actor=admin)
    assert admin.role == "marketer"


def test_a_cashier_needs_a_store(session):
    with pytest.raises(ValidationFailed) as refused:
        services.create_staff_user(session, email="c@example.com", role="cashier", password="a long password")

    assert "store" in refused.value.errors
    assert session.scalar(sa.select(sa.func.count(StaffUser.id))) == 0


def test_staff_by_email_ignores_case_and_says_when_nobody_has_it(session, admin):
    assert services.staff_by_email(session, " Admin@Example.COM ") is admin
    with pytest.raises(NotFound):
        services.staff_by_email(session, "nobody@example.com")


def test_lists(session, factory, pos, clock):
    clock.advance(minutes=1)
    newer = factory.api_client("S002", name="newer")
    factory.staff("b@example.com", "marketer")
    factory.staff("a@example.com", "admin")

    assert [store.code for store in services.list_stores(session)] == ["S001", "S002"]
    assert [(client.id, client.store.code) for client in services.list_api_clients(session)] == [
        (newer.client_id, "S002"), (pos.client_id, "S001")]
    assert [staff.email for staff in services.list_staff_users(session)] == ["a@example.com", "b@example.com"]


def test_the_audit_writer_refuses_credentials(session):
    for state in ({"password": "hunter22"}, {"key": "lk_x"}, {"password_hash": "$argon2id$..."}):
        with pytest.raises(ValueError, match="credentials"):
            record_audit(session, action="staff.password", subject="staff:x@example.com", after=state)
    event = record_audit(session, action="store.create", subject="store:S009", after={"at": DEFAULT_NOW})
    session.flush()
    assert json.loads(json.dumps(event.after)) == {"at": "2026-11-22T02:00:00+00:00"}
