"""Expiry (lots expire at the UTC midnight after occurred_at + 365 days, written off by the nightly job,
oldest-expiry first) and holds (points earned are pending for the hold period), driven by the
settable clock."""

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from loyalty.extensions import db
from loyalty.members.models import Member
from loyalty.points import tasks
from loyalty.points.models import LotAllocation, PointsEntry, PointsLot, ProgramSettings
from loyalty.points.services import verify_ledger

A_EXPIRES = datetime(2027, 1, 11, tzinfo=UTC)   # sale of 2026-01-10T02:00Z
B_EXPIRES = datetime(2027, 6, 2, tzinfo=UTC)    # sale of 2026-06-01T02:00Z
C_EXPIRES = datetime(2027, 11, 23, tzinfo=UTC)  # sale of 2026-11-22T02:00Z (now)


def points_of(pos, member_no: str) -> dict:
    return pos.get(f"/members/{member_no}").get_json()["points"]


def run_expiry(app) -> int:
    with app.app_context():
        return tasks.expire_lots()


def entries(app, member_no: str, kind: str) -> list[int]:
    with app.app_context():
        member_id = db.session.scalar(sa.select(Member.id).where(Member.member_no == member_no))
        return list(db.session.scalars(sa.select(PointsEntry.points).where(
            PointsEntry.member_id == member_id, PointsEntry.kind == kind).order_by(PointsEntry.id)))


def assert_ledger_ok(app):
    with app.app_context():
        report = verify_ledger(db.session)
        assert report.ok, report.problems


@pytest.fixture
def member_with_three_lots(pos, factory):
    """100 points expiring 2027-01-11, 200 expiring 2027-06-02, 300 expiring 2027-11-23; then 60 redeemed."""
    member_no = factory.member()
    pos.sale(member_no, 10000, occurred_at="2026-01-10T10:00:00+08:00")
    pos.sale(member_no, 20000, occurred_at="2026-06-01T10:00:00+08:00")
    pos.sale(member_no, 30000)
    assert pos.sale(member_no, 0, points_redeemed=60).status_code == 201
    return member_no


def test_redemption_took_the_soonest_expiring_lot(pos, member_with_three_lots):
    assert points_of(pos, member_with_three_lots)["expiring"] == [
        {"points": 40, "expires_at": "2027-01-11T00:00:00Z"},
        {"points": 200, "expires_at": "2027-06-02T00:00:00Z"},
        {"points": 300, "expires_at": "2027-11-23T00:00:00Z"},
    ]


def test_nothing_expires_before_the_midnight(pos, app, clock, member_with_three_lots):
    clock.set(A_EXPIRES - timedelta(seconds=1))

    assert run_expiry(app) == 0
    assert points_of(pos, member_with_three_lots)["balance"] == 540
    assert points_of(pos, member_with_three_lots)["available"] == 540


def test_expiry_writes_off_exactly_what_is_left_of_the_due_lots(pos, app, clock, member_with_three_lots):
    member_no = member_with_three_lots
    clock.set(A_EXPIRES)

    # Past its expiry the lot is no longer redeemable, even before the job has run.
    assert points_of(pos, member_no)["available"] == 500
    assert run_expiry(app) == 1

    after = points_of(pos, member_no)
    assert after["balance"] == 500 and after["available"] == 500
    assert entries(app, member_no, "expire") == [-40]
    assert after["expiring"][0] == {"points": 200, "expires_at": "2027-06-02T00:00:00Z"}
    assert_ledger_ok(app)


def test_running_the_expiry_job_twice_changes_nothing_the_second_time(pos, app, clock, member_with_three_lots):
    member_no = member_with_three_lots
    clock.set(B_EXPIRES + timedelta(hours=3))
    assert run_expiry(app) == 2
    balance = points_of(pos, member_no)["balance"]

    assert run_expiry(app) == 0

    assert balance == 300
    assert points_of(pos, member_no)["balance"] == 300
    assert entries(app, member_no, "expire") == [-40, -200]


def test_redeeming_oldest_first_then_expiring_leaves_the_newest_points(pos, app, clock, member_with_three_lots):
    member_no = member_with_three_lots
    # 240 more: the 40 left of the first lot and all 200 of the second.
    assert pos.sale(member_no, 0, points_redeemed=240).status_code == 201
    clock.set(B_EXPIRES)

    assert run_expiry(app) == 0

    assert points_of(pos, member_no) == {"balance": 300, "available": 300, "pending": 0,
                                         "expiring": [{"points": 300, "expires_at": "2027-11-23T00:00:00Z"}]}


def test_expired_points_cannot_be_redeemed_even_before_the_job(pos, clock, member_with_three_lots):
    member_no = member_with_three_lots
    clock.set(A_EXPIRES + timedelta(minutes=1))

    response = pos.sale(member_no, 0, points_redeemed=501, occurred_at="2027-01-11T08:01:00+08:00")

    assert response.status_code == 422
    assert response.get_json()["type"].endswith("/insufficient-points")


