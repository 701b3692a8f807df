"""Members over the POS API (docs/api.md "Endpoints", "Member codes", "Member object"): enrolment, reading a
member, resolving any of their codes, their ledger page by page, and their coupons."""

import base64
from datetime import timedelta

import sqlalchemy as sa

from loyalty.auth.models import Store
from loyalty.extensions import db
from loyalty.members.models import Member
from loyalty.members.services import current_card_token
from loyalty.points.models import TierChange


def assert_problem(response, status: int, slug: str) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    body = response.get_json()
    assert body["type"].rsplit("/", 1)[-1] == slug
    assert body["status"] == status
    return body


def card_token(app, clock, member_no: str) -> str:
    with app.app_context():
        member = db.session.scalar(sa.select(Member).where(Member.member_no == member_no))
        return current_card_token(member, clock()).token


def count_members(app) -> int:
    with app.app_context():
        return db.session.scalar(sa.select(sa.func.count(Member.id)))


# --- POST /members -------------------------------------------------------------------------------

def test_enrol_returns_the_member_with_contact_details_masked(pos, factory, app):
    response = pos.post("/members", json={
        "name": "Wang Fang", "email": "Wang.Fang@Example.com", "phone": "+86 138 1234 0000",
        "birthday": "1990-05-04", "consents": {"email_marketing": True, "sms_marketing": False},
    })

    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["email"] == "w***@example.com"
    assert body["phone"] == "+86138****0000"
    assert body["name"] == "Wang Fang"
    assert body["status"] == "active"
    assert body["tier"] == {"code": "BRONZE", "name": "Bronze", "multiplier": "1.00"}
    assert body["points"] == {"balance": 0, "available": 0, "pending": 0, "expiring": []}
    assert body["enrolled_at"] == "2026-11-22T02:00:00Z"
    row = factory.member_row(body["member_no"])
    assert row.email == "wang.fang@example.com"
    assert row.phone == "+8613812340000"
    assert row.email_marketing is True and row.sms_marketing is False
    assert str(row.birthday) == "1990-05-04"
    # The full contact details never travel back over the API.
    assert "wang.fang" not in response.get_data(as_text=True)
    assert "13812340000" not in response.get_data(as_text=True)


def test_enrol_with_phone_only_normalises_it_to_e164(pos, factory):
    response = pos.post("/members", json={"name": "Li Lei", "phone": "13912345678"})

    assert response.status_code == 201, response.get_json()
    assert response.get_json()["email"] is None
    assert response.get_json()["phone"] == "+86139****5678"
    assert factory.member_row(response.get_json()["member_no"]).phone == "+8613912345678"


def test_enrol_records_the_enrolment_tier_and_home_store(pos, factory, app):
    response = pos.post("/members", json={"name": "Li Lei", "email": "li@example.com", "store_code": "S001"})

    assert response.status_code == 201
    with app.app_context():
        member = db.session.scalar(sa.select(Member).where(Member.member_no == response.get_json()["member_no"]))
        assert member.tier.code == "BRONZE"
        assert db.session.get(Store, member.home_store_id).code == "S001"
        changes = db.session.scalars(sa.select(TierChange).where(TierChange.member_id == member.id)).all()
        assert [change.reason for change in changes] == ["enrolment"]


def test_enrol_needs_an_email_or_a_phone(pos, app):
    body = assert_problem(pos.post("/members", json={"name": "Nobody"}), 422, "validation-error")

    assert "email" in body["errors"]
    assert count_members(app) == 0


def test_enrol_needs_a_name_that_is_not_blank(pos, app):
    for name in ("", "   "):
        body = assert_problem(pos.post("/members", json={"name": name, "email": "a@example.com"}),
                              422, "validation-error")
        assert "name" in body["errors"]
    assert count_members(app) == 0


def test_enrol_refuses_an_overlong_idempotency_key(pos, app):
    body = assert_problem(pos.post("/members", json={"name": "A", "email": "a@example.com"},
                                   headers={"Idempotency-Key": "k" * 256}), 422, "validation-error")

    assert "Idempotency-Key" in body["errors"]
    assert count_members(app) == 0
    assert pos.post("/members", json={"name": "A", "email": "a@example.com"},
                    headers={"Idempotency-Key": "k" * 255}).status_code == 201


def test_enrol_refuses_an_invalid_phone(pos, app):
    bad_phone = assert_problem(pos.post("/members", json={"name": "X", "phone": "+86 12"}), 422, "validation-error")

    assert "phone" in bad_phone["errors"]
    assert count_members(app) == 0


