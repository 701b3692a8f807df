"""Coupons at the till: every offer kind and condition, every coupon-invalid reason (through a sale and
through validate alike), the order of application when coupons stack, per-member limits, budgets, and
a refused coupon leaving the whole sale unrecorded."""

import pytest
import sqlalchemy as sa

from loyalty.campaigns import codes
from loyalty.extensions import db
from loyalty.members.models import Member
from tests.campaigns.helpers import assert_coupon_invalid, assert_problem

SHOES = {"sku": "A1", "category": "shoes", "amount": 8000}
SOCKS = {"sku": "S9", "category": "socks", "amount": 2000}


def sale_with(pos, member_no, code_list, subtotal, **fields):
    fields.setdefault("amount", subtotal)
    return pos.sale(member_no, fields.pop("amount"), subtotal=subtotal, coupons=code_list, **fields)


def validate(pos, code, amount, member_no=None, lines=None):
    body = {"code": code, "amount": amount}
    if member_no:
        body["member"] = member_no
    if lines is not None:
        body["lines"] = lines
    response = pos.post("/coupons/validate", json=body)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def discounts(response) -> list[int]:
    assert response.status_code == 201, response.get_json()
    return [coupon["discount"] for coupon in response.get_json()["coupons"]]


# --- offer kinds -----------------------------------------------------------------------------------

@pytest.mark.parametrize("offer, subtotal, lines, expected", [
    ({"kind": "amount_off", "value": 1000}, 12800, None, 1000),
    ({"kind": "amount_off", "value": 5000}, 3000, None, 3000),  # never more than the basket
    ({"kind": "amount_off", "value": 5000, "max_discount": 1200}, 12800, None, 1200),
    ({"kind": "percent_off", "value": 10}, 12800, None, 1280),
    ({"kind": "percent_off", "value": 15}, 999, None, 149),  # rounds down
    ({"kind": "percent_off", "value": 50, "max_discount": 2000}, 12800, None, 2000),
    ({"kind": "percent_off", "value": 20, "categories": ["shoes"]}, 10000, [SHOES, SOCKS], 1600),
    ({"kind": "amount_off", "value": 3000, "skus": ["S9"]}, 10000, [SHOES, SOCKS], 2000),
    ({"kind": "free_item", "skus": ["S9", "A1"]}, 10000, [SHOES, SOCKS], 8000),  # the first matching line
    ({"kind": "free_item", "skus": ["S9"], "max_discount": 1500}, 10000, [SHOES, SOCKS], 1500),
    ({"kind": "bonus_points", "value": 200}, 12800, None, 0),
    ({"kind": "points_multiplier", "value": 200}, 12800, None, 0),
])
def test_each_kind_discounts_the_same_in_validate_and_in_the_sale(campaigns, factory, pos, offer, subtotal,
                                                                   lines, expected):
    member_no = factory.member()
    code = campaigns.personal(campaigns.offer(**offer)["id"], member_no)

    preview = validate(pos, code, subtotal, member_no, lines)
    response = sale_with(pos, member_no, [code], subtotal, amount=subtotal - expected, lines=lines or [])

    assert preview == {"code": code, "valid": True, "reason": None, "discount": expected}
    assert response.get_json()["coupons"] == [{"code": code, "discount": expected}]


def test_validate_changes_nothing(campaigns, factory, pos):
    member_no = factory.member()
    offer = campaigns.offer(budget_count=1, per_member_limit=1)
    code = campaigns.personal(offer["id"], member_no)

    for _ in range(3):
        assert validate(pos, code, 12800, member_no)["valid"]

    assert campaigns.coupon(code)["status"] == "issued"
    assert campaigns.get_offer(offer["id"])["redeemed_count"] == 0
    assert campaigns.member_uses(offer["id"]) == 0
    assert campaigns.transaction_count() == 0


def test_bonus_points_are_added_to_the_earning_and_multiplied_by_the_tier(campaigns, factory, pos):
    member_no = factory.member()
    assert pos.sale(member_no, 100000).get_json()["member"]["tier"]["code"] == "SILVER"
    code = campaigns.personal(campaigns.offer(kind="bonus_points", value=200)["id"], member_no)

    response = pos.sale(member_no, 12800, coupons=[code])

    assert response.status_code == 201
    assert response.get_json()["points_earned"] == (128 + 200) * 125 // 100


