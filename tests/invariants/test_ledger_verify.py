"""`loyalty ledger verify` (issue 2): 0 on a ledger built by real sales, redemptions, refunds and expiry,
and non-zero, naming the break, on a ledger broken on purpose in each of the ways docs/architecture.md's
invariants 1-4 forbid."""

from datetime import timedelta

import pytest
import sqlalchemy as sa

from loyalty.points import tasks
from loyalty.sales.models import Transaction
from tests.support.clock import DEFAULT_NOW

OCCURRED_AT = "2026-11-22T10:00:00+08:00"


@pytest.fixture
def ledger(app, clock, factory, pos):
    """Every path that writes the ledger: earning, redemption, partial and full refunds (reversals and
    restorations), a balance taken below zero and paid off, an anonymous sale, and an expiry run."""
    spender, debtor, sleeper = factory.member(), factory.member(), factory.member()
    posted = [
        pos.sale(spender, 80_000, external_id="L-1"),
        pos.sale(spender, 10_000, external_id="L-2", points_redeemed=300),
        pos.post("/transactions/L-2/refunds", json={"external_id": "L-R1", "amount": 4_000}),
        pos.post("/transactions/L-2/refunds", json={"external_id": "L-R2", "amount": 6_000}),
        pos.sale(debtor, 50_000, external_id="L-3"),
        pos.sale(debtor, 0, external_id="L-4", points_redeemed=400),
        pos.post("/transactions/L-3/refunds", json={"external_id": "L-R3", "amount": 50_000}),
        pos.sale(None, 9_900, external_id="L-5"),
        pos.post("/transactions/L-5/refunds", json={"external_id": "L-R5", "amount": 900}),
        pos.sale(sleeper, 30_000, external_id="L-6"),
    ]
    assert [response.status_code for response in posted] == [201] * len(posted), [r.get_json() for r in posted]
    assert pos.get(f"/members/{debtor}").get_json()["points"]["balance"] == -400
    clock.set(DEFAULT_NOW + timedelta(days=400))
    later = pos.sale(debtor, 60_000, external_id="L-7", occurred_at=clock().isoformat())
    assert later.status_code == 201, later.get_json()
    with app.app_context():
        assert tasks.expire_lots() >= 2
    refund_after_expiry = pos.post("/transactions/L-6/refunds", json={"external_id": "L-R6", "amount": 10_000})
    assert refund_after_expiry.status_code == 201, refund_after_expiry.get_json()
    assert pos.get(f"/members/{sleeper}").get_json()["points"]["balance"] < 0
    return {"spender": spender, "debtor": debtor, "sleeper": sleeper}


def verify(runner):
    result = runner.invoke(args=["ledger", "verify"])
    return result.exit_code, result.output


def test_a_ledger_built_by_real_activity_verifies(runner, ledger):
    code, output = verify(runner)
    assert code == 0, output
    assert "ledger verify: ok" in output
    assert "BROKEN" not in output


@pytest.mark.parametrize("delta", [1, -1])
def test_a_cached_balance_off_the_entries_is_reported(runner, session, ledger, delta):
    session.execute(sa.text("UPDATE members SET points_balance = points_balance + :delta WHERE member_no = :no"),
                    {"delta": delta, "no": ledger["spender"]})
    session.commit()
    code, output = verify(runner)
    assert code != 0
    assert f"member {ledger['spender']}: cached balance" in output
    assert "problem(s)" in output


def test_a_negative_balance_off_the_entries_is_reported(runner, session, ledger):
    """The debtor's cached balance is below zero and no lot holds points; move the cache only."""
    session.execute(sa.text("UPDATE members SET points_balance = points_balance - 7 WHERE member_no = :no"),
                    {"no": ledger["sleeper"]})
    session.commit()
    code, output = verify(runner)
    assert code != 0 and f"member {ledger['sleeper']}: cached balance" in output


