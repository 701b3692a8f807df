"""Posting sales (docs/api.md "Sale"): earning, redeeming points oldest-expiry first, anonymous sales,
stores, coupons, idempotent replays, and reading a sale back."""

import sqlalchemy as sa

from loyalty.extensions import db
from loyalty.members.models import Member
from loyalty.members.services import current_card_token
from loyalty.points.models import PointsEntry
from loyalty.sales.models import Transaction

UNKNOWN_MEMBER_NO = "1000000018"  # a well-formed number (check digit and all) that nobody holds


def assert_problem(response, status: int, slug: str) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    body = response.get_json()
    assert body["type"].rsplit("/", 1)[-1] == slug
    return body


def transaction_count(app) -> int:
    with app.app_context():
        return db.session.scalar(sa.select(sa.func.count(Transaction.id)))


def test_sale_response_has_the_contract_fields(pos, factory):
    member_no = factory.member()

    response = pos.sale(member_no, 12800, external_id="S001-20261122-000123",
                        occurred_at="2026-11-22T09:30:00+08:00",
                        lines=[{"sku": "A1", "category": "shoes", "quantity": 1, "unit_price": 12800,
                                "amount": 12800}])

    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["external_id"] == "S001-20261122-000123"
    assert body["member_no"] == member_no
    assert body["amount"] == 12800
    assert body["currency"] == "CNY"
    assert body["occurred_at"] == "2026-11-22T01:30:00Z"
    assert body["points_earned"] == 128
    assert body["points_redeemed"] == 0
    assert body["coupons"] == []
    assert body["member"]["member_no"] == member_no
    assert body["member"]["points"]["balance"] == 128


def test_earning_is_floor_of_whole_currency_units_for_bronze(pos, factory):
    member_no = factory.member()
    earned = [pos.sale(member_no, amount).get_json()["points_earned"] for amount in (0, 99, 100, 12899, 12900)]

    assert earned == [0, 0, 1, 128, 129]
    assert pos.get(f"/members/{member_no}").get_json()["points"]["balance"] == 258


def test_earning_uses_the_multiplier_of_the_tier_held_before_the_sale(pos, factory):
    member_no = factory.member()
    # 999 qualifying points: still Bronze.
    assert pos.sale(member_no, 99900).get_json()["points_earned"] == 999

    crossing = pos.sale(member_no, 12345).get_json()
    after = pos.sale(member_no, 12345).get_json()

    # The sale that reaches Silver earns at Bronze's x1.00; the next at x1.25: floor(123 x 1.25) = 153.
    assert crossing["points_earned"] == 123
    assert crossing["member"]["tier"]["code"] == "SILVER"
    assert after["points_earned"] == 153
    assert after["member"]["points"]["balance"] == 999 + 123 + 153


def test_redeeming_takes_available_points_oldest_expiry_first(pos, factory):
    member_no = factory.member()
    pos.sale(member_no, 10000, occurred_at="2026-01-10T10:00:00+08:00")  # 100, expires 2027-01-11
    pos.sale(member_no, 20000, occurred_at="2026-06-01T10:00:00+08:00")  # 200, expires 2027-06-02
    pos.sale(member_no, 30000)                                           # 300, expires 2027-11-23

    response = pos.sale(member_no, 50, points_redeemed=150)

    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["points_redeemed"] == 150
    assert body["points_earned"] == 0
    assert body["member"]["points"]["balance"] == 450
    assert body["member"]["points"]["available"] == 450
    assert body["member"]["points"]["expiring"] == [
        {"points": 150, "expires_at": "2027-06-02T00:00:00Z"},
        {"points": 300, "expires_at": "2027-11-23T00:00:00Z"},
    ]


def test_a_sale_can_redeem_and_earn_at_once(pos, factory):
    member_no = factory.member()
    pos.sale(member_no, 50000)

    body = pos.sale(member_no, 12800, points_redeemed=500).get_json()

    assert body["points_redeemed"] == 500 and body["points_earned"] == 128
    assert body["member"]["points"]["balance"] == 128
    entries = pos.get(f"/members/{member_no}/points").get_json()["data"]
    assert [(entry["kind"], entry["points"]) for entry in entries] == [("earn", 128), ("redeem", -500), ("earn", 500)]


def test_redeeming_more_than_available_records_nothing(pos, factory, app):
    member_no = factory.member()
    pos.sale(member_no, 10000)
    before = transaction_count(app)

    response = pos.sale(member_no, 12800, external_id="S-too-much", points_redeemed=101)

    assert_problem(response, 422, "insufficient-points")
    assert transaction_count(app) == before
    assert pos.get(f"/members/{member_no}").get_json()["points"]["balance"] == 100
    assert_problem(pos.get("/transactions/S-too-much"), 404, "not-found")
    # A failure is not remembered: the corrected retry under the same external_id goes through.
    retry = pos.sale(member_no, 12800, external_id="S-too-much", points_redeemed=100)
    assert retry.status_code == 201
    assert retry.get_json()["member"]["points"]["balance"] == 128