def test_points_multiplier_multiplies_the_sale_earning(campaigns, factory, pos):
    member_no = factory.member()
    code = campaigns.personal(campaigns.offer(kind="points_multiplier", value=300)["id"], member_no)

    response = pos.sale(member_no, 12800, coupons=[code])

    assert response.get_json()["points_earned"] == 128 * 3
    assert response.get_json()["member"]["points"]["balance"] == 384


def test_a_coupon_code_is_accepted_however_it_is_typed(campaigns, factory, pos):
    member_no = factory.member()
    code = campaigns.personal(campaigns.offer()["id"], member_no)

    response = pos.sale(member_no, 11800, subtotal=12800, coupons=[code.lower().replace("-", " ")])

    assert response.get_json()["coupons"] == [{"code": code, "discount": 1000}]


# --- every reason ----------------------------------------------------------------------------------

def _typo(code: str) -> str:
    plain = codes.normalize(code)
    return plain[:5] + next(char for char in codes.ALPHABET if char != plain[5]) + plain[6:]


def scenario(campaigns, factory, pos, clock, reason):
    """Set up a member, a code and a basket that the till must refuse for `reason`."""
    member_no = factory.member()
    subtotal, lines = 12800, [SHOES]
    if reason == "unknown":
        code = _typo(campaigns.personal(campaigns.offer()["id"], member_no))
    elif reason == "expired":
        code = campaigns.personal(campaigns.offer(valid_days=7)["id"], member_no)
        clock.advance(days=8)
    elif reason == "not-yet-valid":
        code = campaigns.personal(campaigns.offer(valid_from="2026-12-01T00:00:00+08:00")["id"], member_no)
    elif reason == "not-this-member":
        code = campaigns.personal(campaigns.offer()["id"], factory.member())
    elif reason == "used":
        code = campaigns.personal(campaigns.offer()["id"], member_no)
        assert pos.sale(member_no, 11800, subtotal=12800, coupons=[code]).status_code == 201
    elif reason == "limit-reached":
        code = campaigns.generic(campaigns.offer()["id"], limit=1)
        assert pos.sale(factory.member(), 11800, subtotal=12800, coupons=[code]).status_code == 201
    elif reason == "budget-exhausted":
        offer = campaigns.offer(budget_amount=1500)
        first = campaigns.personal(offer["id"], factory.member())
        assert pos.sale(campaigns.coupon(first)["member_no"], 11800, subtotal=12800, coupons=[first]).status_code == 201
        code = campaigns.personal(offer["id"], member_no)
    elif reason == "min-spend":
        code = campaigns.personal(campaigns.offer(min_spend=20000)["id"], member_no)
    elif reason == "tier":
        code = campaigns.personal(campaigns.offer(tiers=["GOLD"])["id"], member_no)
    elif reason == "conditions":
        code = campaigns.personal(campaigns.offer(skus=["Z9"])["id"], member_no)
    return member_no, code, subtotal, lines


REASONS = ["unknown", "expired", "not-yet-valid", "not-this-member", "used", "limit-reached", "budget-exhausted",
           "min-spend", "tier", "conditions"]


@pytest.mark.parametrize("reason", REASONS)
def test_every_reason_is_given_by_validate_and_refuses_the_sale_recording_nothing(campaigns, factory, pos, clock,
                                                                                  reason):
    member_no, code, subtotal, lines = scenario(campaigns, factory, pos, clock, reason)
    before = campaigns.transaction_count()
    balance_before = pos.get(f"/members/{member_no}").get_json()["points"]["balance"]

    preview = validate(pos, code, subtotal, member_no, lines)
    response = pos.sale(member_no, subtotal - 1000, subtotal=subtotal, lines=lines, coupons=[code])

    assert preview == {"code": preview["code"], "valid": False, "reason": reason, "discount": 0}
    assert_coupon_invalid(response, reason)
    assert campaigns.transaction_count() == before
    assert pos.get(f"/members/{member_no}").get_json()["points"]["balance"] == balance_before


