"""Refunds and coupons (docs/api.md "Refund"; the partial-refund rule is in loyalty.campaigns.redemption):
a full refund gives the coupon, the member's use and the offer's budget back; a partial one changes
nothing about coupons, even below the min spend."""

from loyalty.extensions import db
from loyalty.points.services import verify_ledger
from tests.campaigns.helpers import assert_coupon_invalid


def refund(pos, sale_id, amount, refund_id):
    response = pos.post(f"/transactions/{sale_id}/refunds", json={"external_id": refund_id, "amount": amount})
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def test_full_refund_gives_a_single_use_coupon_back(campaigns, factory, pos):
    member_no = factory.member()
    offer = campaigns.offer(value=1000, per_member_limit=1, budget_count=1)
    code = campaigns.personal(offer["id"], member_no)
    assert pos.sale(member_no, 11800, subtotal=12800, coupons=[code], external_id="S-1").status_code == 201
    assert campaigns.coupon(code)["status"] == "redeemed"

    refund(pos, "S-1", 11800, "R-1")

    coupon = campaigns.coupon(code)
    assert (coupon["status"], coupon["uses_left"]) == ("issued", 1)
    report = campaigns.get_offer(offer["id"])
    assert (report["redeemed_count"], report["discount_given"]) == (0, 0)
    assert campaigns.member_uses(offer["id"]) == 0
    # Usable again: coupon, per-member limit and budget all came back.
    response = pos.sale(member_no, 11800, subtotal=12800, coupons=[code], external_id="S-2")
    assert response.get_json()["coupons"] == [{"code": code, "discount": 1000}]


def test_partial_refunds_keep_the_coupon_until_the_sale_is_refunded_in_full(campaigns, factory, pos):
    member_no = factory.member()
    offer = campaigns.offer(value=2000, min_spend=10000)
    code = campaigns.personal(offer["id"], member_no)
    pos.sale(member_no, 10000, subtotal=12000, lines=[{"sku": "A1", "amount": 6000}, {"sku": "A2", "amount": 6000}],
             coupons=[code], external_id="S-1")

    # The customer returns one item: what they keep (6000) is below the min spend. The rule: the coupon
    # stays redeemed and its discount stays spent; the till pays back less if it wants the discount back.
    first = refund(pos, "S-1", 4000, "R-1")

    assert first["points_reversed"] == 100 * 4000 // 10000
    assert campaigns.coupon(code)["status"] == "redeemed"
    assert campaigns.get_offer(offer["id"])["discount_given"] == 2000

    refund(pos, "S-1", 6000, "R-2")

    assert campaigns.coupon(code)["status"] == "issued"
    assert campaigns.get_offer(offer["id"])["discount_given"] == 0


def test_full_refund_after_the_coupon_expired_leaves_it_expired(campaigns, factory, pos, clock):
    member_no = factory.member()
    code = campaigns.personal(campaigns.offer(valid_days=3)["id"], member_no)
    pos.sale(member_no, 11800, subtotal=12800, coupons=[code], external_id="S-1")
    clock.advance(days=5)

    refund(pos, "S-1", 11800, "R-1")

    assert campaigns.coupon(code)["status"] == "expired"
    assert_coupon_invalid(pos.sale(member_no, 11800, subtotal=12800, coupons=[code]), "expired")


def test_full_refund_gives_a_generic_code_its_use_back(campaigns, factory, pos):
    code = campaigns.generic(campaigns.offer()["id"], limit=2)
    first_member, second_member = factory.member(), factory.member()
    pos.sale(first_member, 11800, subtotal=12800, coupons=[code], external_id="S-1")
    pos.sale(second_member, 11800, subtotal=12800, coupons=[code], external_id="S-2")
    assert campaigns.coupon(code)["status"] == "redeemed"

    refund(pos, "S-1", 11800, "R-1")

    assert (campaigns.coupon(code)["status"], campaigns.coupon(code)["uses_left"]) == ("issued", 1)


def test_full_refund_of_an_anonymous_sale_gives_the_code_back(campaigns, pos):
    offer = campaigns.offer()
    code = campaigns.generic(offer["id"], limit=1)
    pos.sale(None, 11800, subtotal=12800, coupons=[code], external_id="S-1")

    refund(pos, "S-1", 11800, "R-1")

    assert campaigns.coupon(code)["uses_left"] == 1
    assert campaigns.get_offer(offer["id"])["redeemed_count"] == 0


def test_full_refund_reverses_coupon_points_exactly(app, campaigns, factory, pos):
    member_no = factory.member()
    code = campaigns.personal(campaigns.offer(kind="bonus_points", value=300)["id"], member_no)
    sale = pos.sale(member_no, 12800, coupons=[code], external_id="S-1").get_json()
    assert sale["points_earned"] == 428

    first = refund(pos, "S-1", 6400, "R-1")
    second = refund(pos, "S-1", 6400, "R-2")

    assert first["points_reversed"] + second["points_reversed"] == 428
    assert second["member"]["points"]["balance"] == 0
    assert campaigns.coupon(code)["status"] == "issued"
    with app.app_context():
        assert verify_ledger(db.session).ok


def test_a_refund_replayed_does_not_give_the_coupon_back_twice(campaigns, factory, pos):
    offer = campaigns.offer()
    code = campaigns.generic(offer["id"], limit=5)
    pos.sale(factory.member(), 11800, subtotal=12800, coupons=[code], external_id="S-1")
    pos.sale(factory.member(), 11800, subtotal=12800, coupons=[code], external_id="S-2")

    refund(pos, "S-1", 11800, "R-1")
    replay = pos.post("/transactions/S-1/refunds", json={"external_id": "R-1", "amount": 11800})

    assert replay.headers["Idempotent-Replayed"] == "true"
    assert campaigns.coupon(code)["uses_left"] == 4
    assert campaigns.get_offer(offer["id"])["redeemed_count"] == 1
