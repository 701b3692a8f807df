"""Manual adjustments by staff (loyalty.points.services.adjust_points): a reason is required, each is
audited, and a deduction may not take the balance below zero."""

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from loyalty.auth.models import AuditEvent, StaffUser
from loyalty.errors import InsufficientPoints, ValidationFailed
from loyalty.extensions import db
from loyalty.members.models import Member
from loyalty.points.models import PointsEntry, PointsLot
from loyalty.points.program import load_program
from loyalty.points.services import adjust_points, verify_ledger

NOW = datetime(2026, 11, 22, 2, 0, tzinfo=UTC)


@pytest.fixture
def staff_id(app):
    """A staff user made directly: these tests never log in, so they skip the (slow) password hash."""
    with app.app_context():
        user = StaffUser(email="ops@example.com", role="admin", password_hash="!")
        db.session.add(user)
        db.session.commit()
        return user.id


def adjust(session, member_no: str, points: int, reason: str, staff_id: int, now: datetime = NOW) -> PointsEntry:
    member = session.scalar(sa.select(Member).where(Member.member_no == member_no))
    return adjust_points(session, load_program(session), member, points, reason=reason,
                         staff_user=session.get(StaffUser, staff_id), now=now)


def written(session) -> tuple[int, int]:
    """(adjust entries, audit events) in the database."""
    return (session.scalar(sa.select(sa.func.count(PointsEntry.id)).where(PointsEntry.kind == "adjust")),
            session.scalar(sa.select(sa.func.count(AuditEvent.id)).where(AuditEvent.action == "points.adjust")))


def test_a_credit_is_recorded_audited_and_redeemable_at_once(session, factory, pos, staff_id):
    member_no = factory.member()

    entry = adjust(session, member_no, 250, "  goodwill: late delivery  ", staff_id)
    session.commit()

    assert (entry.kind, entry.points, entry.reason, entry.staff_user_id, entry.source) == (
        "adjust", 250, "goodwill: late delivery", staff_id, "staff")
    event = session.scalar(sa.select(AuditEvent).where(AuditEvent.action == "points.adjust"))
    assert event.action == "points.adjust"
    assert event.staff_user_id == staff_id
    assert event.member_id == entry.member_id
    assert event.before == {"points_balance": 0}
    assert event.after == {"points_balance": 250, "points": 250, "reason": "goodwill: late delivery"}
    assert event.created_at == NOW
    lot = session.scalar(sa.select(PointsLot))
    assert lot.available_at == NOW and lot.expires_at == datetime(2027, 11, 23, tzinfo=UTC)
    points = pos.get(f"/members/{member_no}").get_json()["points"]
    assert points["balance"] == 250 and points["available"] == 250


def test_a_deduction_takes_points_soonest_expiring_first(session, factory, pos, staff_id):
    member_no = factory.member()
    pos.sale(member_no, 10000, occurred_at="2026-01-10T10:00:00+08:00")
    pos.sale(member_no, 20000)

    adjust(session, member_no, -150, "duplicate sale keyed twice", staff_id)
    session.commit()

    assert pos.get(f"/members/{member_no}").get_json()["points"]["expiring"] == [
        {"points": 150, "expires_at": "2027-11-23T00:00:00Z"}]
    event = session.scalar(sa.select(AuditEvent).where(AuditEvent.action == "points.adjust"))
    assert (event.before, event.after["points_balance"], event.after["points"]) == (
        {"points_balance": 300}, 150, -150)
    assert verify_ledger(session).ok


def test_a_deduction_to_exactly_zero_is_allowed(session, factory, pos, staff_id):
    member_no = factory.member()
    pos.sale(member_no, 10000)

    adjust(session, member_no, -100, "closing the account balance", staff_id)
    session.commit()

    assert pos.get(f"/members/{member_no}").get_json()["points"]["balance"] == 0


def test_a_deduction_below_zero_is_refused_and_writes_nothing(session, factory, pos, staff_id):
    member_no = factory.member()
    pos.sale(member_no, 10000)

    with pytest.raises(InsufficientPoints):
        adjust(session, member_no, -101, "too much", staff_id)
    session.rollback()

    assert written(session) == (0, 0)
    assert pos.get(f"/members/{member_no}").get_json()["points"]["balance"] == 100


def test_a_reason_is_required(session, factory, staff_id):
    member_no = factory.member()

    for reason in ("", "   "):
        with pytest.raises(ValidationFailed) as raised:
            adjust(session, member_no, 50, reason, staff_id)
        session.rollback()
        assert "reason" in raised.value.errors

    assert written(session) == (0, 0)


def test_an_adjustment_of_nothing_is_refused(session, factory, staff_id):
    member_no = factory.member()

    with pytest.raises(ValidationFailed) as raised:
        adjust(session, member_no, 0, "no-op", staff_id)
    session.rollback()

    assert "points" in raised.value.errors
    assert written(session) == (0, 0)


def test_a_credit_settles_a_negative_balance_first(session, factory, pos, staff_id):
    member_no = factory.member()
    pos.sale(member_no, 12800, external_id="S-1")
    pos.sale(member_no, 0, points_redeemed=128)
    pos.post("/transactions/S-1/refunds", json={"external_id": "R-1", "amount": 12800})

    adjust(session, member_no, 200, "apology", staff_id)
    session.commit()

    points = pos.get(f"/members/{member_no}").get_json()["points"]
    assert points["balance"] == 72 and points["available"] == 72
    assert verify_ledger(session).ok