def test_anonymous_sales_cannot_use_personal_per_member_or_points_coupons(campaigns, factory, pos):
    personal = campaigns.personal(campaigns.offer()["id"], factory.member())
    per_member = campaigns.generic(campaigns.offer(per_member_limit=1)["id"], limit=10)
    points = campaigns.generic(campaigns.offer(kind="bonus_points", value=50)["id"], limit=10)
    open_code = campaigns.generic(campaigns.offer()["id"], limit=10)

    for code in (personal, per_member, points):
        assert_coupon_invalid(pos.sale(None, 11800, subtotal=12800, coupons=[code]), "not-this-member")
    assert discounts(pos.sale(None, 11800, subtotal=12800, coupons=[open_code])) == [1000]


def test_expiry_by_the_offer_window_and_by_status(campaigns, factory, pos, clock):
    member_no = factory.member()
    offer = campaigns.offer(valid_until="2026-11-25T00:00:00Z")
    code = campaigns.generic(offer["id"], limit=5)
    assert validate(pos, code, 12800, member_no)["valid"]

    clock.set(clock().replace(day=25))

    assert validate(pos, code, 12800, member_no)["reason"] == "expired"
    assert_coupon_invalid(pos.sale(member_no, 11800, subtotal=12800, coupons=[code]), "expired")


def test_min_spend_is_judged_on_the_subtotal_not_the_amount_paid(campaigns, factory, pos):
    member_no = factory.member()
    code = campaigns.personal(campaigns.offer(value=2000, min_spend=10000)["id"], member_no)

    assert validate(pos, code, 9999, member_no)["reason"] == "min-spend"
    assert discounts(pos.sale(member_no, 8000, subtotal=10000, coupons=[code])) == [2000]


def test_sku_and_category_conditions(campaigns, factory, pos):
    member_no = factory.member()
    by_sku = campaigns.generic(campaigns.offer(skus=["A1"])["id"], limit=10)
    by_category = campaigns.generic(campaigns.offer(categories=["socks"])["id"], limit=10)

    assert validate(pos, by_sku, 10000, member_no, [SHOES])["valid"]
    assert validate(pos, by_sku, 10000, member_no, [SOCKS])["reason"] == "conditions"
    assert validate(pos, by_sku, 10000, member_no)["reason"] == "conditions"  # no lines, nothing to match
    assert validate(pos, by_category, 10000, member_no, [SHOES, SOCKS])["valid"]
    assert validate(pos, by_category, 10000, member_no, [SHOES])["reason"] == "conditions"


def test_tier_restriction_follows_the_members_tier(campaigns, factory, pos):
    member_no = factory.member()
    code = campaigns.generic(campaigns.offer(tiers=["SILVER", "GOLD"])["id"], limit=10)
    assert validate(pos, code, 12800, member_no)["reason"] == "tier"

    pos.sale(member_no, 100000)  # 1,000 qualifying points: SILVER

    assert validate(pos, code, 12800, member_no)["valid"]
    assert discounts(pos.sale(member_no, 11800, subtotal=12800, coupons=[code])) == [1000]


# --- stacking ------------------------------------------------------------------------------------

def test_stacked_coupons_apply_in_the_documented_order_whatever_the_listed_order(campaigns, factory, pos):
    member_no = factory.member()
    amount_off = campaigns.personal(campaigns.offer(kind="amount_off", value=1000, stackable=True)["id"], member_no)
    percent_off = campaigns.personal(campaigns.offer(kind="percent_off", value=10, stackable=True)["id"], member_no)
    free_item = campaigns.personal(campaigns.offer(kind="free_item", skus=["S9"], stackable=True)["id"], member_no)

    response = pos.sale(member_no, 6200, subtotal=10000, lines=[SHOES, SOCKS],
                        coupons=[amount_off, percent_off, free_item])

    # free item first (2000), then 10% of the 8000 left (800), then 1000 off: listed order kept in the answer.
    assert response.get_json()["coupons"] == [
        {"code": amount_off, "discount": 1000}, {"code": percent_off, "discount": 800},
        {"code": free_item, "discount": 2000},
    ]


def test_percent_applies_before_amount_off(campaigns, factory, pos):
    member_no = factory.member()
    amount_off = campaigns.personal(campaigns.offer(kind="amount_off", value=1000, stackable=True)["id"], member_no)
    percent_off = campaigns.personal(campaigns.offer(kind="percent_off", value=10, stackable=True)["id"], member_no)

    assert discounts(pos.sale(member_no, 8000, subtotal=10000, coupons=[amount_off, percent_off])) == [1000, 1000]


