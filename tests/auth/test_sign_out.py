"""Signing out ends the session on the server's side: a copy of the session cookie taken before (as a
thief or a shared computer's browser would keep it) opens nothing afterwards, on the portal, the staff
console and the admin console. Disabling a staff account does the same, and re-enabling it later does
not bring its old sessions back."""

import pytest

from loyalty.auth.models import StaffUser
from loyalty.auth.services import set_staff_active
from loyalty.extensions import db
from tests.support.portal import new_portal_member, staff_log_in, submit


def _copy_of_session(app, client):
    """A second browser holding the same session cookie."""
    copy = app.test_client()
    copy.set_cookie(app.config["SESSION_COOKIE_NAME"], client.get_cookie(app.config["SESSION_COOKIE_NAME"]).value)
    return copy


def test_a_portal_cookie_copied_before_sign_out_opens_nothing_after(app):
    member = new_portal_member(app)
    copy = _copy_of_session(app, member.client)
    assert copy.get("/portal/").status_code == 200

    submit(member.client, "/portal/logout", {}, form_page="/portal/")
    replayed = copy.get("/portal/")
    assert replayed.status_code == 302 and replayed.location.startswith("/portal/login")


@pytest.mark.parametrize(("role", "page", "sign_in"), [
    ("cashier", "/staff/enrol", "/staff/login"), ("admin", "/admin/", "/staff/login")])
def test_a_staff_cookie_copied_before_sign_out_opens_nothing_after(app, factory, role, page, sign_in):
    factory.staff(f"{role}@example.com", role)
    client = app.test_client()
    assert staff_log_in(client, f"{role}@example.com").status_code == 302
    copy = _copy_of_session(app, client)
    assert copy.get(page).status_code == 200

    submit(client, "/staff/logout", {}, form_page="/staff/login")
    replayed = copy.get(page)
    assert replayed.status_code == 302 and replayed.location.startswith(sign_in)


def test_re_enabling_a_staff_account_does_not_revive_its_old_sessions(app, factory):
    staff_id = factory.staff("cashier@example.com", "cashier")
    client = app.test_client()
    assert staff_log_in(client, "cashier@example.com").status_code == 302
    with app.app_context():
        for active in (False, True):
            set_staff_active(db.session, db.session.get(StaffUser, staff_id), active, actor=None)
            db.session.commit()
    replayed = client.get("/staff/enrol")
    assert replayed.status_code == 302 and replayed.location.startswith("/staff/login")
