"""The operator CLI (docs/api.md "Operator CLI"): stores, API keys, staff accounts, and the ledger check,
which must catch a ledger broken on purpose. Also: the ledger table itself refuses rewrites. Every
change a command makes is audited, with no secret in the trail; a refused one changes nothing."""

import json
import re

import pytest
import sqlalchemy as sa

from loyalty.auth.models import ApiClient, AuditEvent, StaffUser, Store
from loyalty.auth.services import check_password, hash_api_key
from loyalty.extensions import db
from tests.support.portal import use_cheap_password_hashing


@pytest.fixture(autouse=True)
def _cheap_password_hashing(monkeypatch):
    use_cheap_password_hashing(monkeypatch)


def last_line(output: str) -> str:
    return output.strip().splitlines()[-1]


def table(output: str) -> list[list[str]]:
    """A list's rows (header first), split as docs/api.md promises: columns apart by two spaces or more."""
    return [re.split(r" {2,}", line) for line in output.strip().splitlines()]


def audit_trail(app) -> list[dict]:
    with app.app_context():
        return [{"action": event.action, "subject": event.subject, "staff_user_id": event.staff_user_id,
                 "api_client_id": event.api_client_id, "before": event.before, "after": event.after}
                for event in db.session.scalars(sa.select(AuditEvent).order_by(AuditEvent.id))]


def count(app, model) -> int:
    with app.app_context():
        return db.session.scalar(sa.select(sa.func.count()).select_from(model))


# --- store -------------------------------------------------------------------------------------------

def test_store_create_keeps_the_code_upper_case_and_is_audited(runner, app):
    result = runner.invoke(args=["store", "create", "--code", " s001 ", "--name", "Nanjing Road",
                                 "--timezone", "Asia/Shanghai"])

    assert result.exit_code == 0, result.output
    assert "S001" in result.output
    with app.app_context():
        store = db.session.scalar(sa.select(Store))
        assert (store.code, store.name, store.timezone) == ("S001", "Nanjing Road", "Asia/Shanghai")
    assert audit_trail(app) == [{
        "action": "store.create", "subject": "store:S001", "staff_user_id": None, "api_client_id": None,
        "before": None, "after": {"code": "S001", "name": "Nanjing Road", "timezone": "Asia/Shanghai"}}]


def test_store_create_defaults_to_shanghai_time(runner, app):
    assert runner.invoke(args=["store", "create", "--code", "S002", "--name", "Online"]).exit_code == 0

    with app.app_context():
        assert db.session.scalar(sa.select(Store.timezone)) == "Asia/Shanghai"


@pytest.mark.parametrize(("args", "field", "message"), [
    (["--code", "S001", "--name", "Again"], "code", "A store S001 exists."),
    (["--code", "s001", "--name", "Again, lower case"], "code", "A store S001 exists."),
    (["--code", "S 1", "--name", "Spaces"], "code", "letters, digits"),
    (["--code", "S002", "--name", "Mars", "--timezone", "Mars/Olympus_Mons"], "timezone", "Unknown time zone"),
    (["--code", "S002", "--name", "Offset", "--timezone", "+08:00"], "timezone", "Unknown time zone"),
    (["--code", "S002", "--name", "  "], "name", "Required."),
])
def test_store_create_refuses_bad_input_and_changes_nothing(runner, app, factory, args, field, message):
    factory.store("S001")

    result = runner.invoke(args=["store", "create", *args])

    assert result.exit_code != 0
    assert f"{field}: " in result.output and message in result.output
    assert count(app, Store) == 1
    assert audit_trail(app) == []


def test_store_list_prints_aligned_columns_with_utc_times(runner, factory):
    factory.store("S002")
    factory.store("S001")

    result = runner.invoke(args=["store", "list"])

    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "CODE  NAME        TIMEZONE       CREATED",
        "S001  Store S001  Asia/Shanghai  2026-11-22T02:00:00Z",
        "S002  Store S002  Asia/Shanghai  2026-11-22T02:00:00Z",
    ]


def test_store_list_of_a_fresh_install_is_its_header(runner):
    result = runner.invoke(args=["store", "list"])

    assert result.exit_code == 0 and result.output.splitlines() == ["CODE  NAME  TIMEZONE  CREATED"]


# --- api-key create ----------------------------------------------------------------------------------