def test_an_entry_written_behind_the_wallets_back_is_reported(runner, session, ledger):
    """A ledger row whose points reach neither the cached balance nor any lot."""
    member_id = session.scalar(sa.text("SELECT id FROM members WHERE member_no = :no"), {"no": ledger["spender"]})
    session.execute(sa.text(
        "INSERT INTO points_entries (member_id, kind, points, qualifying_points, reason, source, occurred_at, "
        "created_at) VALUES (:member_id, 'bonus', 50, 0, 'forged', 'test', :at, :at)"),
        {"member_id": member_id, "at": DEFAULT_NOW})
    session.commit()
    code, output = verify(runner)
    assert code != 0 and f"member {ledger['spender']}: cached balance" in output


@pytest.mark.parametrize("delta", [-1, 1])
def test_a_lot_moved_without_an_allocation_is_reported(runner, session, ledger, delta):
    """One lot's remaining changed by hand, within 0..points so no constraint stops it."""
    lot_id = session.scalar(sa.text(
        "SELECT id FROM points_lots WHERE remaining > 0 AND remaining < points ORDER BY id LIMIT 1"))
    assert lot_id is not None
    session.execute(sa.text("UPDATE points_lots SET remaining = remaining + :delta WHERE id = :id"),
                    {"delta": delta, "id": lot_id})
    session.commit()
    code, output = verify(runner)
    assert code != 0
    assert f"lot {lot_id}:" in output and "consumed but" in output
    assert "lots hold" in output


def _forge_refund(session, sale_external_id: str, amount: int, points_reversed: int = 0) -> None:
    sale = session.scalar(sa.select(Transaction).where(Transaction.kind == "sale",
                                                       Transaction.external_id == sale_external_id))
    session.add(Transaction(
        client_id=sale.client_id, kind="refund", external_id=f"FORGED-{sale_external_id}", sale_id=sale.id,
        member_id=sale.member_id, store_id=sale.store_id, channel=sale.channel, occurred_at=sale.occurred_at,
        currency=sale.currency, amount=amount, subtotal=amount, points_reversed=points_reversed))
    session.commit()


def test_refunds_above_their_sale_are_reported(runner, session, ledger):
    """L-2 (10,000) is fully refunded already; one more refund row takes its refunds past the sale."""
    _forge_refund(session, "L-2", 1)
    code, output = verify(runner)
    assert code != 0
    assert "sale L-2: refunded 10001 of 10000" in output


def test_reversals_above_the_earning_are_reported(runner, session, ledger):
    earned = session.scalar(sa.text("SELECT points_earned FROM transactions WHERE external_id = 'L-1'"))
    _forge_refund(session, "L-1", 1, points_reversed=earned + 1)
    code, output = verify(runner)
    assert code != 0
    assert f"reversed {earned + 1} of {earned} earned" in output


def test_a_sales_refunded_amount_out_of_step_with_its_refunds_is_reported(runner, session, ledger):
    session.execute(sa.text("UPDATE transactions SET refunded_amount = refunded_amount - 1 "
                            "WHERE kind = 'sale' AND external_id = 'L-2'"))
    session.commit()
    code, output = verify(runner)
    assert code != 0 and "sale L-2: refunded 10000 of 10000" in output


def test_a_ledger_without_its_append_only_guard_is_reported(runner, session, ledger):
    """Invariant 3 holds only while the triggers refusing UPDATE and DELETE are there."""
    postgresql = session.get_bind().dialect.name == "postgresql"
    if postgresql:
        session.execute(sa.text("ALTER TABLE points_entries DISABLE TRIGGER points_entries_append_only"))
    else:
        session.execute(sa.text("DROP TRIGGER points_entries_no_delete"))
    session.commit()
    try:
        code, output = verify(runner)
        assert code != 0 and "append-only" in output
    finally:
        if postgresql:
            # TRUNCATE between tests would not bring a trigger back; the SQLite file is replaced anyway.
            session.rollback()
            session.execute(sa.text("ALTER TABLE points_entries ENABLE TRIGGER points_entries_append_only"))
            session.commit()


def test_ledger_rows_cannot_be_rewritten(runner, session, ledger):
    """Invariant 3 at the source: the database itself refuses, and the ledger still verifies."""
    for statement in ("UPDATE points_entries SET points = points + 1",
                      "DELETE FROM points_entries WHERE kind = 'expire'"):
        with pytest.raises(sa.exc.DBAPIError, match="append-only"):
            session.execute(sa.text(statement))
        session.rollback()
    code, output = verify(runner)
    assert code == 0, output
