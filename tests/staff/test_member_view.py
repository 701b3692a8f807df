"""The member's 360° view, staff notes, and the admin-only points adjustment."""

import pytest
import sqlalchemy as sa

from loyalty.points.models import PointsEntry


@pytest.fixture
def cashier(console, staff):
    return console.sign_in_staff(staff.cashier)


@pytest.fixture
def admin(console, staff):
    return console.sign_in_staff(staff.admin)


def test_member_view_shows_points_tier_sales_and_refunds(cashier, member_no, factory):
    pos = factory.api_client()
    assert pos.sale(member_no, 12800, external_id="S-1").status_code == 201
    assert pos.post("/transactions/S-1/refunds", json={"external_id": "R-1", "amount": 6400}).status_code == 201
    html = cashier.get(f"/staff/members/{member_no}").get_data(as_text=True)
    assert "Li Lei" in html and member_no in html and "Bronze" in html
    assert '<dd id="balance">64</dd>' in html
    assert '<dd id="available">64</dd>' in html
    assert '<dd id="pending">0</dd>' in html
    assert "S-1" in html and "R-1" in html
    assert "¥128.00" in html and "−¥64.00" in html
    assert "Next tier: Silver" in html


def test_points_expiring_soon_are_listed(cashier, member_no, factory, clock):
    pos = factory.api_client()
    assert pos.sale(member_no, 50000, occurred_at="2026-01-10T10:00:00+08:00").status_code == 201
    html = cashier.get(f"/staff/members/{member_no}").get_data(as_text=True)
    assert "500 points expire on 11 Jan 2027" in html
    clock.advance(days=-300)
    html = cashier.get(f"/staff/members/{member_no}").get_data(as_text=True)
    assert "No points expire in the next 90 days." in html


def test_cashier_sees_contacts_masked_admin_in_full(console, staff, member_no):
    cashier_html = console.sign_in_staff(staff.cashier).get(f"/staff/members/{member_no}").get_data(as_text=True)
    assert "l***@example.com" in cashier_html and "+86138****8000" in cashier_html
    assert "li.lei@example.com" not in cashier_html and "+8613800138000" not in cashier_html
    admin_html = console.sign_in_staff(staff.admin).get(f"/staff/members/{member_no}").get_data(as_text=True)
    assert "li.lei@example.com" in admin_html and "+8613800138000" in admin_html


def test_scores_not_computed_yet_show_a_dash(cashier, member_no):
    html = cashier.get(f"/staff/members/{member_no}").get_data(as_text=True)
    assert '<dd id="rfm">—</dd>' in html and '<dd id="churn">—</dd>' in html


def test_latest_rfm_segment_and_churn_risk_are_shown(cashier, member_no, app):
    from loyalty.extensions import db
    from loyalty.members.models import Member

    with app.app_context():
        member = db.session.scalar(sa.select(Member).where(Member.member_no == member_no))
        member.rfm_segment, member.rfm_code = "At Risk", "254"
        member.churn_risk_bp, member.churn_band = 7250, "high"
        member.churn_explanation = "r210 f2 g30"
        db.session.commit()
    html = cashier.get(f"/staff/members/{member_no}").get_data(as_text=True)
    rfm = html.split('<dd id="rfm">')[1].split("</dd>")[0]
    churn = html.split('<dd id="churn">')[1].split("</dd>")[0]
    assert "At Risk" in rfm and "254" in rfm
    assert "high (73%)" in churn and "no purchase in 210 days; bought 2 times; usual gap 30 days" in churn


def test_usable_coupons_are_listed(cashier, member_no, factory):
    html = cashier.get(f"/staff/members/{member_no}").get_data(as_text=True)
    assert "No coupons to use right now." in html
    manage = factory.api_client(scope="manage", name="marketing")
    offer = manage.post("/offers", json={"name": "10 off shoes", "kind": "amount_off", "value": 1000,
                                         "valid_days": 30})
    assert offer.status_code == 201, offer.get_json()
    issued = manage.post(f"/offers/{offer.get_json()['id']}/coupons", json={"member": member_no})
    assert issued.status_code == 201, issued.get_json()
    code = issued.get_json()["code"]
    html = cashier.get(f"/staff/members/{member_no}").get_data(as_text=True)
    coupons = html.split('id="coupon-list"')[1].split("</ul>")[0]
    assert code in coupons and "10 off shoes" in coupons and "Use by 22 Dec 2026" in coupons
    assert manage.post(f"/coupons/{code}/void").status_code == 200
    assert "No coupons to use right now." in cashier.get(f"/staff/members/{member_no}").get_data(as_text=True)