def test_api_key_create_prints_a_key_that_authenticates(runner, factory, client, app):
    factory.store("S001")

    result = runner.invoke(args=["api-key", "create", "--name", "Till 7", "--store", "S001"])

    assert result.exit_code == 0, result.output
    key = last_line(result.output)
    assert key.startswith("lk_") and " " not in key
    with app.app_context():
        stored = db.session.scalar(sa.select(ApiClient))
        assert stored.name == "Till 7" and stored.store.code == "S001"
        assert stored.scopes == "pos" and not stored.has_scope("manage")
        # Only the hash is kept.
        assert stored.key_sha256 == hash_api_key(key)
    headers = {"Authorization": f"Bearer {key}"}
    assert client.get("/api/v1/members/1000000018", headers=headers).status_code == 404
    sale = {"external_id": "S-1", "occurred_at": "2026-11-22T10:00:00+08:00", "currency": "CNY", "amount": 100}
    assert client.post("/api/v1/transactions", json=sale, headers=headers).status_code == 201


def test_each_key_is_new(runner, factory):
    factory.store("S001")

    keys = {last_line(runner.invoke(args=["api-key", "create", "--name", "x"]).output) for _ in range(2)}

    assert len(keys) == 2


def test_api_key_with_the_manage_scope(runner, factory, app):
    factory.store("S001")

    result = runner.invoke(args=["api-key", "create", "--name", "marketing", "--store", "S001", "--scope", "manage"])

    assert result.exit_code == 0, result.output
    with app.app_context():
        stored = db.session.scalar(sa.select(ApiClient).where(ApiClient.key_sha256 == hash_api_key(
            last_line(result.output))))
        assert stored.has_scope("manage") and stored.has_scope("pos")


def test_api_key_defaults_to_the_first_store(runner, factory, app):
    factory.store("S001")
    factory.store("S002")

    result = runner.invoke(args=["api-key", "create", "--name", "x"])

    assert result.exit_code == 0, result.output
    with app.app_context():
        assert db.session.scalar(sa.select(ApiClient)).store.code == "S001"


def test_api_key_create_on_an_install_without_stores_says_what_to_do(runner, app):
    result = runner.invoke(args=["api-key", "create", "--name", "till-1"])

    assert result.exit_code != 0
    assert "no store exists yet" in result.output and "loyalty store create" in result.output
    assert count(app, ApiClient) == 0


def test_api_key_create_is_audited_without_the_key(runner, factory, app):
    factory.store("S001")

    key = last_line(runner.invoke(args=["api-key", "create", "--name", "till-1"]).output)

    [event] = audit_trail(app)
    assert event["action"] == "api_key.create" and event["subject"] == f"api_key:{key[:10]}"
    assert event["staff_user_id"] is None and event["api_client_id"] is None  # the operator, not the key
    assert event["after"] == {"name": "till-1", "store": "S001", "scopes": "pos", "key_prefix": key[:10],
                              "revoked_at": None}
    assert key not in json.dumps(event) and hash_api_key(key) not in json.dumps(event)


def test_api_key_refuses_an_unknown_store_or_scope(runner, factory, app):
    factory.store("S001")

    unknown_store = runner.invoke(args=["api-key", "create", "--name", "x", "--store", "S404"])
    unknown_scope = runner.invoke(args=["api-key", "create", "--name", "x", "--scope", "root"])

    assert unknown_store.exit_code != 0 and "S404" in unknown_store.output
    assert unknown_scope.exit_code != 0
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count(ApiClient.id))) == 0


# --- api-key list and revoke ------------------------------------------------------------------------

def test_api_key_list_shows_each_key_by_prefix_newest_first(runner, factory, app, clock):
    factory.store("S001")
    factory.store("S002")
    till = factory.api_client("S001", name="Till 1")
    clock.advance(hours=1)
    shop = factory.api_client("S002", scope="manage", name="web-shop")
    clock.advance(hours=1)
    assert till.get("/members/1000000018").status_code == 404  # a use: recorded as last used
    assert runner.invoke(args=["api-key", "revoke", shop.key[:10]]).exit_code == 0

    result = runner.invoke(args=["api-key", "list"])

    assert result.exit_code == 0, result.output
    assert table(result.output) == [
        ["PREFIX", "NAME", "STORE", "SCOPE", "CREATED", "LAST_USED", "REVOKED"],
        [shop.key[:10], "web-shop", "S002", "manage", "2026-11-22T03:00:00Z", "-", "2026-11-22T04:00:00Z"],
        [till.key[:10], "Till 1", "S001", "pos", "2026-11-22T02:00:00Z", "2026-11-22T04:00:00Z", "-"],
    ]
    assert till.key not in result.output and shop.key not in result.output


