"""Promotions in the sale path (docs/api.md "Promotions"): targeting by tier, days and hours in the
store's time zone, SKU/category and minimum spend; stacking before the tier multiplier; the per-member
limit and the budget, exact under concurrency on PostgreSQL."""

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from loyalty.campaigns.segment_models import Segment, SegmentMember
from loyalty.clock import utcnow
from loyalty.errors import ValidationFailed
from loyalty.extensions import db
from loyalty.points.promotion_models import Promotion, PromotionGrant
from loyalty.points.promotions import Hours, PromotionSpec, create_promotion
from tests.invariants.test_concurrency import assert_ledger_ok, concurrently, group_commit  # noqa: F401

DECEMBER = datetime(2026, 12, 20, tzinfo=UTC)


@pytest.fixture(autouse=True)
def december(clock):
    clock.set(DECEMBER)


def promotion(app, **fields) -> int:
    with app.app_context():
        created = create_promotion(db.session, PromotionSpec(**{"name": "Promo", **fields}), now=utcnow())
        db.session.commit()
        return created.id


def gold_member(factory, pos) -> str:
    member_no = factory.member()
    assert pos.sale(member_no, 500_000, occurred_at="2026-12-01T10:00:00Z").get_json()["member"]["tier"]["code"] \
        == "GOLD"
    return member_no


def earned(pos, member_no, amount=10_000, occurred_at="2026-12-02T02:00:00Z", **fields) -> tuple[int, list]:
    response = pos.sale(member_no, amount, occurred_at=occurred_at, **fields)
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    return body["points_earned"], [(line["name"], line["points"]) for line in body["promotions"]]


def given(app, promotion_id) -> int:
    with app.app_context():
        return db.session.get(Promotion, promotion_id).points_given


def test_gold_triple_on_weekends_in_the_stores_time_zone(app, factory, pos):
    promotion(app, name="GOLD weekend triple", multiplier_percent=300, tiers=("GOLD",), days_of_week=(6, 7))
    gold = gold_member(factory, pos)
    bronze = factory.member()

    # S001 is in Asia/Shanghai (UTC+8). Base 100 points; the promotion's extra 200 x GOLD's 1.5 = 300.
    saturday_night = earned(pos, gold, occurred_at="2026-12-05T15:30:00Z")  # Saturday 23:30 local
    sunday_night = earned(pos, gold, occurred_at="2026-12-06T15:30:00Z")  # Sunday 23:30 local
    monday_early = earned(pos, gold, occurred_at="2026-12-06T16:30:00Z")  # Monday 00:30 local, Sunday in UTC
    friday_in_utc = earned(pos, gold, occurred_at="2026-12-04T16:30:00Z")  # Saturday 00:30 local

    assert saturday_night == (450, [("GOLD weekend triple", 300)])
    assert sunday_night == (450, [("GOLD weekend triple", 300)])
    assert monday_early == (150, [])
    assert friday_in_utc == (450, [("GOLD weekend triple", 300)])
    assert earned(pos, bronze, occurred_at="2026-12-05T15:30:00Z") == (100, [])


def test_hours_window_in_local_time(app, factory, pos):
    promotion(app, name="Lunch", bonus_points=10, hours=Hours("10:00", "14:00"))
    late = promotion(app, name="Late", bonus_points=1, hours=Hours("22:00", "02:00"))
    member_no = factory.member()

    def promotions_at(local_time: str) -> list:
        return [name for name, _ in earned(pos, member_no, occurred_at=f"2026-12-02T{local_time}:00+08:00")[1]]

    assert promotions_at("09:59") == []
    assert promotions_at("10:00") == ["Lunch"]
    assert promotions_at("13:59") == ["Lunch"]
    assert promotions_at("14:00") == []
    assert promotions_at("23:00") == ["Late"]
    assert promotions_at("01:59") == ["Late"]
    assert promotions_at("02:00") == []
    assert given(app, late) == 2


def test_sku_and_category_promotions_multiply_only_their_lines(app, factory, pos):
    promotion(app, name="Shoes double", multiplier_percent=200, categories=("shoes",))
    promotion(app, name="A1 bonus", bonus_points=7, skus=("A1",))
    member_no = factory.member()
    lines = [{"sku": "A1", "category": "shoes", "quantity": 1, "unit_price": 3000, "amount": 3000},
             {"sku": "B2", "category": "shoes", "quantity": 1, "unit_price": 3000, "amount": 3000},
             {"sku": "C3", "category": "bags", "quantity": 1, "unit_price": 4000, "amount": 4000}]

    # Base 100 on 10,000 paid; the shoes lines are 6,000 of it: 60 base points doubled = +60.
    assert earned(pos, member_no, lines=lines) == (167, [("Shoes double", 60), ("A1 bonus", 7)])
    # A basket with none of their lines gets neither.
    assert earned(pos, member_no, lines=lines[2:], amount=4000) == (40, [])