def test_a_key_cannot_enrol_members_into_another_store(pos, factory, app):
    """Issue 12, finding 11: a key is bound to one store, for enrolment too: another store's code, or
    a code no store has, is forbidden."""
    factory.store("S002")
    for store_code in ("S002", "NOPE"):
        assert_problem(pos.post("/members", json={"name": "X", "email": "x@example.com", "store_code": store_code}),
                       403, "forbidden")

    assert count_members(app) == 0


def test_enrol_refuses_a_taken_email_or_phone(pos, factory, app):
    factory.member(email="taken@example.com", phone="+8613812340000")

    by_email = pos.post("/members", json={"name": "Copy", "email": "TAKEN@example.com"})
    by_phone = pos.post("/members", json={"name": "Copy", "email": "new@example.com", "phone": "13812340000"})

    assert_problem(by_email, 409, "duplicate-member")
    assert_problem(by_phone, 409, "duplicate-member")
    assert count_members(app) == 1


def test_enrol_with_an_idempotency_key_is_replayed_and_a_changed_body_conflicts(pos, app):
    body = {"name": "Wang Fang", "email": "wang@example.com"}
    headers = {"Idempotency-Key": "enrol-1"}

    first = pos.post("/members", json=body, headers=headers)
    again = pos.post("/members", json=dict(reversed(body.items())), headers=headers)
    changed = pos.post("/members", json={**body, "name": "Wang Li"}, headers=headers)

    assert first.status_code == 201
    assert "Idempotent-Replayed" not in first.headers
    assert again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.get_json() == first.get_json()
    assert_problem(changed, 409, "idempotency-conflict")
    assert count_members(app) == 1


def test_idempotency_keys_belong_to_one_client(pos, factory, app):
    other = factory.api_client(name="web shop")
    headers = {"Idempotency-Key": "same-key"}

    mine = pos.post("/members", json={"name": "A", "email": "a@example.com"}, headers=headers)
    theirs = other.post("/members", json={"name": "B", "email": "b@example.com"}, headers=headers)

    assert mine.status_code == theirs.status_code == 201
    assert "Idempotent-Replayed" not in theirs.headers
    assert count_members(app) == 2


def test_enrol_without_a_key_enrols_twice_only_if_the_contact_differs(pos, app):
    assert pos.post("/members", json={"name": "A", "email": "a@example.com"}).status_code == 201
    assert_problem(pos.post("/members", json={"name": "A", "email": "a@example.com"}), 409, "duplicate-member")
    assert count_members(app) == 1


# --- GET /members/{member_no} ----------------------------------------------------------------------

def test_get_member_shows_points_and_tier(pos, factory):
    member_no = factory.member(name="Zhang Wei", email="zhang@example.com")
    assert pos.sale(member_no, 12800).status_code == 201

    response = pos.get(f"/members/{member_no}")

    assert response.status_code == 200
    body = response.get_json()
    assert body["member_no"] == member_no
    assert body["name"] == "Zhang Wei"
    assert body["email"] == "z***@example.com"
    assert body["points"] == {"balance": 128, "available": 128, "pending": 0,
                              "expiring": [{"points": 128, "expires_at": "2027-11-23T00:00:00Z"}]}


def test_get_unknown_member_is_not_found(pos):
    assert_problem(pos.get("/members/1000000018"), 404, "not-found")
    assert_problem(pos.get("/members/nonsense"), 404, "not-found")


# --- GET /members/lookup ---------------------------------------------------------------------------

def test_lookup_by_member_number_and_by_phone(pos, factory):
    member_no = factory.member(phone="+8613812340000")

    by_number = pos.get("/members/lookup", query_string={"code": member_no})
    by_phone = pos.get("/members/lookup", query_string={"code": "+8613812340000"})

    assert by_number.status_code == 200 and by_number.get_json()["member_no"] == member_no
    assert by_phone.status_code == 200 and by_phone.get_json()["member_no"] == member_no


def test_card_token_changes_every_minute(factory, app, clock):
    member_no = factory.member()
    first = card_token(app, clock, member_no)
    clock.advance(seconds=60)

    assert card_token(app, clock, member_no) != first


def test_card_token_is_accepted_for_120_seconds_after_it_was_issued(pos, factory, app, clock):
    member_no = factory.member()
    with app.app_context():
        member = db.session.scalar(sa.select(Member).where(Member.member_no == member_no))
        issued = current_card_token(member, clock())

    clock.set(issued.issued_at + timedelta(seconds=120))
    accepted = pos.get("/members/lookup", query_string={"code": issued.token})
    clock.set(issued.issued_at + timedelta(seconds=121))
    refused = pos.get("/members/lookup", query_string={"code": issued.token})

    assert issued.expires_at == issued.issued_at + timedelta(seconds=120)
    assert accepted.status_code == 200 and accepted.get_json()["member_no"] == member_no
    assert_problem(refused, 410, "card-token-expired")


