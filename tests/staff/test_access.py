"""Every console route, for every kind of visitor: which roles get in, and what everyone else gets."""

import pytest

MEMBER = "{member_no}"

# (method, path, form data, roles allowed). Form data is valid, so a refusal is about who asks.
ROUTES = [
    ("GET", "/staff/", None, {"cashier", "admin"}),
    ("POST", "/staff/scan", {"code": MEMBER}, {"cashier", "admin"}),
    ("GET", f"/staff/members/{MEMBER}", None, {"cashier", "admin"}),
    ("GET", f"/staff/members/{MEMBER}/card", None, {"cashier", "admin"}),
    ("POST", f"/staff/members/{MEMBER}/notes", {"body": "Prefers SMS"}, {"cashier", "admin"}),
    ("GET", f"/staff/members/{MEMBER}/sale", None, {"cashier", "admin"}),
    ("POST", f"/staff/members/{MEMBER}/sale",
     {"external_id": "console-S001-" + "a" * 32, "amount": "10.00", "points_redeemed": "0"}, {"cashier", "admin"}),
    ("POST", f"/staff/members/{MEMBER}/adjust", {"points": "5", "reason": "goodwill"}, {"admin"}),
    ("GET", f"/staff/members/{MEMBER}/audit", None, {"admin"}),
    ("GET", "/staff/enrol", None, {"cashier", "admin"}),
    ("POST", "/staff/enrol", {"name": "Han Meimei", "phone": "13900139000"}, {"cashier", "admin"}),
]
ROUTE_IDS = [f"{method} {path}" for method, path, _, _ in ROUTES]


def call(console, method, path, data, member_no):
    path = path.replace(MEMBER, member_no)
    if method == "GET":
        return console.get(path)
    return console.post(path, {key: value.replace(MEMBER, member_no) for key, value in data.items()})


@pytest.mark.parametrize("role", ["cashier", "marketer", "admin"])
@pytest.mark.parametrize(("method", "path", "data", "allowed"), ROUTES, ids=ROUTE_IDS)
def test_staff_roles(console, staff, member_no, role, method, path, data, allowed):
    console.sign_in_staff(getattr(staff, role))
    response = call(console, method, path, data, member_no)
    if role in allowed:
        assert response.status_code in (200, 302), response.get_data(as_text=True)[:500]
        if response.status_code == 302:
            assert response.location.startswith("/staff/")
    else:
        assert response.status_code == 403


@pytest.mark.parametrize(("method", "path", "data", "allowed"), ROUTES, ids=ROUTE_IDS)
def test_anonymous_is_sent_to_staff_login(console, member_no, method, path, data, allowed):
    console.sign_out()
    response = call(console, method, path, data, member_no)
    assert response.status_code == 302
    assert response.location.startswith("/staff/login")


@pytest.mark.parametrize(("method", "path", "data", "allowed"), ROUTES, ids=ROUTE_IDS)
def test_member_session_never_reaches_the_console(console, factory, member_no, method, path, data, allowed):
    console.sign_in_member(factory.member_row(member_no).id)
    response = call(console, method, path, data, member_no)
    assert response.status_code == 302
    assert response.location.startswith("/staff/login")


def test_refused_posts_change_nothing(console, staff, member_no, database):
    console.sign_in_staff(staff.marketer)
    for method, path, data, _allowed in ROUTES:
        if method == "POST":
            call(console, method, path, data, member_no)
    console.sign_out()
    for method, path, data, _allowed in ROUTES:
        if method == "POST":
            call(console, method, path, data, member_no)
    assert database.sales() == []
    assert database.notes() == []
    assert database.audit() == []
    assert database.member(member_no).points_balance == 0


def test_inactive_staff_are_signed_out(console, staff, app):
    from loyalty.auth.models import StaffUser
    from loyalty.extensions import db

    with app.app_context():
        db.session.get(StaffUser, staff.cashier).active = False
        db.session.commit()
    console.sign_in_staff(staff.cashier)
    response = console.get("/staff/")
    assert response.status_code == 302
    assert response.location.startswith("/staff/login")


def test_unknown_and_erased_members_are_not_found(console, staff, member_no, app):
    from loyalty.extensions import db
    from loyalty.members.models import Member

    console.sign_in_staff(staff.admin)
    assert console.get("/staff/members/1000000000").status_code == 404
    with app.app_context():
        member = db.session.query(Member).filter_by(member_no=member_no).one()
        member.status = "erased"
        db.session.commit()
    for suffix in ("", "/card", "/sale", "/audit"):
        assert console.get(f"/staff/members/{member_no}{suffix}").status_code == 404


def test_sign_in_through_the_login_form_returns_to_the_page_asked_for(app, staff, member_no):
    from tests.staff.conftest import STAFF_PASSWORD, csrf_from

    http = app.test_client()
    asked = http.get(f"/staff/members/{member_no}")
    assert asked.status_code == 302 and asked.location.startswith("/staff/login")
    login_page = http.get(asked.location)
    signed_in = http.post(asked.location, data={"email": "cashier@example.com", "password": STAFF_PASSWORD,
                                                 "csrf_token": csrf_from(login_page.get_data(as_text=True))})
    assert signed_in.status_code == 302
    assert signed_in.location.startswith(f"/staff/members/{member_no}")
    page = http.get(signed_in.location)
    assert page.status_code == 200 and member_no in page.get_data(as_text=True)
    # Signing out (a CSRF-protected POST from the console's bar) closes the console again.
    signed_out = http.post("/staff/logout", data={"csrf_token": csrf_from(page.get_data(as_text=True))})
    assert signed_out.status_code == 302
    assert http.get("/staff/").location.startswith("/staff/login")


@pytest.mark.parametrize("path", ["/staff/", "/staff/members/{member_no}", "/staff/members/{member_no}/sale",
                                  "/staff/members/{member_no}/card", "/staff/members/{member_no}/audit",
                                  "/staff/enrol"])
def test_console_pages_render_in_chinese(console, staff, member_no, path):
    console.sign_in_staff(staff.admin)
    response = console.get(path.format(member_no=member_no) + "?lang=zh")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert '<html lang="zh-Hans">' in html
    # The console's own words come from the catalogue, not English.
    for english in ("Scan a member", "Enrol a member", "Sign out"):
        assert english not in html
