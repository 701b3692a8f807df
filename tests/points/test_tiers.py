"""Tiers (docs/architecture.md "Defaults"): upgrade the moment qualifying points (base points net of reversals,
occurred in the last 365 days) reach a threshold; downgrade only by the daily evaluation once the
tier has been held 365 days; renew when still qualified. Every move is kept in tier_changes."""

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from loyalty.extensions import db
from loyalty.members.models import Member
from loyalty.points import tasks
from loyalty.points.models import Tier, TierChange

NOW = datetime(2026, 11, 22, 2, 0, tzinfo=UTC)


def tier_of(pos, member_no: str) -> str:
    return pos.get(f"/members/{member_no}").get_json()["tier"]["code"]


def changes(app, member_no: str) -> list[tuple]:
    """(from, to, reason, qualifying points, when) of each tier change, oldest first."""
    with app.app_context():
        member_id = db.session.scalar(sa.select(Member.id).where(Member.member_no == member_no))
        codes = {tier.id: tier.code for tier in db.session.scalars(sa.select(Tier))}
        return [(codes.get(change.from_tier_id), codes[change.to_tier_id], change.reason, change.qualifying_points,
                 change.created_at)
                for change in db.session.scalars(
                    sa.select(TierChange).where(TierChange.member_id == member_id).order_by(TierChange.id))]


def evaluate(app) -> dict:
    with app.app_context():
        return tasks.evaluate_tiers()


def at(moment: datetime) -> str:
    return moment.isoformat()


def test_upgrade_to_silver_the_moment_qualifying_points_reach_1000(pos, factory, app):
    member_no = factory.member()
    below = pos.sale(member_no, 99900).get_json()
    assert below["member"]["tier"]["code"] == "BRONZE"

    crossing = pos.sale(member_no, 10100).get_json()
    next_sale = pos.sale(member_no, 10000).get_json()

    # The upgrading sale earns at the old multiplier; the next one at x1.25.
    assert crossing["points_earned"] == 101
    assert crossing["member"]["tier"] == {"code": "SILVER", "name": "Silver", "multiplier": "1.25"}
    assert next_sale["points_earned"] == 125
    assert changes(app, member_no) == [
        (None, "BRONZE", "enrolment", 0, NOW),
        ("BRONZE", "SILVER", "upgrade", 1100, NOW),
    ]


def test_exactly_the_threshold_upgrades(pos, factory):
    member_no = factory.member()

    assert pos.sale(member_no, 100099).get_json()["member"]["tier"]["code"] == "SILVER"


def test_one_sale_can_climb_two_tiers(pos, factory, app):
    member_no = factory.member()

    body = pos.sale(member_no, 500000).get_json()

    assert body["points_earned"] == 5000
    assert body["member"]["tier"]["code"] == "GOLD"
    assert [change[:3] for change in changes(app, member_no)][1:] == [("BRONZE", "GOLD", "upgrade")]
    assert pos.sale(member_no, 10000).get_json()["points_earned"] == 150


def test_qualifying_points_are_base_points_not_multiplied_points(pos, factory):
    member_no = factory.member()
    pos.sale(member_no, 100000)  # Silver from here on
    earned = pos.sale(member_no, 390000).get_json()

    # 4,875 points earned at x1.25, but only 3,900 qualify: 4,900 in all, short of Gold's 5,000.
    assert earned["points_earned"] == 4875
    assert earned["member"]["tier"]["code"] == "SILVER"
    assert pos.sale(member_no, 10000).get_json()["member"]["tier"]["code"] == "GOLD"


def test_qualifying_points_are_net_of_refunds(pos, factory):
    member_no = factory.member()
    pos.sale(member_no, 99900, external_id="S-1")
    refund = pos.post("/transactions/S-1/refunds", json={"external_id": "R-1", "amount": 10000}).get_json()
    assert refund["points_reversed"] == 100

    # 999 - 100 reversed + 100 = 999: still Bronze; one more point reaches Silver.
    assert pos.sale(member_no, 10000).get_json()["member"]["tier"]["code"] == "BRONZE"
    assert pos.sale(member_no, 100).get_json()["member"]["tier"]["code"] == "SILVER"


def test_only_the_last_365_days_qualify(pos, factory):
    member_no = factory.member()
    # 999 points that occurred more than 365 days ago, then 999 inside the window.
    pos.sale(member_no, 99900, occurred_at="2025-11-20T10:00:00+08:00")
    pos.sale(member_no, 99900, occurred_at="2025-11-23T10:00:00+08:00")

    assert tier_of(pos, member_no) == "BRONZE"
    assert pos.sale(member_no, 100).get_json()["member"]["tier"]["code"] == "SILVER"


def test_a_backfilled_old_sale_does_not_upgrade(pos, factory):
    member_no = factory.member()

    body = pos.sale(member_no, 500000, occurred_at="2025-06-01T10:00:00+08:00").get_json()

    assert body["member"]["tier"]["code"] == "BRONZE"