def test_stacked_discounts_never_exceed_the_subtotal(campaigns, factory, pos):
    member_no = factory.member()
    first = campaigns.personal(campaigns.offer(value=3000, stackable=True)["id"], member_no)
    second = campaigns.personal(campaigns.offer(value=3000, stackable=True)["id"], member_no)

    assert discounts(pos.sale(member_no, 0, subtotal=4000, coupons=[first, second])) == [3000, 1000]


def test_multipliers_add_up_and_bonus_points_are_not_multiplied(campaigns, factory, pos):
    member_no = factory.member()
    double = campaigns.personal(campaigns.offer(kind="points_multiplier", value=200, stackable=True)["id"], member_no)
    half_more = campaigns.personal(campaigns.offer(kind="points_multiplier", value=150, stackable=True)["id"],
                                   member_no)
    bonus = campaigns.personal(campaigns.offer(kind="bonus_points", value=50, stackable=True)["id"], member_no)

    response = pos.sale(member_no, 10000, coupons=[double, half_more, bonus])

    assert response.get_json()["points_earned"] == 100 + 100 + 50 + 50


def test_a_non_stackable_coupon_stands_alone(campaigns, factory, pos):
    member_no = factory.member()
    alone = campaigns.personal(campaigns.offer(value=1000)["id"], member_no)
    stackable = campaigns.personal(campaigns.offer(value=500, stackable=True)["id"], member_no)

    body = assert_coupon_invalid(pos.sale(member_no, 11300, subtotal=12800, coupons=[stackable, alone]), "conditions")

    assert alone in body["detail"]
    assert campaigns.coupon(stackable)["status"] == "issued"
    assert discounts(pos.sale(member_no, 11800, subtotal=12800, coupons=[alone])) == [1000]


def test_the_same_code_twice_in_one_sale_is_refused(campaigns, factory, pos):
    member_no = factory.member()
    code = campaigns.generic(campaigns.offer(stackable=True)["id"], limit=10)

    assert_coupon_invalid(pos.sale(member_no, 10800, subtotal=12800, coupons=[code, code.lower()]), "conditions")
    assert campaigns.coupon(code)["uses_left"] == 10


# --- limits and budgets --------------------------------------------------------------------------

def test_per_member_limit_is_keyed_on_the_member_not_the_email(app, campaigns, factory, pos):
    member_no = factory.member(email="first@example.com")
    offer = campaigns.offer(per_member_limit=1)
    code = campaigns.generic(offer["id"], limit=100)
    assert discounts(pos.sale(member_no, 11800, subtotal=12800, coupons=[code])) == [1000]

    with app.app_context():
        member = db.session.scalar(sa.select(Member).where(Member.member_no == member_no))
        member.email, member.phone = "someone-else@example.com", "+8613800138000"
        db.session.commit()

    assert validate(pos, code, 12800, member_no)["reason"] == "limit-reached"
    assert_coupon_invalid(pos.sale(member_no, 11800, subtotal=12800, coupons=[code]), "limit-reached")
    assert_coupon_invalid(pos.sale("+8613800138000", 11800, subtotal=12800, coupons=[code]), "limit-reached")
    assert discounts(pos.sale(factory.member(), 11800, subtotal=12800, coupons=[code])) == [1000]
    assert campaigns.member_uses(offer["id"]) == 2


def test_per_member_limit_counts_personal_coupons_of_the_same_offer(campaigns, factory, pos):
    member_no = factory.member()
    offer = campaigns.offer(per_member_limit=2, stackable=True)
    first, second, third = (campaigns.personal(offer["id"], member_no) for _ in range(3))

    assert discounts(pos.sale(member_no, 10800, subtotal=12800, coupons=[first, second])) == [1000, 1000]
    assert_coupon_invalid(pos.sale(member_no, 11800, subtotal=12800, coupons=[third]), "limit-reached")


def test_a_generic_code_stops_at_its_limit(campaigns, factory, pos):
    code = campaigns.generic(campaigns.offer()["id"], limit=3)

    statuses = [pos.sale(factory.member(), 11800, subtotal=12800, coupons=[code]).status_code for _ in range(5)]

    assert statuses == [201, 201, 201, 422, 422]
    coupon = campaigns.coupon(code)
    assert (coupon["status"], coupon["uses_left"]) == ("redeemed", 0)