def test_min_spend_is_on_the_subtotal(app, factory, pos):
    promotion(app, name="Big basket", bonus_points=50, min_spend=10_000)
    member_no = factory.member()

    assert earned(pos, member_no, amount=9_999) == (99, [])
    assert earned(pos, member_no, amount=10_000) == (150, [("Big basket", 50)])
    assert earned(pos, member_no, amount=9_000, subtotal=10_000) == (140, [("Big basket", 50)])


def test_promotion_extra_comes_before_the_tier_multiplier(app, factory, pos):
    promotion(app, name="Bonus 50", bonus_points=50)
    gold = gold_member(factory, pos)

    # (base 100 + 50) x 1.5 = 225; after the multiplier it would have been 150 + 50 = 200.
    assert earned(pos, gold) == (225, [("Bonus 50", 75)])


def test_ended_promotion_and_others_scope_give_nothing(app, factory, pos):
    promotion(app, name="Online only", bonus_points=5, channels=("online",))
    promotion(app, name="From 3 Dec", bonus_points=5, stores=("S001",), starts_at=datetime(2026, 12, 3, tzinfo=UTC))
    member_no = factory.member()

    assert earned(pos, member_no, occurred_at="2026-12-02T02:00:00Z") == (100, [])
    assert earned(pos, member_no, occurred_at="2026-12-03T02:00:00Z") == (105, [("From 3 Dec", 5)])
    assert earned(pos, member_no, channel="online", occurred_at="2026-12-03T02:00:00Z")[0] == 110


def test_per_member_limit_caps_what_each_member_gets(app, factory, pos):
    limited = promotion(app, name="Capped", bonus_points=100, per_member_limit=250)
    first, second = factory.member(), factory.member()

    assert [earned(pos, first)[1] for _ in range(4)] == [[("Capped", 100)], [("Capped", 100)], [("Capped", 50)], []]
    assert earned(pos, second)[1] == [("Capped", 100)]
    assert given(app, limited) == 350


def test_budget_caps_the_last_grant_and_then_gives_nothing(app, factory, pos):
    budgeted = promotion(app, name="Budget", bonus_points=100, budget_points=250)
    members = [factory.member() for _ in range(4)]

    assert [earned(pos, member_no)[1] for member_no in members] == [
        [("Budget", 100)], [("Budget", 100)], [("Budget", 50)], []]
    assert given(app, budgeted) == 250
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.sum(PromotionGrant.points))) == 250
    assert_ledger_ok(app)


def test_the_history_line_names_the_promotion(app, factory, pos):
    promotion(app, name="Bonus 5", bonus_points=5)
    member_no = factory.member()
    pos.sale(member_no, 10_000, external_id="S-H1", occurred_at="2026-12-02T02:00:00Z")

    entry = pos.get(f"/members/{member_no}/points").get_json()["data"][0]
    assert entry["reason"] == "sale S-H1 (promotions: Bonus 5 +5)"
    assert entry["points"] == 105


@pytest.mark.postgres_only
@pytest.mark.usefixtures("group_commit")
def test_budget_is_exact_under_50_concurrent_sales(app, factory, pos):
    """50 tills post at once for 50 members; each sale would take 30 points of a 1,000-point budget.
    Grouped, the sales share transactions; one by one, only the conditional UPDATEs keep them apart."""
    budgeted = promotion(app, name="Budget 1000", bonus_points=30, budget_points=1_000)
    members = [factory.member() for _ in range(50)]

    def post(http, index):
        return http.post("/api/v1/transactions", headers=pos.headers, json={
            "external_id": f"PROMO-{index}", "member": members[index], "occurred_at": "2026-12-02T10:00:00+08:00",
            "currency": "CNY", "amount": 10_000})

    answers = concurrently(app, 50, post)

    assert {answer.status for answer in answers} == {201}
    granted = [line["points"] for answer in answers for line in answer.body["promotions"]]
    assert sum(granted) == 1_000
    assert sorted(granted)[-33:] == [30] * 33 and sorted(granted)[:-33] == [10]
    assert sum(answer.body["points_earned"] for answer in answers) == 50 * 100 + 1_000
    assert given(app, budgeted) == 1_000
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.sum(PromotionGrant.points))) == 1_000
    assert_ledger_ok(app)


def test_segment_promotion_gives_only_to_the_segments_current_members(app, factory, pos):
    inside, outside = factory.member(), factory.member()
    with app.app_context():
        segment = Segment(name="VIP", rule={"all": []})
        db.session.add(segment)
        db.session.flush()
        db.session.add(SegmentMember(segment_id=segment.id, member_id=factory.member_row(inside).id,
                                     entered_at=utcnow()))
        db.session.commit()
        segment_id = segment.id
    promotion(app, name="VIP bonus", bonus_points=20, segment_id=segment_id)

    assert earned(pos, inside) == (120, [("VIP bonus", 20)])
    assert earned(pos, outside) == (100, [])
    with app.app_context(), pytest.raises(ValidationFailed) as refused:
        create_promotion(db.session, PromotionSpec(name="Nowhere", bonus_points=1, segment_id=segment_id + 1),
                         now=utcnow())
    assert list(refused.value.errors) == ["segment_id"]