def test_a_backfilled_sale_past_its_lifetime_is_written_off_by_the_next_run(pos, factory, app):
    member_no = factory.member()

    body = pos.sale(member_no, 10000, occurred_at="2025-10-01T10:00:00+08:00").get_json()

    assert body["member"]["points"]["balance"] == 100
    assert body["member"]["points"]["available"] == 0
    assert run_expiry(app) == 1
    assert points_of(pos, member_no)["balance"] == 0
    assert_ledger_ok(app)


def test_expiry_records_which_lots_it_took(app, clock, member_with_three_lots):
    clock.set(B_EXPIRES)
    run_expiry(app)

    with app.app_context():
        taken = db.session.execute(
            sa.select(PointsLot.expires_at, LotAllocation.points)
            .join(LotAllocation, LotAllocation.lot_id == PointsLot.id)
            .join(PointsEntry, PointsEntry.id == LotAllocation.entry_id)
            .where(PointsEntry.kind == "expire").order_by(PointsLot.expires_at)
        ).all()
    assert [(expires_at, points) for expires_at, points in taken] == [(A_EXPIRES, 40), (B_EXPIRES, 200)]


# --- holds -------------------------------------------------------------------------------------------

@pytest.fixture
def fourteen_day_hold(app):
    with app.app_context():
        db.session.scalar(sa.select(ProgramSettings)).hold_days = 14
        db.session.commit()


def test_held_points_are_pending_until_the_hold_passes(pos, factory, clock, fourteen_day_hold):
    member_no = factory.member()

    body = pos.sale(member_no, 12800).get_json()

    assert body["points_earned"] == 128
    assert body["member"]["points"] == {"balance": 128, "available": 0, "pending": 128,
                                        "expiring": [{"points": 128, "expires_at": "2027-11-23T00:00:00Z"}]}
    clock.advance(days=14, seconds=-1)
    assert points_of(pos, member_no)["pending"] == 128
    clock.advance(seconds=1)
    assert points_of(pos, member_no) == {"balance": 128, "available": 128, "pending": 0,
                                         "expiring": [{"points": 128, "expires_at": "2027-11-23T00:00:00Z"}]}


def test_pending_points_cannot_be_redeemed(pos, factory, clock, fourteen_day_hold):
    member_no = factory.member()
    pos.sale(member_no, 12800)

    refused = pos.sale(member_no, 0, points_redeemed=1)

    assert refused.status_code == 422
    assert refused.get_json()["type"].endswith("/insufficient-points")
    clock.advance(days=14)
    later = pos.sale(member_no, 0, points_redeemed=128, occurred_at="2026-12-06T10:00:00+08:00")
    assert later.status_code == 201, later.get_json()
    assert later.get_json()["member"]["points"]["balance"] == 0


def test_only_released_lots_are_redeemable_while_others_are_on_hold(pos, factory, clock, fourteen_day_hold):
    member_no = factory.member()
    pos.sale(member_no, 10000)
    clock.advance(days=10)
    pos.sale(member_no, 5000, occurred_at="2026-12-02T10:00:00+08:00")
    clock.advance(days=4)

    assert points_of(pos, member_no)["available"] == 100
    assert points_of(pos, member_no)["pending"] == 50
    assert pos.sale(member_no, 0, points_redeemed=101, occurred_at="2026-12-06T10:00:00+08:00").status_code == 422


def test_a_refund_during_the_hold_takes_back_the_pending_points(pos, factory, app, fourteen_day_hold):
    member_no = factory.member()
    pos.sale(member_no, 12800, external_id="S-1")

    body = pos.post("/transactions/S-1/refunds", json={"external_id": "R-1", "amount": 12800}).get_json()

    assert body["points_reversed"] == 128
    assert body["member"]["points"] == {"balance": 0, "available": 0, "pending": 0, "expiring": []}
    assert_ledger_ok(app)


def test_release_holds_marks_released_lots_once(app, pos, factory, clock, fourteen_day_hold):
    member_no = factory.member()
    pos.sale(member_no, 12800)
    with app.app_context():
        assert tasks.release_holds() == 0
    clock.advance(days=14)

    with app.app_context():
        assert tasks.release_holds() == 1
        assert tasks.release_holds() == 0
        assert db.session.scalar(sa.select(PointsLot.released_at)) == clock()


def test_a_till_running_fast_does_not_put_points_on_hold(pos, factory):
    member_no = factory.member()

    # Server time is 02:00Z; the till says 02:04Z. With no hold period the points are available at once.
    body = pos.sale(member_no, 12800, occurred_at="2026-11-22T10:04:00+08:00").get_json()

    assert body["member"]["points"]["available"] == 128
    assert body["member"]["points"]["pending"] == 0
    assert pos.sale(member_no, 0, points_redeemed=128).status_code == 201
