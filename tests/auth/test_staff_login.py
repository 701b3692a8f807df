"""Staff sign-in and sign-out at /staff/login (the console's own routes are tested with the console)."""

import pytest

from tests.support.portal import staff_log_in, submit


@pytest.fixture
def cashier(factory):
    factory.staff("cashier@example.com", "cashier")
    return "cashier@example.com"


def test_staff_sign_in_and_out(app, cashier):
    client = app.test_client()
    page = client.get("/staff/login")
    assert page.status_code == 200
    assert 'name="csrf_token"' in page.get_data(as_text=True)

    response = staff_log_in(client, "Cashier@Example.com")
    assert response.status_code == 302
    assert response.location in ("/staff/", "/staff/scan")
    assert "You are signed in as cashier@example.com." in client.get("/staff/login").get_data(as_text=True)

    out = submit(client, "/staff/logout", {}, form_page="/staff/login")
    assert out.status_code == 302 and out.location == "/staff/login"
    assert "signed-in-as" not in client.get("/staff/login").get_data(as_text=True)


def test_wrong_and_unknown_accounts_get_the_same_answer(app, cashier):
    wrong = staff_log_in(app.test_client(), cashier, "not the password")
    unknown = staff_log_in(app.test_client(), "nobody@example.com", "not the password")
    assert wrong.status_code == unknown.status_code == 200
    assert "Wrong email or password." in wrong.get_data(as_text=True)
    assert "Wrong email or password." in unknown.get_data(as_text=True)


def test_disabled_staff_cannot_sign_in(app, factory):
    from loyalty.auth.models import StaffUser
    from loyalty.extensions import db

    staff_id = factory.staff("gone@example.com", "admin")
    with app.app_context():
        db.session.get(StaffUser, staff_id).active = False
        db.session.commit()
    assert staff_log_in(app.test_client(), "gone@example.com").status_code == 200


def test_staff_sign_in_goes_back_to_the_page_asked_for_on_this_site_only(app, cashier):
    asked = staff_log_in(app.test_client(), cashier, query_string={"next": "/staff/enrol"})
    assert asked.location == "/staff/enrol"
    off_site = staff_log_in(app.test_client(), cashier, query_string={"next": "https://evil.example/"})
    assert off_site.location in ("/staff/", "/staff/scan")


def test_a_member_session_is_not_a_staff_session(app, cashier):
    from tests.support.portal import new_portal_member

    member = new_portal_member(app)
    page = member.client.get("/staff/login").get_data(as_text=True)
    assert "signed-in-as" not in page
    assert member.client.get("/staff/").location.startswith("/staff/login")


def test_a_marketer_lands_in_the_marketing_console(app, factory):
    factory.staff("marketer@example.com", "marketer")
    client = app.test_client()
    response = staff_log_in(client, "marketer@example.com")
    assert response.status_code == 302 and response.location == "/marketing/"
    assert client.get(response.location).status_code == 200
