"""The manage endpoints (docs/api.md "Offers and coupons"): offers, personal coupons and generic codes,
reading and voiding a coupon, and who may call them."""

from datetime import timedelta

import pytest

from loyalty.campaigns import codes
from tests.campaigns.helpers import assert_coupon_invalid, assert_problem
from tests.support.clock import DEFAULT_NOW


def test_offer_is_created_and_read_back_with_its_counts(campaigns):
    offer = campaigns.offer(name="Welcome", kind="percent_off", value=10, max_discount=2000, min_spend=5000,
                            categories=["shoes"], valid_until="2027-01-01T00:00:00+08:00", valid_days=30,
                            tiers=["SILVER", "GOLD"], per_member_limit=1, budget_count=100,
                            budget_amount=100000, stackable=True)

    assert offer["id"] > 0
    assert offer["valid_until"] == "2026-12-31T16:00:00Z"
    assert offer["tiers"] == ["SILVER", "GOLD"]
    assert (offer["issued_count"], offer["redeemed_count"], offer["discount_given"]) == (0, 0, 0)
    assert campaigns.get_offer(offer["id"]) == offer


@pytest.mark.parametrize("body, field", [
    ({"kind": "percent_off", "value": 101}, "value"),
    ({"kind": "percent_off", "value": 0}, "value"),
    ({"kind": "amount_off"}, "value"),
    ({"kind": "amount_off", "value": 10.5}, "value"),
    ({"kind": "free_item", "value": 0}, "skus"),
    ({"kind": "free_item", "skus": ["A1"], "value": 3}, "value"),
    ({"kind": "points_multiplier", "value": 100}, "value"),
    ({"kind": "bonus_points", "value": 100, "max_discount": 500}, "max_discount"),
    ({"kind": "bonus_points", "value": 100, "budget_amount": 500}, "budget_amount"),
    ({"kind": "amount_off", "value": 100, "valid_from": "2026-12-01T00:00:00Z",
      "valid_until": "2026-11-30T00:00:00Z"}, "valid_until"),
    ({"kind": "amount_off", "value": 100, "valid_until": "2026-12-01T00:00:00"}, "valid_until"),
    ({"kind": "amount_off", "value": 100, "tiers": ["PLATINUM"]}, "tiers"),
    ({"kind": "amount_off", "value": 100, "redeemed_count": 5}, "redeemed_count"),
    ({"kind": "cashback", "value": 100}, "kind"),
])
def test_offer_body_is_validated(manage, body, field):
    response = manage.post("/offers", json={"name": "Bad", **body})

    problem = assert_problem(response, 422, "validation-error")
    assert field in problem["errors"], problem


def test_offer_and_coupon_endpoints_need_the_manage_scope(pos, campaigns, factory):
    offer = campaigns.offer()
    code = campaigns.personal(offer["id"], factory.member())

    assert_problem(pos.post("/offers", json={"name": "X", "kind": "amount_off", "value": 1}), 403, "forbidden")
    assert_problem(pos.get(f"/offers/{offer['id']}"), 403, "forbidden")
    assert_problem(pos.post(f"/offers/{offer['id']}/coupons", json={"limit": 5}), 403, "forbidden")
    assert_problem(pos.get(f"/coupons/{code}"), 403, "forbidden")
    assert_problem(pos.post(f"/coupons/{code}/void"), 403, "forbidden")
    assert_problem(campaigns.manage.http.get("/api/v1/offers/1"), 401, "unauthorized")


def test_offer_creation_with_an_idempotency_key_happens_once(manage, campaigns):
    body = {"name": "Once", "kind": "amount_off", "value": 500}
    first = manage.post("/offers", json=body, headers={"Idempotency-Key": "k-1"})
    again = manage.post("/offers", json=body, headers={"Idempotency-Key": "k-1"})
    other = manage.post("/offers", json={**body, "value": 600}, headers={"Idempotency-Key": "k-1"})

    assert first.status_code == again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.get_json() == first.get_json()
    assert_problem(other, 409, "idempotency-conflict")


def test_personal_coupon_has_the_contract_fields_and_expires_valid_days_after_issue(campaigns, factory):
    member_no = factory.member()
    offer = campaigns.offer(kind="amount_off", value=1000, valid_days=30)

    response = campaigns.manage.post(f"/offers/{offer['id']}/coupons", json={"member": member_no})

    assert response.status_code == 201
    coupon = response.get_json()
    assert set(coupon) == {"code", "offer_id", "kind", "status", "member_no", "expires_at", "uses_left"}
    assert coupon["offer_id"] == offer["id"] and coupon["kind"] == "amount_off"
    assert (coupon["status"], coupon["member_no"], coupon["uses_left"]) == ("issued", member_no, 1)
    assert coupon["expires_at"] == (DEFAULT_NOW + timedelta(days=30)).isoformat().replace("+00:00", "Z")
    assert codes.has_valid_check(codes.normalize(coupon["code"]))
    assert campaigns.coupon(coupon["code"]) == coupon
    assert campaigns.coupon(coupon["code"].lower().replace("-", " ")) == coupon
    assert campaigns.get_offer(offer["id"])["issued_count"] == 1


