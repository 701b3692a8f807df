"""Malformed input is a 4xx problem, never a server error (issue 12, finding 9): text the database
cannot store (a lone surrogate), JSON nested deep, with duplicate keys, an integer too long for
Python to convert, NaN, and paging cursors beyond 64 bits."""

import base64
import json

import flask_smorest
import pytest
import sqlalchemy as sa

from loyalty.extensions import db
from loyalty.members.models import Member
from loyalty.request_json import ApiBlueprint, StrictJSONProvider
from loyalty.sales.models import Transaction

LONE_SURROGATE = "\ud800"  # valid JSON ("\ud800"), but no UTF-8 encoding exists for it
SALE = {"external_id": "S-1", "occurred_at": "2026-11-22T10:00:00+08:00", "currency": "CNY", "amount": 12800}


def post_raw(pos, path: str, text: str):
    """Send `text` as the JSON body exactly as written (the test client's json= would reformat it)."""
    return pos.post(path, data=text.encode(), headers={"Content-Type": "application/json"})


def post_json(pos, path: str, body):
    # json.dumps writes a lone surrogate as the escape \ud800, as a client's JSON encoder would.
    return post_raw(pos, path, json.dumps(body))


def assert_validation_error(response) -> dict:
    assert response.status_code == 422, (response.status_code, response.get_data(as_text=True))
    assert response.mimetype == "application/problem+json"
    body = response.get_json()
    assert body["type"].endswith("/validation-error"), body
    return body


def count(app, model) -> int:
    with app.app_context():
        return db.session.scalar(sa.select(sa.func.count()).select_from(model))


# --- text the database cannot store ------------------------------------------------------------------

@pytest.mark.parametrize("path, body, field", [
    ("/members", {"name": "Wang" + LONE_SURROGATE, "email": "w@example.com"}, "name"),
    ("/members", {"name": "Wang", "phone": "+86138" + LONE_SURROGATE}, "phone"),
    ("/transactions", {**SALE, "external_id": "S-" + LONE_SURROGATE}, "external_id"),
    ("/transactions", {**SALE, "member": LONE_SURROGATE}, "member"),
    ("/transactions", {**SALE, "coupons": ["C" + LONE_SURROGATE]}, "coupons"),
    ("/transactions", {**SALE, "lines": [{"sku": LONE_SURROGATE, "amount": 12800}]}, "lines"),
    ("/transactions", {**SALE, "lines": [{"sku": "A", "category": LONE_SURROGATE, "amount": 12800}]}, "lines"),
    ("/coupons/validate", {"code": "C" + LONE_SURROGATE, "amount": 100}, "code"),
    ("/coupons/validate", {"code": "C1", "amount": 100, "member": LONE_SURROGATE}, "member"),
])
def test_a_lone_surrogate_is_a_validation_error_naming_the_field(pos, app, path, body, field):
    problem = assert_validation_error(post_json(pos, path, body))

    assert field in problem["errors"], problem
    assert count(app, Transaction) == 0 and count(app, Member) == 0


def test_an_email_that_grows_past_its_column_in_lower_case_is_a_validation_error(pos, app):
    """"İ" lower-cases to two characters: 300 of them pass the schema's 320 and would not fit the column."""
    problem = assert_validation_error(pos.post("/members", json={"name": "Wang", "email": "İ" * 300 + "@example.com"}))

    assert "email" in problem["errors"]
    assert count(app, Member) == 0


def test_a_lone_surrogate_in_a_line_names_the_line_and_its_field(pos):
    problem = assert_validation_error(post_json(pos, "/transactions", {
        **SALE, "lines": [{"sku": "A", "amount": 6400}, {"sku": "B", "category": LONE_SURROGATE, "amount": 6400}]}))

    assert problem["errors"] == {"lines": {"1": {"category": [problem["errors"]["lines"]["1"]["category"][0]]}}}


def test_a_lone_surrogate_in_a_refund_or_an_offer_is_a_validation_error(pos, factory, app):
    assert pos.post("/transactions", json=SALE).status_code == 201
    refund = assert_validation_error(post_json(pos, "/transactions/S-1/refunds",
                                               {"external_id": "R" + LONE_SURROGATE, "amount": 100}))
    assert "external_id" in refund["errors"]

    manage = factory.api_client(scope="manage", name="crm")
    offer = assert_validation_error(post_json(manage, "/offers", {
        "name": "Ten off", "kind": "amount_off", "value": 1000, "skus": ["A", LONE_SURROGATE]}))
    assert "skus" in offer["errors"]
    created = manage.post("/offers", json={"name": "Ten off", "kind": "amount_off", "value": 1000})
    assert created.status_code == 201, created.get_json()
    coupon = assert_validation_error(post_json(manage, f"/offers/{created.get_json()['id']}/coupons",
                                               {"code": "SUMMER" + LONE_SURROGATE, "limit": 10}))
    assert "code" in coupon["errors"]