def test_budget_by_count(campaigns, factory, pos):
    offer = campaigns.offer(budget_count=2)
    code = campaigns.generic(offer["id"], limit=100)

    results = [pos.sale(factory.member(), 11800, subtotal=12800, coupons=[code]) for _ in range(3)]

    assert [response.status_code for response in results] == [201, 201, 422]
    assert_coupon_invalid(results[2], "budget-exhausted")
    assert campaigns.get_offer(offer["id"])["redeemed_count"] == 2


def test_budget_by_money_refuses_a_discount_it_cannot_cover(campaigns, factory, pos):
    offer = campaigns.offer(kind="percent_off", value=10, budget_amount=2500)
    code = campaigns.generic(offer["id"], limit=100)

    assert discounts(pos.sale(factory.member(), 9000, subtotal=10000, coupons=[code])) == [1000]
    assert discounts(pos.sale(factory.member(), 9000, subtotal=10000, coupons=[code])) == [1000]
    assert_coupon_invalid(pos.sale(factory.member(), 18000, subtotal=20000, coupons=[code]), "budget-exhausted")
    assert discounts(pos.sale(factory.member(), 4500, subtotal=5000, coupons=[code])) == [500]
    assert campaigns.get_offer(offer["id"])["discount_given"] == 2500
    assert validate(pos, code, 100)["reason"] == "budget-exhausted"


# --- the sale as one unit ------------------------------------------------------------------------

def test_a_sale_refused_for_points_redeems_no_coupon(campaigns, factory, pos):
    member_no = factory.member()
    offer = campaigns.offer()
    code = campaigns.personal(offer["id"], member_no)

    assert_problem(pos.sale(member_no, 11800, subtotal=12800, coupons=[code], points_redeemed=500),
                   422, "insufficient-points")

    assert campaigns.coupon(code)["status"] == "issued"
    assert campaigns.get_offer(offer["id"])["redeemed_count"] == 0


def test_one_bad_coupon_refuses_the_sale_and_the_good_one_stays_unused(campaigns, factory, pos):
    member_no = factory.member()
    good = campaigns.personal(campaigns.offer(stackable=True)["id"], member_no)
    bad = campaigns.personal(campaigns.offer(stackable=True, min_spend=99999)["id"], member_no)

    assert_coupon_invalid(pos.sale(member_no, 10800, subtotal=12800, coupons=[good, bad]), "min-spend")

    assert campaigns.coupon(good)["status"] == "issued"
    assert campaigns.transaction_count() == 0


def test_a_replayed_sale_does_not_redeem_twice(campaigns, factory, pos):
    member_no = factory.member()
    offer = campaigns.offer()
    code = campaigns.personal(offer["id"], member_no)

    first = pos.sale(member_no, 11800, subtotal=12800, coupons=[code], external_id="S-REPLAY")
    again = pos.sale(member_no, 11800, subtotal=12800, coupons=[code], external_id="S-REPLAY")

    assert again.headers["Idempotent-Replayed"] == "true" and again.get_json() == first.get_json()
    assert campaigns.get_offer(offer["id"])["redeemed_count"] == 1


def test_in_a_batch_a_refused_coupon_fails_its_sale_alone(campaigns, factory, pos):
    member_no = factory.member()
    offer = campaigns.offer(value=500)
    code = campaigns.personal(offer["id"], member_no)
    item = {"member": member_no, "occurred_at": "2026-11-22T10:00:00+08:00", "currency": "CNY",
            "amount": 12300, "subtotal": 12800}

    response = pos.post("/transactions/batch", json={"sales": [
        {**item, "external_id": "B-1", "coupons": [code]},
        {**item, "external_id": "B-2", "coupons": [code]},
        {**item, "external_id": "B-3"},
    ]})

    results = response.get_json()["results"]
    assert [result["status"] for result in results] == [201, 422, 201]
    assert results[1]["error"]["detail"].startswith("used:")
    assert results[0]["transaction"]["coupons"] == [{"code": code, "discount": 500}]
    assert campaigns.transaction_count() == 2
    assert campaigns.get_offer(offer["id"])["redeemed_count"] == 1
