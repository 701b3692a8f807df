"""Every form refuses a POST without this session's CSRF token, and the refusal changes nothing."""

import pytest
import sqlalchemy as sa

from loyalty.extensions import db
from loyalty.members.models import ConsentEvent, Member
from tests.support.portal import DEFAULT_PASSWORD, csrf_token


def _member(app, member_no):
    with app.app_context():
        return db.session.scalar(sa.select(Member).where(Member.member_no == member_no))


def test_signup_without_token_creates_nobody(app, client):
    response = client.post("/portal/signup", data={"name": "Eve", "email": "eve@example.com",
                                                   "password": DEFAULT_PASSWORD})
    assert response.status_code == 400
    assert "csrf-error" in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Member)) == 0


@pytest.mark.parametrize("path", ["/portal/login", "/staff/login", "/portal/password/forgot"])
def test_sign_in_forms_refuse_a_missing_or_forged_token(client, member, path):
    data = {"email": member.email, "password": member.password}
    assert client.post(path, data=data).status_code == 400
    assert client.post(path, data={**data, "csrf_token": "forged"}).status_code == 400


def test_a_token_from_another_session_is_refused(app, member):
    stranger = app.test_client()
    foreign_token = csrf_token(stranger, "/portal/login")
    response = member.client.post("/portal/consents", data={"csrf_token": foreign_token, "email_marketing": "y"})
    assert response.status_code == 400
    assert _member(app, member.member_no).email_marketing is False


@pytest.mark.parametrize("path, data", [
    ("/portal/consents", {"email_marketing": "y", "sms_marketing": "y"}),
    ("/portal/profile", {"name": "Mallory", "email": "mallory@example.com"}),
    ("/portal/password", {"current_password": DEFAULT_PASSWORD, "password": "a new password"}),
    ("/portal/erase", {"password": DEFAULT_PASSWORD, "confirm": "y"}),
    ("/portal/logout", {}),
])
def test_member_forms_refuse_a_missing_token(app, member, path, data):
    before = _member(app, member.member_no)
    response = member.client.post(path, data=data)
    assert response.status_code == 400
    after = _member(app, member.member_no)
    assert (after.status, after.name, after.email, after.password_hash, after.email_marketing) == (
        before.status, before.name, before.email, before.password_hash, before.email_marketing)
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(ConsentEvent)) == 0
    # Still signed in: even sign-out needs the token, so another site cannot sign a member out.
    assert member.client.get("/portal/").status_code == 200


def test_staff_sign_out_needs_the_token(app, factory):
    from tests.support.portal import staff_log_in

    factory.staff("admin@example.com", "admin")
    client = app.test_client()
    staff_log_in(client, "admin@example.com")
    assert client.post("/staff/logout").status_code == 400
    assert "signed-in-as" in client.get("/staff/login").get_data(as_text=True)