def test_anonymous_sale_is_kept_and_earns_nothing(pos, app):
    response = pos.sale(None, 12800, external_id="S-anon")

    assert response.status_code == 201
    body = response.get_json()
    assert body["member_no"] is None and body["member"] is None
    assert body["points_earned"] == 0
    stored = pos.get("/transactions/S-anon").get_json()
    assert stored["member_no"] is None and stored["amount"] == 12800
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count(PointsEntry.id))) == 0


def test_anonymous_sale_cannot_redeem(pos, app):
    body = assert_problem(pos.sale(None, 12800, points_redeemed=100), 422, "validation-error")

    assert "points_redeemed" in body["errors"]
    assert transaction_count(app) == 0


def test_store_code_defaults_to_the_key_store_and_may_name_it(pos):
    pos.sale(None, 100, external_id="S-home")
    pos.sale(None, 100, external_id="S-named", store_code="S001")

    assert pos.get("/transactions/S-home").get_json()["store_code"] == "S001"
    assert pos.get("/transactions/S-named").get_json()["store_code"] == "S001"


def test_a_key_cannot_post_into_another_store(pos, factory, app):
    """Issue 12, finding 11: a key is bound to one store (docs/api.md). A `pos` key of S001 naming S002 is
    forbidden, and so is a code no store has (a key learns nothing about which codes exist)."""
    factory.store("S002")
    member_no = factory.member()

    for store_code in ("S002", "S999", "s001"):
        body = assert_problem(pos.sale(member_no, 10000, store_code=store_code), 403, "forbidden")
        assert "S001" in body["detail"]
    assert transaction_count(app) == 0
    assert pos.get(f"/members/{member_no}").get_json()["points"]["balance"] == 0


def test_subtotal_below_amount_is_refused(pos, factory, app):
    member_no = factory.member()

    body = assert_problem(pos.sale(member_no, 12800, subtotal=12000), 422, "validation-error")

    assert "subtotal" in body["errors"]
    assert transaction_count(app) == 0
    assert pos.sale(member_no, 12800, subtotal=15000, external_id="S-sub").status_code == 201
    assert pos.get("/transactions/S-sub").get_json()["subtotal"] == 15000


def test_subtotal_defaults_to_amount(pos):
    pos.sale(None, 12800, external_id="S-1")

    assert pos.get("/transactions/S-1").get_json()["subtotal"] == 12800


def test_negative_amount_and_overlong_external_id_are_refused(pos, app):
    assert "amount" in assert_problem(pos.sale(None, -1), 422, "validation-error")["errors"]
    assert "external_id" in assert_problem(pos.sale(None, 1, external_id="x" * 129), 422,
                                           "validation-error")["errors"]
    empty_id = {"external_id": "", "occurred_at": "2026-11-22T10:00:00+08:00", "currency": "CNY", "amount": 1}
    assert "external_id" in assert_problem(pos.post("/transactions", json=empty_id), 422,
                                           "validation-error")["errors"]
    assert pos.sale(None, 1, external_id="x" * 128).status_code == 201
    assert transaction_count(app) == 1


def test_missing_required_fields_are_named(pos):
    body = assert_problem(pos.post("/transactions", json={}), 422, "validation-error")

    assert {"external_id", "occurred_at", "currency", "amount"} <= set(body["errors"])


def test_sale_with_unknown_member_records_nothing(pos, app):
    for code in (UNKNOWN_MEMBER_NO, "+8613900000000", "no-such-code"):
        assert_problem(pos.sale(code, 12800), 422, "unknown-member")
    assert transaction_count(app) == 0


def test_sale_by_phone_and_by_card_token(pos, factory, app, clock):
    member_no = factory.member(phone="+8613812340000")
    with app.app_context():
        member = db.session.scalar(sa.select(Member).where(Member.member_no == member_no))
        token = current_card_token(member, clock()).token

    assert pos.sale("+8613812340000", 1000).get_json()["member_no"] == member_no
    assert pos.sale(token, 1000).get_json()["member_no"] == member_no
    clock.advance(seconds=180)
    assert_problem(pos.sale(token, 1000), 410, "card-token-expired")
    assert pos.get(f"/members/{member_no}").get_json()["points"]["balance"] == 20


def test_sale_naming_a_coupon_is_refused_and_records_nothing(pos, factory, app):
    member_no = factory.member()

    body = assert_problem(pos.sale(member_no, 12800, coupons=["C7K2-9QXD-PL4M"]), 422, "coupon-invalid")

    assert "C7K2-9QXD-PL4M" in body["detail"]
    assert transaction_count(app) == 0


def test_validate_coupon_answers_unknown_and_changes_nothing(pos, factory, app):
    member_no = factory.member()

    response = pos.post("/coupons/validate", json={"code": "SUMMER10", "member": member_no, "amount": 12800,
                                                   "lines": [{"sku": "A1", "amount": 12800}]})

    assert response.status_code == 200
    assert response.get_json() == {"code": "SUMMER10", "valid": False, "reason": "unknown", "discount": 0}
    assert transaction_count(app) == 0
    body = assert_problem(pos.post("/coupons/validate", json={"code": "X", "amount": 1.5}), 422, "validation-error")
    assert "amount" in body["errors"]


