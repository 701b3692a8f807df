"""Refunds (docs/api.md "Refund"): points reversed and restored in proportion to the refunded share,
cumulatively and rounded down, never more than the sale, and negative balances paid off by later earnings."""

import pytest
import sqlalchemy as sa

from loyalty.extensions import db
from loyalty.points.services import verify_ledger
from loyalty.sales.models import Transaction


def assert_problem(response, status: int, slug: str) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    body = response.get_json()
    assert body["type"].rsplit("/", 1)[-1] == slug
    return body


def refund(pos, sale_id: str, external_id: str, amount: int, **fields):
    return pos.post(f"/transactions/{sale_id}/refunds", json={"external_id": external_id, "amount": amount, **fields})


def balance(pos, member_no: str) -> dict:
    return pos.get(f"/members/{member_no}").get_json()["points"]


def assert_ledger_ok(app):
    with app.app_context():
        report = verify_ledger(db.session)
        assert report.ok, report.problems


@pytest.fixture
def member_with_300(pos, factory):
    member_no = factory.member()
    assert pos.sale(member_no, 30000).get_json()["points_earned"] == 300
    return member_no


def test_refund_response_has_the_contract_fields(pos, factory):
    member_no = factory.member()
    pos.sale(member_no, 12800, external_id="S-1")

    response = refund(pos, "S-1", "R-1", 6400)

    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["external_id"] == "R-1"
    assert body["transaction_external_id"] == "S-1"
    assert body["amount"] == 6400
    assert body["points_reversed"] == 64
    assert body["points_restored"] == 0
    assert body["member"]["member_no"] == member_no
    assert body["member"]["points"]["balance"] == 64


def test_partial_refunds_use_cumulative_floor_arithmetic(pos, member_with_300, app):
    member_no = member_with_300
    sale = pos.sale(member_no, 12800, external_id="S-1", points_redeemed=300).get_json()
    assert sale["points_earned"] == 128
    assert sale["member"]["points"]["balance"] == 128

    results = [refund(pos, "S-1", f"R-{n}", amount).get_json() for n, amount in enumerate((3333, 3333, 6134), 1)]

    # floor(128 x R / 12800) - reversed before, floor(300 x R / 12800) - restored before.
    assert [r["points_reversed"] for r in results] == [33, 33, 62]
    assert [r["points_restored"] for r in results] == [78, 78, 144]
    assert [r["member"]["points"]["balance"] for r in results] == [173, 218, 300]
    stored = pos.get("/transactions/S-1").get_json()
    assert stored["refunded_amount"] == 12800
    assert stored["points_reversed"] == 128 and stored["points_restored"] == 300
    assert_ledger_ok(app)


def test_a_full_refund_reverses_what_was_earned_and_restores_what_was_redeemed(pos, member_with_300, app):
    member_no = member_with_300
    pos.sale(member_no, 9999, external_id="S-1", points_redeemed=123)

    body = refund(pos, "S-1", "R-1", 9999).get_json()

    assert body["points_reversed"] == 99
    assert body["points_restored"] == 123
    assert body["member"]["points"]["balance"] == 300
    assert body["member"]["points"]["available"] == 300
    assert_ledger_ok(app)


def test_restored_points_keep_the_expiry_of_the_points_spent(pos, factory):
    member_no = factory.member()
    pos.sale(member_no, 10000, occurred_at="2026-01-10T10:00:00+08:00")  # 100 expiring 2027-01-11
    pos.sale(member_no, 100, external_id="S-1", points_redeemed=100)

    body = refund(pos, "S-1", "R-1", 100).get_json()

    assert body["points_restored"] == 100 and body["points_reversed"] == 1
    assert body["member"]["points"]["expiring"] == [{"points": 100, "expires_at": "2027-01-11T00:00:00Z"}]


def test_refunds_never_total_more_than_the_sale(pos, factory, app):
    member_no = factory.member()
    pos.sale(member_no, 12800, external_id="S-1")

    assert_problem(refund(pos, "S-1", "R-too-big", 12801), 422, "refund-exceeds-sale")
    assert refund(pos, "S-1", "R-1", 12000).status_code == 201
    assert_problem(refund(pos, "S-1", "R-2", 801), 422, "refund-exceeds-sale")
    assert refund(pos, "S-1", "R-3", 800).status_code == 201
    assert_problem(refund(pos, "S-1", "R-4", 1), 422, "refund-exceeds-sale")

    stored = pos.get("/transactions/S-1").get_json()
    assert [r["external_id"] for r in stored["refunds"]] == ["R-1", "R-3"]
    assert stored["refunded_amount"] == 12800
    assert balance(pos, member_no)["balance"] == 0
    assert_ledger_ok(app)


