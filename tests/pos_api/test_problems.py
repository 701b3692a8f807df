"""Every problem slug of docs/api.md's table, as RFC 9457 `application/problem+json`, and the OpenAPI
document that describes it all."""

import json
from datetime import timedelta

import pytest
import sqlalchemy as sa
from openapi_spec_validator import validate

from loyalty.auth.models import ApiClient
from loyalty.auth.services import revoke_api_client
from loyalty.extensions import db
from loyalty.members.models import Member
from loyalty.members.services import current_card_token
from loyalty.sales.models import Transaction

SALE = {"external_id": "S-1", "occurred_at": "2026-11-22T10:00:00+08:00", "currency": "CNY", "amount": 12800}


def assert_problem(response, status: int, slug: str) -> dict:
    """The contract's problem shape: content type, `type` ending in the slug, status, title, detail."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    body = json.loads(response.get_data(as_text=True))
    assert body["type"].startswith("https://") and body["type"].rsplit("/", 1)[-1] == slug
    assert body["status"] == status
    assert isinstance(body["title"], str) and body["title"]
    assert set(body) <= {"type", "title", "status", "detail", "errors", "request_id"}
    # The id a vendor quotes to us: the one in the header, and in our log lines (loyalty/logs.py).
    assert body["request_id"] == response.headers["X-Request-Id"]
    return body


def transaction_count(app) -> int:
    with app.app_context():
        return db.session.scalar(sa.select(sa.func.count(Transaction.id)))


# --- validation-error ----------------------------------------------------------------------------

INVALID_SALES = [  # (change to a good sale, field the errors map must name)
    ({"points": 100}, "points"),
    ({"amount": 12800.0}, "amount"),
    ({"amount": "12800"}, "amount"),
    ({"points_redeemed": 1.5}, "points_redeemed"),
    ({"occurred_at": "2026-11-22T10:00:00"}, "occurred_at"),
    ({"occurred_at": "yesterday"}, "occurred_at"),
    ({"occurred_at": "2026-11-22T10:05:01+08:00"}, "occurred_at"),
    ({"currency": "cny"}, "currency"),
    ({"channel": "fax"}, "channel"),
    ({"lines": [{"sku": "A1", "amount": 100, "discount": 5}]}, "lines"),
    ({"lines": [{"sku": "A1", "amount": 99.5}]}, "lines"),
]


def test_a_sale_failing_validation_names_the_field(pos, factory, app):
    member_no = factory.member()

    for change, field in INVALID_SALES:
        body = assert_problem(pos.post("/transactions", json={**SALE, "member": member_no, **change}),
                              422, "validation-error")
        assert field in body["errors"], (change, body)
    assert transaction_count(app) == 0


def test_unknown_fields_in_a_body_are_refused_everywhere(pos):
    enrol = assert_problem(pos.post("/members", json={"name": "A", "email": "a@example.com", "tier": "GOLD"}),
                           422, "validation-error")
    consents = assert_problem(pos.post("/members", json={"name": "A", "email": "a@example.com",
                                                         "consents": {"email_marketing": True, "fax": True}}),
                              422, "validation-error")
    refund = assert_problem(pos.post("/transactions/S-1/refunds", json={"external_id": "R-1", "amount": 1,
                                                                        "reason": "x"}), 422, "validation-error")
    validate_coupon = assert_problem(pos.post("/coupons/validate", json={"code": "X", "amount": 1, "store": "S1"}),
                                     422, "validation-error")
    batch = assert_problem(pos.post("/transactions/batch", json={"sales": [], "atomic": True}), 422,
                           "validation-error")

    assert "tier" in enrol["errors"]
    assert "consents" in consents["errors"]
    assert "reason" in refund["errors"]
    assert "store" in validate_coupon["errors"]
    assert "atomic" in batch["errors"]


def test_occurred_at_in_the_future_follows_the_server_clock(pos, clock):
    clock.set(clock() + timedelta(hours=1))

    assert pos.post("/transactions", json={**SALE, "occurred_at": "2026-11-22T11:04:00+08:00"}).status_code == 201


def test_a_body_that_is_not_json_is_a_validation_error(pos):
    response = pos.post("/transactions", data="{not json", headers={"Content-Type": "application/json"})

    body = assert_problem(response, 422, "validation-error")
    assert body["errors"] == {"_schema": ["Invalid JSON body."]}


def test_a_body_that_is_not_an_object_is_a_validation_error(pos):
    body = assert_problem(pos.post("/transactions", json=[SALE]), 422, "validation-error")

    assert "_schema" in body["errors"]


# --- unauthorized ----------------------------------------------------------------------------------

def test_no_key_is_unauthorized(client):
    assert_problem(client.get("/api/v1/members/1000000018"), 401, "unauthorized")
    assert_problem(client.post("/api/v1/transactions", json=SALE), 401, "unauthorized")


def test_an_unknown_key_or_another_scheme_is_unauthorized(client, pos):
    for header in (f"Bearer {pos.key}x", "Bearer ", f"Basic {pos.key}", pos.key):
        response = client.get("/api/v1/members/1000000018", headers={"Authorization": header})
        assert_problem(response, 401, "unauthorized")


def test_a_revoked_key_is_unauthorized(pos, app, clock):
    assert pos.get("/members/1000000018").status_code == 404
    with app.app_context():
        revoke_api_client(db.session.get(ApiClient, pos.client_id), clock())
        db.session.commit()

    assert_problem(pos.get("/members/1000000018"), 401, "unauthorized")
    assert_problem(pos.post("/transactions", json=SALE), 401, "unauthorized")
    assert transaction_count(app) == 0


# --- forbidden, not-found ----------------------------------------------------------------------------

def test_another_clients_sale_is_forbidden(pos, factory, app):
    other = factory.api_client(store_code="S002", name="other store")
    assert other.post("/transactions", json={**SALE, "external_id": "S-theirs"}).status_code == 201

    assert_problem(pos.get("/transactions/S-theirs"), 403, "forbidden")
    assert_problem(pos.post("/transactions/S-theirs/refunds", json={"external_id": "R-1", "amount": 100}),
                   403, "forbidden")
    assert other.get("/transactions/S-theirs").get_json()["refunded_amount"] == 0


def test_unknown_things_are_not_found(pos):
    assert_problem(pos.get("/members/1000000018"), 404, "not-found")
    assert_problem(pos.get("/transactions/S-none"), 404, "not-found")
    assert_problem(pos.get("/no-such-endpoint"), 404, "not-found")


# --- domain problems ---------------------------------------------------------------------------------

def test_unknown_member(pos, app):
    body = assert_problem(pos.post("/transactions", json={**SALE, "member": "1000000018"}), 422, "unknown-member")

    assert body["detail"]
    assert transaction_count(app) == 0


def test_card_token_expired(pos, factory, app, clock):
    member_no = factory.member()
    with app.app_context():
        member = db.session.scalar(sa.select(Member).where(Member.member_no == member_no))
        token = current_card_token(member, clock()).token
    clock.advance(minutes=10)

    assert_problem(pos.get("/members/lookup", query_string={"code": token}), 410, "card-token-expired")
    assert_problem(pos.post("/transactions", json={**SALE, "member": token}), 410, "card-token-expired")
    assert transaction_count(app) == 0


def test_duplicate_member(pos, factory):
    factory.member(email="taken@example.com")

    assert_problem(pos.post("/members", json={"name": "A", "email": "taken@example.com"}), 409, "duplicate-member")


def test_idempotency_conflict(pos):
    assert pos.post("/transactions", json=SALE).status_code == 201

    assert_problem(pos.post("/transactions", json={**SALE, "amount": 1}), 409, "idempotency-conflict")


def test_insufficient_points(pos, factory):
    member_no = factory.member()

    body = assert_problem(pos.post("/transactions", json={**SALE, "member": member_no, "points_redeemed": 1}),
                          422, "insufficient-points")

    assert "1" in body["detail"]


def test_coupon_invalid(pos, factory):
    member_no = factory.member()

    assert_problem(pos.post("/transactions", json={**SALE, "member": member_no, "coupons": ["NOPE"]}),
                   422, "coupon-invalid")


def test_refund_exceeds_sale(pos):
    pos.post("/transactions", json=SALE)

    assert_problem(pos.post("/transactions/S-1/refunds", json={"external_id": "R-1", "amount": 12801}),
                   422, "refund-exceeds-sale")


def test_currency_mismatch(pos):
    assert_problem(pos.post("/transactions", json={**SALE, "currency": "EUR"}), 422, "currency-mismatch")


def test_payload_too_large(pos, app):
    lines = [{"sku": f"SKU-{n:06d}", "category": "padding" * 4, "amount": 1} for n in range(20000)]
    body = json.dumps({**SALE, "lines": lines})
    assert len(body) > 1024 * 1024

    assert_problem(pos.post("/transactions", data=body, headers={"Content-Type": "application/json"}),
                   413, "payload-too-large")
    assert transaction_count(app) == 0


@pytest.fixture
def three_per_minute(app):
    saved = app.config["API_RATE_LIMIT"]
    app.config["API_RATE_LIMIT"] = "3 per minute"
    yield
    app.config["API_RATE_LIMIT"] = saved


def test_rate_limited(pos, factory, three_per_minute):
    other = factory.api_client(name="other till")
    for _ in range(3):
        assert pos.get("/members/1000000018").status_code == 404

    response = pos.get("/members/1000000018")

    assert_problem(response, 429, "rate-limited")
    assert int(response.headers["Retry-After"]) >= 1
    # The limit is per key: another till goes on.
    assert other.get("/members/1000000018").status_code == 404


# --- the OpenAPI document ----------------------------------------------------------------------------

def test_openapi_document_is_served_without_a_key_and_is_valid(client):
    response = client.get("/api/v1/openapi.json")

    assert response.status_code == 200
    document = response.get_json()
    validate(document)
    assert document["openapi"].startswith("3.")
    paths = document["paths"]
    for path, method in [
        ("/api/v1/members", "post"), ("/api/v1/members/{member_no}", "get"), ("/api/v1/members/lookup", "get"),
        ("/api/v1/members/{member_no}/coupons", "get"), ("/api/v1/members/{member_no}/points", "get"),
        ("/api/v1/coupons/validate", "post"), ("/api/v1/transactions", "post"),
        ("/api/v1/transactions/{external_id}", "get"), ("/api/v1/transactions/{external_id}/refunds", "post"),
        ("/api/v1/transactions/batch", "post"),
    ]:
        assert method in paths.get(path, {}), (path, method)
    sale = document["components"]["schemas"]["Sale"]
    assert {"external_id", "occurred_at", "currency", "amount"} <= set(sale["required"])
    assert sale["properties"]["amount"]["type"] == "integer"