def test_valid_days_never_outlive_the_offer(campaigns, factory):
    offer = campaigns.offer(valid_days=30, valid_until="2026-12-01T00:00:00Z")

    code = campaigns.personal(offer["id"], factory.member())

    assert campaigns.coupon(code)["expires_at"] == "2026-12-01T00:00:00Z"


def test_generic_codes_chosen_or_generated(campaigns):
    offer = campaigns.offer(valid_until="2027-01-01T00:00:00Z", valid_days=3)

    chosen = campaigns.manage.post(f"/offers/{offer['id']}/coupons", json={"code": "summer-10", "limit": 10})
    generated = campaigns.generic(offer["id"], limit=5)

    assert chosen.status_code == 201
    assert chosen.get_json() == {"code": "SUMMER10", "offer_id": offer["id"], "kind": "amount_off",
                                 "status": "issued", "member_no": None, "expires_at": "2027-01-01T00:00:00Z",
                                 "uses_left": 10}
    assert campaigns.coupon(generated)["uses_left"] == 5
    taken = campaigns.manage.post(f"/offers/{offer['id']}/coupons", json={"code": "SUMMER10", "limit": 1})
    assert "code" in assert_problem(taken, 422, "validation-error")["errors"]
    reserved = campaigns.manage.post(f"/offers/{offer['id']}/coupons", json={"code": "HAPPYNEWYEAR", "limit": 1})
    assert "code" in assert_problem(reserved, 422, "validation-error")["errors"]


@pytest.mark.parametrize("body", [{}, {"code": "SUMMER10"}, {"member": "1000000017", "limit": 3},
                                  {"limit": 0}, {"limit": 2, "extra": True}])
def test_coupon_issue_body_is_validated(campaigns, body):
    offer = campaigns.offer()

    assert_problem(campaigns.manage.post(f"/offers/{offer['id']}/coupons", json=body), 422, "validation-error")


def test_issuing_for_unknown_member_or_offer_or_ended_offer_is_refused(campaigns, factory, clock):
    offer = campaigns.offer(valid_until="2026-11-23T00:00:00Z")
    member_no = factory.member()

    assert_problem(campaigns.manage.post(f"/offers/{offer['id']}/coupons", json={"member": "1000000018"}),
                   422, "unknown-member")
    assert_problem(campaigns.manage.post("/offers/999999/coupons", json={"member": member_no}), 404, "not-found")
    assert_problem(campaigns.manage.get("/offers/999999"), 404, "not-found")
    clock.advance(days=2)
    assert_problem(campaigns.manage.post(f"/offers/{offer['id']}/coupons", json={"member": member_no}),
                   422, "validation-error")


def test_unknown_and_mistyped_codes_are_not_found(campaigns, factory):
    offer = campaigns.offer()
    code = codes.normalize(campaigns.personal(offer["id"], factory.member()))
    typo = code[:3] + next(char for char in codes.ALPHABET if char != code[3]) + code[4:]

    assert_problem(campaigns.manage.get(f"/coupons/{typo}"), 404, "not-found")
    assert_problem(campaigns.manage.get("/coupons/NOSUCHCODE"), 404, "not-found")


def test_void_a_coupon_then_the_till_refuses_it(campaigns, factory, pos):
    member_no = factory.member()
    offer = campaigns.offer()
    code = campaigns.personal(offer["id"], member_no)

    voided = campaigns.manage.post(f"/coupons/{code}/void")
    again = campaigns.manage.post(f"/coupons/{code}/void")

    assert voided.status_code == again.status_code == 200
    assert voided.get_json()["status"] == "void" and voided.get_json()["uses_left"] == 0
    assert_coupon_invalid(pos.sale(member_no, 12800, coupons=[code]), "expired")
    assert campaigns.transaction_count() == 0


def test_a_used_coupon_cannot_be_voided(campaigns, factory, pos):
    member_no = factory.member()
    offer = campaigns.offer()
    code = campaigns.personal(offer["id"], member_no)
    assert pos.sale(member_no, 11800, subtotal=12800, coupons=[code]).status_code == 201

    assert_coupon_invalid(campaigns.manage.post(f"/coupons/{code}/void"), "used")
    assert campaigns.coupon(code)["status"] == "redeemed"


def test_offer_report_counts_issued_redeemed_and_discount_given(campaigns, factory, pos):
    offer = campaigns.offer(kind="amount_off", value=1500)
    members = [factory.member() for _ in range(3)]
    coupons = [campaigns.personal(offer["id"], member_no) for member_no in members]
    campaigns.generic(offer["id"], limit=100)

    for member_no, code in zip(members[:2], coupons[:2], strict=True):
        assert pos.sale(member_no, 8500, subtotal=10000, coupons=[code]).status_code == 201

    report = campaigns.get_offer(offer["id"])
    assert (report["issued_count"], report["redeemed_count"], report["discount_given"]) == (4, 2, 3000)


def test_openapi_documents_the_coupon_endpoints(client):
    spec = client.get("/api/v1/openapi.json").get_json()

    for path in ("/api/v1/offers", "/api/v1/offers/{offer_id}", "/api/v1/offers/{offer_id}/coupons",
                 "/api/v1/coupons/{code}", "/api/v1/coupons/{code}/void", "/api/v1/coupons/validate",
                 "/api/v1/members/{member_no}/coupons"):
        assert path in spec["paths"], path
