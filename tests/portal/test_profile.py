"""Profile, consents (each change recorded with time and channel) and password change."""

from datetime import date, timedelta

import sqlalchemy as sa

from loyalty.extensions import db
from loyalty.members.models import ConsentEvent, Member
from tests.support.portal import log_in, submit


def _member(app, member_id):
    with app.app_context():
        member = db.session.get(Member, member_id)
        db.session.expunge(member)
        return member


def _events(app, member_id):
    with app.app_context():
        return [(event.consent, event.granted, event.channel, event.created_at) for event in db.session.scalars(
            sa.select(ConsentEvent).where(ConsentEvent.member_id == member_id).order_by(ConsentEvent.id))]


def test_profile_changes_are_saved(app, member):
    response = submit(member.client, "/portal/profile", {
        "name": "Wang Fang (Ms)", "email": "fang@example.com", "phone": "13700137000", "birthday": "1990-05-01"})
    assert response.status_code == 302
    row = _member(app, member.member_id)
    assert (row.name, row.email, row.phone, row.birthday) == (
        "Wang Fang (Ms)", "fang@example.com", "+8613700137000", date(1990, 5, 1))
    assert "Your details are saved." in member.client.get("/portal/profile").get_data(as_text=True)


def test_profile_refuses_somebody_elses_email_or_phone(app, member, other_member):
    for data in ({"email": other_member.email}, {"email": member.email, "phone": other_member.phone}):
        response = submit(member.client, "/portal/profile", {"name": "Wang Fang", **data})
        assert response.status_code == 200
        assert "already exists" in response.get_data(as_text=True)
    assert _member(app, member.member_id).email == member.email


def test_each_consent_change_is_recorded_with_time_and_channel(app, member, clock):
    assert submit(member.client, "/portal/consents", {"email_marketing": "y"},
                  form_page="/portal/profile").status_code == 302
    clock.advance(days=3)
    submit(member.client, "/portal/consents", {"email_marketing": "y"}, form_page="/portal/profile")
    clock.advance(days=2)
    submit(member.client, "/portal/consents", {"sms_marketing": "y"}, form_page="/portal/profile")

    start = clock() - timedelta(days=5)
    assert _events(app, member.member_id) == [
        ("email_marketing", True, "portal", start),
        # The unchanged second submission recorded nothing.
        ("email_marketing", False, "portal", start + timedelta(days=5)),
        ("sms_marketing", True, "portal", start + timedelta(days=5)),
    ]
    row = _member(app, member.member_id)
    assert (row.email_marketing, row.sms_marketing) == (False, True)
    page = member.client.get("/portal/profile").get_data(as_text=True)
    assert 'id="consent-history"' in page and "online" in page


def test_password_change_needs_the_current_password(app, member):
    wrong = submit(member.client, "/portal/password", {"current_password": "guess", "password": "brand new pass"},
                   form_page="/portal/profile")
    assert wrong.status_code == 422
    assert "Wrong password." in wrong.get_data(as_text=True)

    right = submit(member.client, "/portal/password", {"current_password": member.password,
                                                      "password": "brand new pass"}, form_page="/portal/profile")
    assert right.status_code == 302
    assert log_in(app.test_client(), member.email, member.password).status_code == 200
    assert log_in(app.test_client(), member.email, "brand new pass").status_code == 302


def test_a_new_password_ends_the_other_sessions_but_not_this_one(app, member):
    elsewhere = app.test_client()
    assert log_in(elsewhere, member.email, member.password).status_code == 302
    assert elsewhere.get("/portal/").status_code == 200

    changed = submit(member.client, "/portal/password", {"current_password": member.password,
                                                        "password": "brand new pass"}, form_page="/portal/profile")

    assert changed.status_code == 302
    assert member.client.get("/portal/").status_code == 200
    assert elsewhere.get("/portal/").status_code == 302
