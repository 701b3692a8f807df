"""Data export (everything held about the member) and erasure (personal data gone from every table,
the ledger kept and still balancing, card, number and sign-in dead)."""

import json

import sqlalchemy as sa

from loyalty.auth.models import AuditEvent
from loyalty.db import Base
from loyalty.extensions import db
from loyalty.members.models import Member
from loyalty.points.models import PointsEntry
from loyalty.points.services import verify_ledger
from loyalty.sales.models import Transaction
from tests.support.portal import log_in, new_portal_member, sign_up, submit

NAME, EMAIL, PHONE = "王芳 Wang Fang", "wang.fang@example.com", "+8613800138000"


def _sales_and_refund(member_no, pos):
    lines = [{"sku": "TEA-1", "category": "tea", "quantity": 2, "unit_price": 6400, "amount": 12800}]
    assert pos.sale(member_no, 12800, external_id="S-1", lines=lines).status_code == 201
    assert pos.sale(member_no, 2000, subtotal=2500, points_redeemed=50, external_id="S-2").status_code == 201
    assert pos.post("/transactions/S-1/refunds", json={"external_id": "R-1", "amount": 6400}).status_code == 201


def test_export_holds_profile_consents_sales_and_ledger(app, member, pos):
    submit(member.client, "/portal/consents", {"sms_marketing": "y"}, form_page="/portal/profile")
    _sales_and_refund(member.member_no, pos)

    response = member.client.get("/portal/export.json")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    assert response.headers["Content-Disposition"] == f'attachment; filename="loyalty-{member.member_no}-20261122.json"'
    data = response.get_json()
    assert data["profile"]["member_no"] == member.member_no
    assert (data["profile"]["name"], data["profile"]["email"]) == (member.name, member.email)
    assert data["consents"] == {"email_marketing": False, "sms_marketing": True}
    assert [(e["consent"], e["granted"], e["channel"]) for e in data["consent_events"]] == [
        ("sms_marketing", True, "portal")]

    sales = {sale["external_id"]: sale for sale in data["sales"]}
    assert set(sales) == {"S-1", "S-2"}
    assert sales["S-1"]["lines"] == [{"line_no": 1, "sku": "TEA-1", "category": "tea", "quantity": 2,
                                      "unit_price": 6400, "amount": 12800}]
    assert [refund["external_id"] for refund in sales["S-1"]["refunds"]] == ["R-1"]
    assert sales["S-1"]["points_earned"] == 128 and sales["S-2"]["points_redeemed"] == 50

    kinds = sorted(entry["kind"] for entry in data["ledger_entries"])
    assert kinds == ["earn", "earn", "redeem", "reverse"]
    assert sum(entry["points"] for entry in data["ledger_entries"]) == data["profile"]["points_balance"]
    assert len(data["points_lots"]) == 2
    assert data["tier_changes"][0]["to"] == "BRONZE"
    assert "audit_events" in data["other"]
    assert data["exported_at"] == "2026-11-22T02:00:00Z"


def _enrol_through_the_api(pos) -> str:
    """Enrolled by a POS with an Idempotency-Key, so its stored answer holds the member's name."""
    response = pos.post("/members", json={"name": NAME, "email": EMAIL, "phone": PHONE, "birthday": "1990-05-01",
                                          "consents": {"email_marketing": True, "sms_marketing": False}},
                        headers={"Idempotency-Key": "enrol-1"})
    assert response.status_code == 201, response.get_json()
    return response.get_json()["member_no"]


def _claim_account(app, client, smtp_free_password="claimed password"):
    """Give the counter-enrolled member a password directly (the reset flow is tested elsewhere)."""
    from loyalty.members.portal_services import set_password

    with app.app_context():
        member = db.session.scalar(sa.select(Member).where(Member.email == EMAIL))
        set_password(member, smtp_free_password)
        db.session.commit()
    assert log_in(client, EMAIL, smtp_free_password).status_code == 302


def _every_text_value(app):
    """Every string held in any column of any table (JSON decoded, so non-ASCII is compared as text)."""
    with app.app_context():
        for table in Base.metadata.sorted_tables:
            columns = [c for c in table.c if isinstance(c.type, sa.String | sa.JSON | sa.Text)]
            if not columns:
                continue
            for row in db.session.execute(sa.select(*columns)):
                for column, value in zip(columns, row, strict=True):
                    if value is None:
                        continue
                    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
                    yield table.name, column.name, text