def test_a_revoked_key_is_refused_on_the_next_request_in_this_process(runner, factory, pos, app):
    path = f"/members/{factory.member()}"
    assert pos.get(path).status_code == 200  # the key is now in this process's hot cache

    result = runner.invoke(args=["api-key", "revoke", pos.key[:10]])

    assert result.exit_code == 0, result.output
    assert pos.key[:10] in result.output and "till" in result.output
    assert pos.get(path).status_code == 401
    with app.app_context():
        assert db.session.get(ApiClient, pos.client_id).revoked_at is not None


def test_api_key_revoke_is_audited_with_before_and_after(runner, factory, pos, app):
    runner.invoke(args=["api-key", "revoke", pos.key[:8]])

    event = audit_trail(app)[-1]
    assert event["action"] == "api_key.revoke" and event["subject"] == f"api_key:{pos.key[:10]}"
    assert event["staff_user_id"] is None and event["api_client_id"] is None
    assert event["before"]["revoked_at"] is None
    assert event["after"]["revoked_at"] == "2026-11-22T02:00:00+00:00"
    assert pos.key not in json.dumps(event) and hash_api_key(pos.key) not in json.dumps(event)


def test_api_key_revoke_takes_the_whole_key_too(runner, pos, app):
    assert runner.invoke(args=["api-key", "revoke", pos.key]).exit_code == 0

    with app.app_context():
        assert db.session.get(ApiClient, pos.client_id).revoked_at is not None


def _client_with_prefix(app, prefix: str) -> None:
    with app.app_context():
        store = db.session.scalar(sa.select(Store))
        db.session.add(ApiClient(name=prefix, store=store, key_prefix=prefix, key_sha256=hash_api_key(prefix)))
        db.session.commit()


@pytest.mark.parametrize(("prefix", "message"), [
    ("lk_nope123", "no API key starts with 'lk_nope123'"),
    ("lk_ab", "At least 7 characters"),
    ("lk_abcd", "names 2 keys"),
    ("lk_abcd%", "no API key"),  # a LIKE wildcard is a character like any other
])
def test_api_key_revoke_refuses_a_prefix_naming_no_key_or_several(runner, factory, app, prefix, message):
    factory.store("S001")
    _client_with_prefix(app, "lk_abcd123")
    _client_with_prefix(app, "lk_abcd456")

    result = runner.invoke(args=["api-key", "revoke", prefix])

    assert result.exit_code != 0
    assert message in result.output
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).where(ApiClient.revoked_at.is_not(None))) == 0
    assert [event["action"] for event in audit_trail(app)] == []


def test_api_key_revoke_twice_says_it_is_already_revoked(runner, pos, app):
    assert runner.invoke(args=["api-key", "revoke", pos.key[:10]]).exit_code == 0

    again = runner.invoke(args=["api-key", "revoke", pos.key[:10]])

    assert again.exit_code != 0 and "Already revoked" in again.output
    assert [event["action"] for event in audit_trail(app)] == ["api_key.create", "api_key.revoke"]


# --- user create -------------------------------------------------------------------------------------

def test_user_create_makes_a_staff_account(runner, factory, app):
    factory.store("S001")

    result = runner.invoke(args=["user", "create", "--email", "Cashier@Example.com", "--role", "cashier",
                                 "--password", "correct horse battery"])

    assert result.exit_code == 0, result.output
    with app.app_context():
        user = db.session.scalar(sa.select(StaffUser))
        assert (user.email, user.role, user.store.code) == ("cashier@example.com", "cashier", "S001")
        assert user.password_hash != "correct horse battery"
        assert check_password(user.password_hash, "correct horse battery")


def test_user_create_prompts_for_the_password(runner, app):
    result = runner.invoke(args=["user", "create", "--email", "admin@example.com", "--role", "admin"],
                           input="a long password\na long password\n")

    assert result.exit_code == 0, result.output
    with app.app_context():
        user = db.session.scalar(sa.select(StaffUser))
        assert user.role == "admin" and user.store is None
        assert check_password(user.password_hash, "a long password")