def test_lookup_by_a_tampered_card_token_finds_nobody(pos, factory, app, clock):
    member_no = factory.member()
    victim_no = factory.member()
    token = card_token(app, clock, member_no)
    raw = bytearray(base64.b32decode(token[2:] + "=" * (-len(token[2:]) % 8)))
    # Point the token at another member, keeping the MAC it was issued with.
    victim_id = factory.member_row(victim_no).id
    raw[1:9] = victim_id.to_bytes(8, "big")
    forged = "LY" + base64.b32encode(bytes(raw)).decode().rstrip("=")
    raw[-1] ^= 0x01
    bad_mac = "LY" + base64.b32encode(bytes(raw)).decode().rstrip("=")

    assert_problem(pos.get("/members/lookup", query_string={"code": forged}), 404, "not-found")
    assert_problem(pos.get("/members/lookup", query_string={"code": bad_mac}), 404, "not-found")


def test_lookup_of_a_code_that_names_nobody(pos, factory):
    factory.member()

    for code in ("1000000018", "1000000017", "+8613900000000", "hello", "LYAAAA"):
        assert_problem(pos.get("/members/lookup", query_string={"code": code}), 404, "not-found")


def test_lookup_needs_a_code(pos):
    body = assert_problem(pos.get("/members/lookup"), 422, "validation-error")

    assert "code" in body["errors"]


# --- GET /members/{member_no}/points ---------------------------------------------------------------

def test_points_are_listed_newest_first_page_by_page(pos, factory):
    member_no = factory.member()
    for amount in (100, 200, 300, 400, 500):
        assert pos.sale(member_no, amount).status_code == 201

    first = pos.get(f"/members/{member_no}/points", query_string={"limit": 2})
    second = pos.get(f"/members/{member_no}/points",
                     query_string={"limit": 2, "cursor": first.get_json()["next_cursor"]})
    third = pos.get(f"/members/{member_no}/points",
                    query_string={"limit": 2, "cursor": second.get_json()["next_cursor"]})

    pages = [first.get_json(), second.get_json(), third.get_json()]
    assert [[entry["points"] for entry in page["data"]] for page in pages] == [[5, 4], [3, 2], [1]]
    assert pages[0]["next_cursor"] and pages[1]["next_cursor"]
    assert pages[2]["next_cursor"] is None
    entry = pages[0]["data"][0]
    assert entry["kind"] == "earn"
    assert entry["occurred_at"] == "2026-11-22T02:00:00Z"


def test_points_page_that_ends_the_list_has_no_cursor(pos, factory):
    member_no = factory.member()
    for amount in (1000, 2000):
        assert pos.sale(member_no, amount).status_code == 201

    exactly_full = pos.get(f"/members/{member_no}/points", query_string={"limit": 2}).get_json()
    default = pos.get(f"/members/{member_no}/points").get_json()

    assert [entry["points"] for entry in exactly_full["data"]] == [20, 10]
    assert exactly_full["next_cursor"] is None
    assert default == exactly_full


def test_points_of_a_member_without_entries(pos, factory):
    member_no = factory.member()

    assert pos.get(f"/members/{member_no}/points").get_json() == {"data": [], "next_cursor": None}


def test_points_refuse_a_cursor_they_did_not_issue_and_a_bad_limit(pos, factory):
    member_no = factory.member()

    for query in ({"cursor": "not-a-cursor"}, {"cursor": base64.urlsafe_b64encode(b"id:x").decode()}):
        body = assert_problem(pos.get(f"/members/{member_no}/points", query_string=query), 422, "validation-error")
        assert "cursor" in body["errors"]
    for limit in (0, 201, "many"):
        body = assert_problem(pos.get(f"/members/{member_no}/points", query_string={"limit": limit}),
                              422, "validation-error")
        assert "limit" in body["errors"]


def test_points_of_an_unknown_member(pos):
    assert_problem(pos.get("/members/1000000018/points"), 404, "not-found")


# --- GET /members/{member_no}/coupons --------------------------------------------------------------

def test_member_without_coupons_has_an_empty_page(pos, factory):
    member_no = factory.member()

    response = pos.get(f"/members/{member_no}/coupons")

    assert response.status_code == 200
    assert response.get_json() == {"data": [], "next_cursor": None}
    assert_problem(pos.get("/members/1000000018/coupons"), 404, "not-found")