def test_erasure_removes_personal_data_everywhere_and_keeps_the_books(app, client, pos):
    member_no = _enrol_through_the_api(pos)
    _claim_account(app, client)
    _sales_and_refund(member_no, pos)
    token = client.get("/portal/card.json").get_json()["token"]
    assert pos.get("/members/lookup", query_string={"code": token}).status_code == 200
    with app.app_context():
        member_id = db.session.scalar(sa.select(Member.id).where(Member.member_no == member_no))
        db.session.add(AuditEvent(member_id=member_id, action="note.add", after={"body": f"{NAME} likes tea",
                                                                                  "email": EMAIL}))
        db.session.commit()
    personal = (NAME, "王芳", "Wang Fang", EMAIL, PHONE, "13800138000", "1990-05-01")
    before = [text for *_, text in _every_text_value(app)]
    assert any(value in text for text in before for value in personal)
    # The POS's stored answers hold the API's masked forms too.
    assert any("w***@example.com" in text for text in before)
    masked_phone = pos.get(f"/members/{member_no}").get_json()["phone"]
    other_client = app.test_client()
    assert log_in(other_client, EMAIL, "claimed password").status_code == 302

    refused = submit(client, "/portal/erase", {"password": "wrong password", "confirm": "y"})
    assert refused.status_code == 200 and "Wrong password." in refused.get_data(as_text=True)
    erased = submit(client, "/portal/erase", {"password": "claimed password", "confirm": "y"})
    assert erased.status_code == 302 and erased.location == "/portal/login"

    # Nothing personal left in any column of any table.
    for table, column, text in _every_text_value(app):
        for value in personal:
            assert value not in text, (table, column, value)
        assert "w***@example.com" not in text and masked_phone not in text, (table, column)

    with app.app_context():
        member = db.session.get(Member, member_id)
        assert member.status == "erased" and member.erased_at is not None
        assert (member.name, member.email, member.phone, member.birthday) == (None, None, None, None)
        assert (member.password_hash, member.card_secret) == (None, None)
        assert (member.email_marketing, member.sms_marketing) == (False, False)
        # The ledger and the transactions are still there, tied to the member row that names nobody.
        entries = db.session.scalars(sa.select(PointsEntry.points).where(PointsEntry.member_id == member_id)).all()
        assert len(entries) == 4 and sum(entries) == member.points_balance
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Transaction)
                                 .where(Transaction.member_id == member_id)) == 3
        report = verify_ledger(db.session)
        assert report.ok, report.problems

    # Sign-in, card, number and phone are dead; sessions opened before are gone too.
    assert log_in(app.test_client(), EMAIL, "claimed password").status_code == 200
    assert other_client.get("/portal/").status_code == 302
    for code in (token, member_no, PHONE):
        assert pos.get("/members/lookup", query_string={"code": code}).status_code == 404, code
    assert pos.get(f"/members/{member_no}").status_code == 404
    assert pos.sale(member_no, 1000, external_id="S-AFTER").status_code == 422
    # The transactions stay, pseudonymous: a replayed sale still answers, without the person.
    replay = pos.get("/transactions/S-1")
    assert replay.status_code == 200
    assert NAME not in replay.get_data(as_text=True)


def test_after_erasure_the_email_is_free_for_a_new_account(app, member):
    submit(member.client, "/portal/erase", {"password": member.password, "confirm": "y"})
    fresh = app.test_client()
    assert sign_up(fresh, name="Someone New", email=member.email).status_code == 302
    export = fresh.get("/portal/export.json").get_json()
    assert export["profile"]["member_no"] != member.member_no
    assert export["sales"] == []


def test_erasure_needs_the_confirmation_box(app, member):
    response = submit(member.client, "/portal/erase", {"password": member.password})
    assert response.status_code == 200
    assert "Tick the box to confirm." in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.get(Member, member.member_id).status == "active"


def test_erasure_keeps_other_members_untouched(app, member, pos):
    other = new_portal_member(app, name="Li Lei", email="li.lei@example.com")
    assert pos.sale(other.member_no, 12800).status_code == 201
    submit(member.client, "/portal/erase", {"password": member.password, "confirm": "y"})
    assert pos.get(f"/members/{other.member_no}").get_json()["name"] == "Li Lei"
    assert other.client.get("/portal/").status_code == 200