def test_reversing_spent_points_goes_negative_and_later_earning_pays_the_debt(pos, factory, app):
    member_no = factory.member()
    pos.sale(member_no, 12800, external_id="S-1")
    spent = pos.sale(member_no, 50, external_id="S-2", points_redeemed=128).get_json()
    assert spent["member"]["points"]["balance"] == 0

    reversed_body = refund(pos, "S-1", "R-1", 12800).get_json()

    assert reversed_body["points_reversed"] == 128
    assert reversed_body["member"]["points"]["balance"] == -128
    assert reversed_body["member"]["points"]["available"] == 0
    # The next sale earns 200; 128 of it settles the debt.
    after = pos.sale(member_no, 20000, external_id="S-3").get_json()
    assert after["points_earned"] == 200
    assert after["member"]["points"]["balance"] == 72
    assert after["member"]["points"]["available"] == 72
    assert_problem(pos.sale(member_no, 50, points_redeemed=73), 422, "insufficient-points")
    assert pos.sale(member_no, 50, points_redeemed=72).status_code == 201
    assert_ledger_ok(app)


def test_a_debt_larger_than_the_next_earning_stays_negative(pos, factory, app):
    member_no = factory.member()
    pos.sale(member_no, 50000, external_id="S-1")
    pos.sale(member_no, 0, external_id="S-2", points_redeemed=500)
    refund(pos, "S-1", "R-1", 50000)

    after = pos.sale(member_no, 10000).get_json()

    assert after["member"]["points"]["balance"] == -400
    assert after["member"]["points"]["available"] == 0
    assert_ledger_ok(app)


def test_replayed_refund_changes_nothing_and_a_changed_body_conflicts(pos, factory, app):
    member_no = factory.member()
    pos.sale(member_no, 12800, external_id="S-1")
    pos.sale(member_no, 12800, external_id="S-2")
    first = refund(pos, "S-1", "R-1", 6400)

    replay = refund(pos, "S-1", "R-1", 6400)

    assert replay.status_code == 201
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.get_json() == first.get_json()
    assert_problem(refund(pos, "S-1", "R-1", 6000), 409, "idempotency-conflict")
    # The same refund id against another sale is another request, not a replay.
    assert_problem(refund(pos, "S-2", "R-1", 6400), 409, "idempotency-conflict")
    assert pos.get("/transactions/S-1").get_json()["refunded_amount"] == 6400
    assert balance(pos, member_no)["balance"] == 256 - 64


def test_refund_of_an_anonymous_sale_moves_no_points(pos):
    pos.sale(None, 12800, external_id="S-anon")

    body = refund(pos, "S-anon", "R-1", 12800).get_json()

    assert body["member"] is None
    assert body["points_reversed"] == 0 and body["points_restored"] == 0


def test_refund_of_an_unknown_sale_is_not_found(pos):
    assert_problem(refund(pos, "S-none", "R-1", 100), 404, "not-found")


def test_refund_body_is_validated(pos, factory, app):
    member_no = factory.member()
    pos.sale(member_no, 12800, external_id="S-1")

    for body, field in (({"external_id": "R-1", "amount": 0}, "amount"),
                        ({"external_id": "R-1", "amount": 100.0}, "amount"),
                        ({"external_id": "R-1", "amount": 100, "occurred_at": "2026-11-22T10:00:00"}, "occurred_at"),
                        ({"external_id": "R-1", "amount": 100, "occurred_at": "2026-11-22T12:00:00+08:00"},
                         "occurred_at"),
                        ({"external_id": "R-1", "amount": 100, "points": 5}, "points"),
                        ({"amount": 100}, "external_id")):
        problem = assert_problem(pos.post("/transactions/S-1/refunds", json=body), 422, "validation-error")
        assert field in problem["errors"], (body, problem)
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count(Transaction.id)).where(Transaction.kind == "refund")) == 0


def test_refund_occurred_at_defaults_to_now_and_lines_are_accepted(pos, factory, clock):
    member_no = factory.member()
    pos.sale(member_no, 12800, external_id="S-1",
             lines=[{"sku": "A1", "amount": 6400}, {"sku": "B2", "amount": 6400}])
    clock.advance(days=3)

    response = refund(pos, "S-1", "R-1", 6400, lines=[{"sku": "B2", "amount": 6400}])

    assert response.status_code == 201
    assert pos.get("/transactions/S-1").get_json()["refunds"][0]["occurred_at"] == "2026-11-25T02:00:00Z"


def test_refunds_are_separate_per_client(pos, factory):
    web = factory.api_client(name="web shop")
    member_no = factory.member()
    pos.sale(member_no, 12800, external_id="S-1")
    web.sale(member_no, 5000, external_id="S-1")

    mine = refund(pos, "S-1", "R-1", 12800).get_json()

    assert mine["points_reversed"] == 128
    assert web.get("/transactions/S-1").get_json()["refunded_amount"] == 0
    assert balance(pos, member_no)["balance"] == 50