def test_user_create_refuses_bad_input(runner, app):
    args = ["user", "create", "--email", "a@example.com", "--password", "long enough password"]

    assert runner.invoke(args=[*args, "--role", "admin"]).exit_code == 0
    taken = runner.invoke(args=[*args, "--role", "admin"])
    short = runner.invoke(args=["user", "create", "--email", "b@example.com", "--role", "admin", "--password", "short"])
    role = runner.invoke(args=["user", "create", "--email", "c@example.com", "--role", "owner", "--password", "x" * 10])

    assert taken.exit_code != 0 and "email" in taken.output
    assert short.exit_code != 0 and "password" in short.output
    assert role.exit_code != 0
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count(StaffUser.id))) == 1


def test_user_create_is_audited_without_the_password(runner, app):
    runner.invoke(args=["user", "create", "--email", "Ann@Example.com", "--role", "admin",
                        "--password", "a long password"])

    [event] = audit_trail(app)
    assert event == {"action": "staff.create", "subject": "staff:ann@example.com", "staff_user_id": None,
                     "api_client_id": None, "before": None,
                     "after": {"email": "ann@example.com", "role": "admin", "store": None, "active": True}}
    with app.app_context():
        password_hash = db.session.scalar(sa.select(StaffUser.password_hash))
    assert "a long password" not in json.dumps(event) and password_hash not in json.dumps(event)


# --- user list, disable, enable, set-password --------------------------------------------------------

@pytest.fixture
def staff(factory):
    """An admin and a cashier of S001 (the factory's password)."""
    factory.staff("admin@example.com", "admin")
    factory.staff("cashier@example.com", "cashier")
    return {"admin": "admin@example.com", "cashier": "cashier@example.com"}


def test_user_list(runner, staff, factory, clock):
    clock.advance(days=1)
    factory.staff("marketer@example.com", "marketer")
    runner.invoke(args=["user", "disable", "cashier@example.com"])

    result = runner.invoke(args=["user", "list"])

    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "EMAIL                 ROLE      STORE  ACTIVE  CREATED",
        "admin@example.com     admin     S001   yes     2026-11-22T02:00:00Z",
        "cashier@example.com   cashier   S001   no      2026-11-22T02:00:00Z",
        "marketer@example.com  marketer  S001   yes     2026-11-23T02:00:00Z",
    ]


def test_user_disable_and_enable_are_audited(runner, staff, app):
    disabled = runner.invoke(args=["user", "disable", "Cashier@Example.com"])
    again = runner.invoke(args=["user", "disable", "cashier@example.com"])
    enabled = runner.invoke(args=["user", "enable", "cashier@example.com"])

    assert disabled.exit_code == 0 and "cashier@example.com disabled" in disabled.output
    assert again.exit_code == 0 and "already disabled" in again.output
    assert enabled.exit_code == 0 and "cashier@example.com enabled" in enabled.output
    state = {"email": "cashier@example.com", "role": "cashier", "store": "S001"}
    changes = [event for event in audit_trail(app) if event["subject"] == "staff:cashier@example.com"][1:]
    assert changes == [
        {"action": "staff.disable", "subject": "staff:cashier@example.com", "staff_user_id": None,
         "api_client_id": None, "before": {**state, "active": True}, "after": {**state, "active": False}},
        {"action": "staff.enable", "subject": "staff:cashier@example.com", "staff_user_id": None,
         "api_client_id": None, "before": {**state, "active": False}, "after": {**state, "active": True}},
    ]


def test_the_last_active_admin_cannot_be_disabled(runner, staff, factory, app):
    refused = runner.invoke(args=["user", "disable", "admin@example.com"])

    assert refused.exit_code != 0 and "last active admin" in refused.output
    with app.app_context():
        assert db.session.scalar(sa.select(StaffUser.active).where(StaffUser.email == "admin@example.com"))
    assert not [event for event in audit_trail(app) if event["action"] == "staff.disable"]

    # A disabled second admin is no one to hand over to; an active one is.
    factory.staff("second@example.com", "admin")
    assert runner.invoke(args=["user", "disable", "second@example.com"]).exit_code == 0
    assert runner.invoke(args=["user", "disable", "admin@example.com"]).exit_code != 0
    assert runner.invoke(args=["user", "enable", "second@example.com"]).exit_code == 0
    assert runner.invoke(args=["user", "disable", "admin@example.com"]).exit_code == 0