def test_no_downgrade_before_the_tier_was_held_365_days(pos, factory, app, clock):
    member_no = factory.member()
    pos.sale(member_no, 99900, occurred_at="2026-01-01T10:00:00+08:00")
    pos.sale(member_no, 100)  # Silver on 2026-11-22
    assert tier_of(pos, member_no) == "SILVER"

    # By mid-2027 the January points are out of the window and the member no longer qualifies,
    # but the tier is kept until it has been held a year.
    clock.set(NOW + timedelta(days=200))
    assert evaluate(app) == {"downgraded": 0, "renewed": 0}
    clock.set(NOW + timedelta(days=365) - timedelta(seconds=1))
    assert evaluate(app) == {"downgraded": 0, "renewed": 0}

    assert tier_of(pos, member_no) == "SILVER"
    assert len(changes(app, member_no)) == 2


def test_downgrade_after_a_year_when_no_longer_qualified(pos, factory, app, clock):
    member_no = factory.member()
    pos.sale(member_no, 99900, occurred_at="2026-01-01T10:00:00+08:00")
    pos.sale(member_no, 100)
    year_later = NOW + timedelta(days=365, hours=16)
    clock.set(year_later)

    assert evaluate(app) == {"downgraded": 1, "renewed": 0}

    assert tier_of(pos, member_no) == "BRONZE"
    assert changes(app, member_no)[-1] == ("SILVER", "BRONZE", "downgrade", 0, year_later)
    assert evaluate(app) == {"downgraded": 0, "renewed": 0}
    # Back at Bronze's x1.00.
    assert pos.sale(member_no, 10000, occurred_at=at(year_later)).get_json()["points_earned"] == 100


def test_downgrade_goes_to_the_tier_still_qualified_for(pos, factory, app, clock):
    member_no = factory.member()
    pos.sale(member_no, 500000)  # Gold
    clock.set(NOW + timedelta(days=300))
    pos.sale(member_no, 200000, occurred_at=at(clock()))  # 2,000 qualifying points inside next year's window
    clock.set(NOW + timedelta(days=366))

    assert evaluate(app) == {"downgraded": 1, "renewed": 0}

    assert tier_of(pos, member_no) == "SILVER"
    assert changes(app, member_no)[-1][:4] == ("GOLD", "SILVER", "downgrade", 2000)


def test_renewal_when_still_qualified_keeps_the_tier_another_year(pos, factory, app, clock):
    member_no = factory.member()
    pos.sale(member_no, 100000)  # Silver on 2026-11-22
    clock.set(NOW + timedelta(days=200))
    pos.sale(member_no, 100000, occurred_at=at(clock()))
    renewal = NOW + timedelta(days=366)
    clock.set(renewal)

    assert evaluate(app) == {"downgraded": 0, "renewed": 1}
    assert evaluate(app) == {"downgraded": 0, "renewed": 0}

    assert tier_of(pos, member_no) == "SILVER"
    assert len(changes(app, member_no)) == 2
    assert factory.member_row(member_no).tier_since == renewal
    # A year after the renewal, with nothing earned since, the member goes back to Bronze.
    clock.set(renewal + timedelta(days=364))
    assert evaluate(app) == {"downgraded": 0, "renewed": 0}
    clock.set(renewal + timedelta(days=366))
    assert evaluate(app) == {"downgraded": 1, "renewed": 0}
    assert tier_of(pos, member_no) == "BRONZE"


def test_bronze_members_are_never_evaluated(pos, factory, app, clock):
    member_no = factory.member()
    pos.sale(member_no, 500)
    clock.set(NOW + timedelta(days=800))

    assert evaluate(app) == {"downgraded": 0, "renewed": 0}
    assert changes(app, member_no)[1:] == []


def test_in_a_batch_the_sale_after_the_upgrade_earns_at_the_new_tier(pos, factory):
    member_no = factory.member()
    sale = {"occurred_at": "2026-11-22T10:00:00+08:00", "currency": "CNY", "member": member_no}

    results = pos.post("/transactions/batch", json={"sales": [
        {**sale, "external_id": "S-1", "amount": 100000}, {**sale, "external_id": "S-2", "amount": 10000},
    ]}).get_json()["results"]

    assert [r["transaction"]["points_earned"] for r in results] == [1000, 125]
    assert [r["transaction"]["member"]["tier"]["code"] for r in results] == ["SILVER", "SILVER"]


def test_in_a_batch_a_member_can_climb_twice_and_every_move_is_kept(pos, factory, app):
    """Upgrades within one unit of work are written together at its end: each move is a row, and the
    member's row holds the last."""
    member_no = factory.member()
    sale = {"occurred_at": "2026-11-22T10:00:00+08:00", "currency": "CNY", "member": member_no}

    results = pos.post("/transactions/batch", json={"sales": [
        {**sale, "external_id": "S-1", "amount": 100000}, {**sale, "external_id": "S-2", "amount": 400000},
        {**sale, "external_id": "S-3", "amount": 10000},
    ]}).get_json()["results"]

    assert [r["transaction"]["points_earned"] for r in results] == [1000, 5000, 150]
    assert [r["transaction"]["member"]["tier"]["code"] for r in results] == ["SILVER", "GOLD", "GOLD"]
    assert changes(app, member_no)[1:] == [("BRONZE", "SILVER", "upgrade", 1000, NOW),
                                           ("SILVER", "GOLD", "upgrade", 5000, NOW)]
    assert tier_of(pos, member_no) == "GOLD"
    with app.app_context():
        member = db.session.scalar(sa.select(Member).where(Member.member_no == member_no))
        assert member.tier.code == "GOLD" and member.tier_since == NOW