def test_a_batch_item_with_a_lone_surrogate_fails_alone(pos, factory, app):
    member_no = factory.member()
    items = [
        {**SALE, "external_id": "B-1", "member": member_no},
        {**SALE, "external_id": "B-2", "lines": [{"sku": LONE_SURROGATE, "amount": 12800}]},
        {**SALE, "external_id": "B-3" + LONE_SURROGATE},
        {**SALE, "external_id": "B-4", "lines": [{"sku": "A", "category": "shoes" + LONE_SURROGATE,
                                                  "amount": 12800}]},
        {**SALE, "external_id": "B-5", "coupons": [LONE_SURROGATE]},
        {**SALE, "external_id": "B-6", "member": member_no},
    ]

    response = post_json(pos, "/transactions/batch", {"sales": items})

    assert response.status_code == 200, response.get_data(as_text=True)
    results = response.get_json()["results"]
    assert [result["status"] for result in results] == [201, 422, 422, 422, 422, 201]
    assert [sorted(result["error"]["errors"]) for result in results[1:5]] == [
        ["lines"], ["external_id"], ["lines"], ["coupons"]]
    assert results[2]["external_id"] == "B-3" + LONE_SURROGATE
    with app.app_context():
        assert sorted(db.session.scalars(sa.select(Transaction.external_id))) == ["B-1", "B-6"]


# --- JSON that is not what it seems ------------------------------------------------------------------

def test_every_api_blueprint_parses_json_strictly(app):
    """The refusals below live in one parser (loyalty/request_json.py); a new /api/v1 blueprint made
    from flask-smorest's own class would parse with the stdlib json module instead."""
    api_blueprints = [blueprint for blueprint in app.blueprints.values()
                      if isinstance(blueprint, flask_smorest.Blueprint)]

    assert api_blueprints and all(isinstance(blueprint, ApiBlueprint) for blueprint in api_blueprints)
    assert isinstance(app.json, StrictJSONProvider)


@pytest.mark.parametrize("depth", [40, 1000, 100_000])
@pytest.mark.parametrize("path", ["/transactions", "/transactions/batch", "/members", "/coupons/validate"])
def test_json_nested_deep_is_a_validation_error(pos, path, depth):
    problem = assert_validation_error(post_raw(pos, path, '{"lines": ' + "[" * depth + "]" * depth + "}"))

    assert "_schema" in problem["errors"]


def test_json_nested_as_deep_as_a_real_body_is_fine(pos):
    response = pos.post("/transactions/batch", json={"sales": [{**SALE, "lines": [{"sku": "A", "amount": 12800}]}]})

    assert response.status_code == 200 and response.get_json()["results"][0]["status"] == 201


@pytest.mark.parametrize("text", [
    '{"external_id": "S-1", "occurred_at": "2026-11-22T10:00:00+08:00", "currency": "CNY", "amount": 1, "amount": 2}',
    '{"external_id": "S-1", "occurred_at": "2026-11-22T10:00:00+08:00", "currency": "CNY", "amount": 2,'
    ' "lines": [{"sku": "A", "amount": 1, "sku": "B"}]}',
])
def test_duplicate_keys_are_a_validation_error(pos, app, text):
    problem = assert_validation_error(post_raw(pos, "/transactions", text))

    assert "_schema" in problem["errors"]
    assert count(app, Transaction) == 0


def test_duplicate_keys_in_a_batch_item_are_a_validation_error(pos, app):
    text = '{"sales": [{"external_id": "B-1", "external_id": "B-2", "occurred_at": "2026-11-22T10:00:00+08:00",' \
           ' "currency": "CNY", "amount": 1}]}'

    assert_validation_error(post_raw(pos, "/transactions/batch", text))
    assert count(app, Transaction) == 0


@pytest.mark.parametrize("number", ["1" * 4301, "1" * 100_000, "-" + "9" * 5000])
@pytest.mark.parametrize("path", ["/transactions", "/transactions/batch", "/members"])
def test_an_integer_too_long_to_convert_is_a_validation_error(pos, app, number, path):
    assert_validation_error(post_raw(pos, path, '{"amount": ' + number + "}"))


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_are_not_json(pos, app, constant):
    text = json.dumps(SALE)[:-1] + ', "subtotal": ' + constant + "}"

    assert_validation_error(post_raw(pos, "/transactions", text))
    assert count(app, Transaction) == 0


# --- cursors -----------------------------------------------------------------------------------------

def cursor_for(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


@pytest.mark.parametrize("listing", ["points", "coupons"])
@pytest.mark.parametrize("last_id", [str(2**63), str(2**64 + 5), "9" * 60, "0"])
def test_a_cursor_beyond_the_ids_we_hand_out_is_a_validation_error(pos, factory, listing, last_id):
    member_no = factory.member()

    problem = assert_validation_error(pos.get(f"/members/{member_no}/{listing}?cursor={cursor_for('id:' + last_id)}"))

    assert "cursor" in problem["errors"]


@pytest.mark.parametrize("listing", ["points", "coupons"])
def test_the_largest_id_is_still_a_cursor(pos, factory, listing):
    member_no = factory.member()

    response = pos.get(f"/members/{member_no}/{listing}?cursor={cursor_for('id:' + str(2**63 - 1))}")

    assert response.status_code == 200, response.get_json()