@pytest.mark.parametrize("command", ["disable", "enable", "set-password"])
def test_user_commands_refuse_an_unknown_email(runner, staff, app, command):
    result = runner.invoke(args=["user", command, "nobody@example.com", *(
        ["--password", "a long password"] if command == "set-password" else [])])

    assert result.exit_code != 0 and "no staff user 'nobody@example.com'" in result.output
    assert len(audit_trail(app)) == 2  # the two accounts' creation, nothing since


def test_user_set_password(runner, staff, app):
    result = runner.invoke(args=["user", "set-password", "cashier@example.com", "--password", "a new password"])

    assert result.exit_code == 0, result.output
    with app.app_context():
        password_hash = db.session.scalar(sa.select(StaffUser.password_hash).where(StaffUser.role == "cashier"))
    assert check_password(password_hash, "a new password")
    assert not check_password(password_hash, "correct horse battery")
    event = audit_trail(app)[-1]
    assert (event["action"], event["subject"], event["after"]) == (
        "staff.password", "staff:cashier@example.com", {"password_changed": True})
    assert "a new password" not in json.dumps(event) and password_hash not in json.dumps(event)


def test_user_set_password_prompts_hidden_and_twice(runner, staff, app):
    result = runner.invoke(args=["user", "set-password", "cashier@example.com"],
                           input="a new password\na new password\n")

    assert result.exit_code == 0, result.output
    assert "a new password" not in result.output
    with app.app_context():
        assert check_password(db.session.scalar(sa.select(StaffUser.password_hash).where(
            StaffUser.role == "cashier")), "a new password")


def test_user_set_password_refuses_a_short_one(runner, staff, app):
    result = runner.invoke(args=["user", "set-password", "cashier@example.com", "--password", "short"])

    assert result.exit_code != 0 and "password: At least 8 characters." in result.output
    with app.app_context():
        assert check_password(db.session.scalar(sa.select(StaffUser.password_hash).where(
            StaffUser.role == "cashier")), "correct horse battery")
    assert len(audit_trail(app)) == 2


# --- ledger verify -----------------------------------------------------------------------------------

@pytest.fixture
def some_activity(pos, factory):
    """Two members with earnings, a redemption and a partial refund."""
    first, second = factory.member(), factory.member()
    pos.sale(first, 12800, external_id="S-1")
    pos.sale(second, 50000, external_id="S-2")
    pos.sale(second, 1000, points_redeemed=200)
    pos.post("/transactions/S-2/refunds", json={"external_id": "R-1", "amount": 20000})
    return first, second


def test_ledger_verify_passes_on_a_clean_ledger(runner, some_activity):
    result = runner.invoke(args=["ledger", "verify"])

    assert result.exit_code == 0, result.output
    assert "ok" in result.output
    assert "BROKEN" not in result.output


def test_ledger_verify_reports_a_cached_balance_that_drifted(runner, session, some_activity):
    first, _ = some_activity
    session.execute(sa.text("UPDATE members SET points_balance = points_balance + 5 WHERE member_no = :no"),
                    {"no": first})
    session.commit()

    result = runner.invoke(args=["ledger", "verify"])

    assert result.exit_code != 0
    assert f"member {first}: cached balance 133 != sum of entries 128" in result.output
    assert "problem" in result.output


def test_ledger_verify_reports_lots_that_do_not_add_up(runner, session, some_activity):
    session.execute(sa.text("UPDATE points_lots SET remaining = remaining - 1 WHERE remaining > 0"))
    session.commit()

    result = runner.invoke(args=["ledger", "verify"])

    assert result.exit_code != 0
    assert "consumed but" in result.output
    assert "lots hold" in result.output


def test_the_ledger_table_refuses_rewrites(session, some_activity):
    for statement in ("UPDATE points_entries SET points = points + 1", "DELETE FROM points_entries"):
        with pytest.raises(sa.exc.DBAPIError, match="append-only"):
            session.execute(sa.text(statement))
        session.rollback()

    assert session.scalar(sa.text("SELECT SUM(points) FROM points_entries")) == 128 + 500 - 200 + 10 - 200
