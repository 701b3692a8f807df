"""Guessing codes through the API: each key's failed lookups (unknown coupon codes, another member's
coupon, unknown member numbers, phones or card tokens) are limited by API_FAILED_LOOKUP_LIMIT, shared
by the lookup endpoints; successful lookups never count, and sales are not refused."""

import pytest

from tests.campaigns.helpers import assert_problem

LIMIT = 3


@pytest.fixture(autouse=True)
def tight_limit(app, monkeypatch):
    monkeypatch.setitem(app.config, "API_FAILED_LOOKUP_LIMIT", f"{LIMIT} per 10 minutes")


def validate(pos, code, member_no=None):
    return pos.post("/coupons/validate", json={"code": code, "amount": 5000,
                                               **({"member": member_no} if member_no else {})})


def test_failed_coupon_validations_beyond_the_limit_are_refused(campaigns, factory, pos):
    offer = campaigns.offer(value=500)
    good = campaigns.generic(offer["id"], limit=100, code="SPRING5")
    for _ in range(2 * LIMIT):
        answer = validate(pos, good)
        assert answer.status_code == 200 and answer.get_json()["valid"] is True
    for number in range(LIMIT):
        answer = validate(pos, f"GUESS{number}")
        assert answer.status_code == 200
        assert answer.get_json()["reason"] == "unknown"

    refused = validate(pos, "GUESS9")
    body = assert_problem(refused, 429, "rate-limited")
    assert body["status"] == 429
    assert 0 < int(refused.headers["Retry-After"]) <= 600
    # A good code is refused too now: else its 200 among the 429s would still tell it apart.
    assert_problem(validate(pos, good), 429, "rate-limited")
    # The key's other work goes on, and other keys are not affected.
    member_no = factory.member()
    assert pos.sale(member_no, 1000).status_code == 201
    other = factory.api_client(name="till 2")
    assert validate(other, good).get_json()["valid"] is True


def test_another_members_coupon_and_an_unknown_member_count_as_failures(campaigns, factory, pos):
    owner, other = factory.member(), factory.member()
    offer = campaigns.offer(value=500)
    theirs = campaigns.personal(offer["id"], owner)
    assert validate(pos, theirs, member_no=owner).get_json()["valid"] is True
    assert validate(pos, theirs, member_no=other).get_json()["reason"] == "not-this-member"
    assert_problem(validate(pos, theirs, member_no="9999999999"), 422, "unknown-member")
    assert validate(pos, theirs, member_no=other).status_code == 200
    assert_problem(validate(pos, theirs, member_no=owner), 429, "rate-limited")


def test_codes_that_exist_but_do_not_apply_do_not_count(campaigns, pos):
    offer = campaigns.offer(value=500, min_spend=100_000)
    code = campaigns.generic(offer["id"], limit=100, code="BIGSPEND")
    for _ in range(2 * LIMIT):
        assert validate(pos, code).get_json()["reason"] == "min-spend"


def test_member_lookups_by_guessed_numbers_share_the_limit(campaigns, factory, pos):
    member_no = factory.member()
    assert pos.get(f"/members/{member_no}").status_code == 200
    assert_problem(pos.get("/members/1000000000"), 404, "not-found")
    assert_problem(pos.get("/members/lookup?code=%2B8613800000000"), 404, "not-found")
    assert_problem(pos.get("/members/1000000001/coupons"), 404, "not-found")
    for path in (f"/members/{member_no}", f"/members/{member_no}/points", "/members/lookup?code=" + member_no):
        assert_problem(pos.get(path), 429, "rate-limited")
    assert validate(pos, "GUESS1").status_code == 429