def test_currency_other_than_the_program_is_refused(pos, factory, app):
    member_no = factory.member()

    assert_problem(pos.sale(member_no, 12800, currency="USD"), 422, "currency-mismatch")
    assert transaction_count(app) == 0


def test_replayed_sale_changes_nothing_and_a_changed_body_conflicts(pos, factory, app):
    member_no = factory.member()
    first = pos.sale(member_no, 12800, external_id="S-1")

    replay = pos.sale(member_no, 12800, external_id="S-1")
    changed = pos.sale(member_no, 12900, external_id="S-1")

    assert replay.status_code == 201
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.get_json() == first.get_json()
    assert_problem(changed, 409, "idempotency-conflict")
    assert transaction_count(app) == 1
    assert pos.get(f"/members/{member_no}").get_json()["points"]["balance"] == 128


def test_replay_returns_the_first_answer_even_after_the_member_moved_on(pos, factory):
    member_no = factory.member()
    first = pos.sale(member_no, 12800, external_id="S-1").get_json()
    pos.sale(member_no, 5000, external_id="S-2")

    replay = pos.sale(member_no, 12800, external_id="S-1").get_json()

    assert replay == first
    assert replay["member"]["points"]["balance"] == 128


def test_a_retry_the_spent_points_would_now_refuse_is_still_replayed(pos, factory):
    """The first attempt spent the points, so doing the work again would be insufficient-points: the
    stored answer must win over the error the retry runs into."""
    member_no = factory.member()
    pos.sale(member_no, 50000, external_id="S-1")
    first = pos.sale(member_no, 0, external_id="S-2", points_redeemed=500)
    assert first.status_code == 201

    retry = pos.sale(member_no, 0, external_id="S-2", points_redeemed=500)
    changed = pos.sale(member_no, 0, external_id="S-2", points_redeemed=499)

    assert retry.status_code == 201 and retry.headers["Idempotent-Replayed"] == "true"
    assert retry.get_json() == first.get_json()
    assert_problem(changed, 409, "idempotency-conflict")
    assert pos.get(f"/members/{member_no}").get_json()["points"]["balance"] == 0


def test_external_ids_belong_to_one_client(pos, factory):
    member_no = factory.member()
    web = factory.api_client(name="web shop")

    mine = pos.sale(member_no, 12800, external_id="S-1")
    theirs = web.sale(member_no, 5000, external_id="S-1")

    assert mine.status_code == theirs.status_code == 201
    assert "Idempotent-Replayed" not in theirs.headers
    assert pos.get("/transactions/S-1").get_json()["amount"] == 12800
    assert web.get("/transactions/S-1").get_json()["amount"] == 5000
    assert pos.get(f"/members/{member_no}").get_json()["points"]["balance"] == 178


def test_get_transaction_shows_the_sale_with_lines_and_refunds(pos, factory):
    member_no = factory.member()
    pos.sale(member_no, 12800, external_id="S-1", channel="online", subtotal=13000,
             lines=[{"sku": "A1", "category": "shoes", "quantity": 2, "unit_price": 6400, "amount": 12800}])
    pos.post("/transactions/S-1/refunds", json={"external_id": "R-1", "amount": 6400,
                                                "occurred_at": "2026-11-22T10:00:00+08:00"})
    pos.post("/transactions/S-1/refunds", json={"external_id": "R-2", "amount": 3200,
                                                "occurred_at": "2026-11-22T10:00:00+08:00"})

    response = pos.get("/transactions/S-1")

    assert response.status_code == 200
    body = response.get_json()
    assert body["external_id"] == "S-1" and body["member_no"] == member_no
    assert body["store_code"] == "S001" and body["channel"] == "online"
    assert body["occurred_at"] == "2026-11-22T02:00:00Z"
    assert body["amount"] == 12800 and body["subtotal"] == 13000 and body["currency"] == "CNY"
    assert body["points_earned"] == 128 and body["points_redeemed"] == 0
    assert body["refunded_amount"] == 9600 and body["points_reversed"] == 96
    assert body["lines"] == [{"sku": "A1", "category": "shoes", "quantity": 2, "unit_price": 6400, "amount": 12800}]
    assert body["refunds"] == [
        {"external_id": "R-1", "amount": 6400, "occurred_at": "2026-11-22T02:00:00Z",
         "points_reversed": 64, "points_restored": 0},
        {"external_id": "R-2", "amount": 3200, "occurred_at": "2026-11-22T02:00:00Z",
         "points_reversed": 32, "points_restored": 0},
    ]


def test_get_unknown_transaction_is_not_found(pos):
    assert_problem(pos.get("/transactions/S-none"), 404, "not-found")


def test_sale_a_few_minutes_ahead_of_the_server_clock_is_accepted(pos, factory):
    member_no = factory.member()

    # Server time is 02:00Z; tills may run up to 5 minutes fast.
    assert pos.sale(member_no, 100, occurred_at="2026-11-22T10:04:59+08:00").status_code == 201
    assert_problem(pos.sale(member_no, 100, occurred_at="2026-11-22T10:05:01+08:00"), 422, "validation-error")
