"""Every console form is refused without its CSRF token (or with a stale one), and changes nothing."""

import pytest

from tests.staff.test_access import MEMBER, ROUTES

POSTS = [(path, data) for method, path, data, _ in ROUTES if method == "POST"]


@pytest.mark.parametrize(("path", "data"), POSTS, ids=[path for path, _ in POSTS])
@pytest.mark.parametrize("token", [None, "forged-token"])
def test_post_without_a_valid_token_is_refused(console, staff, member_no, database, path, data, token):
    console.sign_in_staff(staff.admin)
    console.get("/staff/")
    form = {key: value.replace(MEMBER, member_no) for key, value in data.items()}
    if token:
        form["csrf_token"] = token
    response = console.post(path.replace(MEMBER, member_no), form, csrf=False)
    assert response.status_code == 400
    assert database.sales() == [] and database.notes() == [] and database.audit() == []
    assert database.member(member_no).points_balance == 0


def test_token_of_another_browser_session_is_refused(console, app, staff, member_no, database):
    console.sign_in_staff(staff.admin)
    token = console.csrf_token()
    other = type(console)(app=app, http=app.test_client(), token_staff_id=staff.cashier).sign_in_staff(staff.admin)
    response = other.post(f"/staff/members/{member_no}/notes", {"body": "hi", "csrf_token": token})
    assert response.status_code == 400
    assert database.notes() == []
