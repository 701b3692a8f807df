"""The operator CLI (API.md "Operator CLI"): API keys, staff accounts, and the ledger check, which must
catch a ledger broken on purpose. Also: the ledger table itself refuses rewrites."""

import pytest
import sqlalchemy as sa

from loyalty.auth.models import ApiClient, StaffUser
from loyalty.auth.services import check_password, hash_api_key
from loyalty.extensions import db


def last_line(output: str) -> str:
    return output.strip().splitlines()[-1]


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


def test_api_key_refuses_an_unknown_store_or_scope(runner, factory, app):
    factory.store("S001")

    unknown_store = runner.invoke(args=["api-key", "create", "--name", "x", "--store", "S404"])
    unknown_scope = runner.invoke(args=["api-key", "create", "--name", "x", "--scope", "root"])

    assert unknown_store.exit_code != 0 and "S404" in unknown_store.output
    assert unknown_scope.exit_code != 0
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count(ApiClient.id))) == 0


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