def test_only_admins_see_the_adjustment_form(console, staff, member_no):
    cashier_html = console.sign_in_staff(staff.cashier).get(f"/staff/members/{member_no}").get_data(as_text=True)
    assert "/adjust" not in cashier_html and "/audit" not in cashier_html
    admin_html = console.sign_in_staff(staff.admin).get(f"/staff/members/{member_no}").get_data(as_text=True)
    assert f"/staff/members/{member_no}/adjust" in admin_html and f"/staff/members/{member_no}/audit" in admin_html


def test_staff_note_is_saved_shown_and_audited(cashier, member_no, database, staff):
    cashier.get(f"/staff/members/{member_no}")
    response = cashier.post(f"/staff/members/{member_no}/notes", {"body": "  Prefers SMS <b>only</b> "})
    assert response.status_code == 302
    [note] = database.notes()
    assert (note.body, note.staff_user_id) == ("Prefers SMS <b>only</b>", staff.cashier)
    html = cashier.get(response.location).get_data(as_text=True)
    assert "Prefers SMS &lt;b&gt;only&lt;/b&gt;" in html and "cashier@example.com" in html
    [event] = database.audit("note.add")
    assert (event.staff_user_id, event.member_id) == (staff.cashier, database.member(member_no).id)
    assert event.after == {"note_id": note.id, "chars": len("Prefers SMS <b>only</b>")}


def test_empty_note_is_refused(cashier, member_no, database):
    cashier.get(f"/staff/members/{member_no}")
    response = cashier.post(f"/staff/members/{member_no}/notes", {"body": "   "})
    assert response.status_code == 302
    assert database.notes() == [] and database.audit() == []
    assert "Write a note first" in cashier.get(response.location).get_data(as_text=True)


def test_admin_adjusts_points_with_a_reason_audited(admin, member_no, database, staff):
    admin.get(f"/staff/members/{member_no}")
    response = admin.post(f"/staff/members/{member_no}/adjust", {"points": "250", "reason": "missing receipt"})
    assert response.status_code == 302
    member = database.member(member_no)
    assert member.points_balance == 250
    [entry] = database.scalars(sa.select(PointsEntry))
    assert (entry.kind, entry.points, entry.reason, entry.staff_user_id) == \
        ("adjust", 250, "missing receipt", staff.admin)
    [event] = database.audit("points.adjust")
    assert event.staff_user_id == staff.admin
    assert event.before == {"points_balance": 0}
    assert event.after == {"points_balance": 250, "points": 250, "reason": "missing receipt"}
    assert "Points adjusted by +250." in admin.get(response.location).get_data(as_text=True)


def test_adjustment_needs_a_reason_and_may_not_overdraw(admin, member_no, database):
    admin.get(f"/staff/members/{member_no}")
    assert admin.post(f"/staff/members/{member_no}/adjust", {"points": "10", "reason": ""}).status_code == 302
    assert admin.post(f"/staff/members/{member_no}/adjust", {"points": "0", "reason": "x"}).status_code == 302
    response = admin.post(f"/staff/members/{member_no}/adjust", {"points": "-10", "reason": "typo"})
    assert response.status_code == 302
    assert database.member(member_no).points_balance == 0
    assert database.audit() == []


def test_cashier_cannot_adjust(cashier, member_no, database):
    cashier.get(f"/staff/members/{member_no}")
    response = cashier.post(f"/staff/members/{member_no}/adjust", {"points": "1000", "reason": "friend"})
    assert response.status_code == 403
    assert database.member(member_no).points_balance == 0
    assert database.audit() == []
