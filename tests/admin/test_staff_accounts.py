"""Staff accounts: list, create, change role and store, disable and enable, reset a password. Each change
is audited with before and after, never with a password; bad input is refused and changes nothing."""

import json

import pytest

from loyalty.auth.services import check_password

PASSWORD = "long enough pass"


def test_the_list_shows_every_account(admin, staff):
    html = admin.get("/admin/staff").get_data(as_text=True)
    for role in ("admin", "marketer", "cashier"):
        row = html.split(f'id="staff-{getattr(staff, role)}"')[1].split("</tr>")[0]
        assert f"{role}@example.com" in row and f">{role}<" in row and "S001" in row and "active" in row


def test_create_a_cashier(admin, admin_db, staff):
    response = admin.post("/admin/staff", {"email": " Ann@Example.com", "role": "cashier", "store": "S001",
                                           "password": PASSWORD})
    assert response.status_code == 302
    assert "Account ann@example.com created." in admin.get("/admin/staff").get_data(as_text=True)
    user = admin_db.staff_users()[-1]
    assert (user.email, user.role, user.active) == ("ann@example.com", "cashier", True)
    assert check_password(user.password_hash, PASSWORD)
    [event] = admin_db.events("staff.")
    assert (event.action, event.subject, event.staff_user_id) == ("staff.create", "staff:ann@example.com", staff.admin)
    assert event.after == {"email": "ann@example.com", "role": "cashier", "store": "S001", "active": True}
    assert PASSWORD not in json.dumps(event.after) and user.password_hash not in json.dumps(event.after)


@pytest.mark.parametrize(("form", "field", "message"), [
    ({"email": "not-an-email", "role": "cashier", "store": "S001"}, "email", "Invalid email address."),
    ({"email": "cashier@example.com", "role": "cashier", "store": "S001"}, "email", "already exists"),
    ({"email": "ann@example.com", "role": "owner", "store": "S001"}, "role", "Not a valid choice"),
    ({"email": "ann@example.com", "role": "cashier", "store": "S999"}, "store", "Not a valid choice"),
    ({"email": "ann@example.com", "role": "cashier", "store": ""}, "store", "A cashier works at a store"),
    ({"email": "ann@example.com", "role": "cashier", "store": "S001", "password": "short"}, "password",
     "Field must be between 8 and 256 characters long."),
])
def test_bad_accounts_are_refused_and_change_nothing(admin, admin_db, form, field, message):
    before = admin_db.row_counts()
    response = admin.post("/admin/staff", {"password": PASSWORD, **form})
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert message in html
    assert f'id="{field}"' in html.split(message)[0].rsplit('class="field', 1)[1]
    assert admin_db.row_counts() == before


def test_change_role_and_store(admin, admin_db, staff, factory):
    factory.store("S002")
    response = admin.post(f"/admin/staff/{staff.cashier}/role", {"role": "marketer", "store": "S002"})
    assert response.status_code == 302
    page = admin.get(response.location).get_data(as_text=True)
    assert "cashier@example.com is now marketer." in page
    user = next(user for user in admin_db.staff_users() if user.id == staff.cashier)
    assert (user.role, user.store_id) == ("marketer", factory.store("S002"))
    [event] = admin_db.events("staff.role")
    assert event.before == {"email": "cashier@example.com", "role": "cashier", "store": "S001", "active": True}
    assert event.after == {"email": "cashier@example.com", "role": "marketer", "store": "S002", "active": True}


def test_the_last_admin_keeps_the_role_and_the_account(admin, admin_db, staff):
    before = admin_db.row_counts()
    response = admin.post(f"/admin/staff/{staff.admin}/role", {"role": "cashier", "store": "S001"})
    assert response.status_code == 422
    assert "This is the last active admin" in response.get_data(as_text=True)
    response = admin.post(f"/admin/staff/{staff.admin}/active", {"active": "0"})
    assert response.status_code == 302
    assert "This is the last active admin" in admin.get(response.location).get_data(as_text=True)
    assert admin_db.row_counts() == before
    assert admin_db.staff_users()[0].role == "admin" and admin_db.staff_users()[0].active


def test_disable_signs_out_and_enable_lets_back_in(admin, admin_db, staff, app):
    cashier = type(admin)(app=app, http=app.test_client(), token_staff_id=staff.cashier).sign_in_staff(staff.cashier)
    assert cashier.get("/staff/").status_code == 200
    response = admin.post(f"/admin/staff/{staff.cashier}/active", {"active": "0"})
    assert response.status_code == 302
    page = admin.get(response.location).get_data(as_text=True)
    assert "is disabled and signed out everywhere" in page and 'id="account-status">disabled' in page
    assert cashier.get("/staff/").location.startswith("/staff/login")
    admin.post(f"/admin/staff/{staff.cashier}/active", {"active": "1"})
    # Enabled again, the account signs in afresh: the sessions open when it was disabled stay over.
    assert cashier.get("/staff/").location.startswith("/staff/login")
    assert cashier.sign_in_staff(staff.cashier).get("/staff/").status_code == 200
    disable, enable = admin_db.events("staff.")
    assert (disable.action, disable.before["active"], disable.after["active"]) == ("staff.disable", True, False)
    assert (enable.action, enable.before["active"], enable.after["active"]) == ("staff.enable", False, True)


def test_reset_a_password(admin, admin_db, staff, app):
    cashier = type(admin)(app=app, http=app.test_client(), token_staff_id=staff.cashier).sign_in_staff(staff.cashier)
    response = admin.post(f"/admin/staff/{staff.cashier}/password", {"password": PASSWORD, "confirm": PASSWORD})
    assert response.status_code == 302
    assert "New password set for cashier@example.com" in admin.get(response.location).get_data(as_text=True)
    user = next(user for user in admin_db.staff_users() if user.id == staff.cashier)
    assert check_password(user.password_hash, PASSWORD)
    # The cashier's session was signed in with the old password: it is over.
    assert cashier.get("/staff/").location.startswith("/staff/login")
    [event] = admin_db.events("staff.password")
    trail = json.dumps([event.before, event.after])
    assert PASSWORD not in trail and user.password_hash not in trail
    assert PASSWORD not in admin.get("/admin/audit").get_data(as_text=True)


@pytest.mark.parametrize(("form", "message"), [
    ({"password": PASSWORD, "confirm": PASSWORD + "!"}, "The two passwords differ."),
    ({"password": "short", "confirm": "short"}, "Field must be between 8 and 256 characters long."),
])
def test_bad_passwords_are_refused_and_change_nothing(admin, admin_db, staff, form, message):
    before = admin_db.staff_users()[2].password_hash
    response = admin.post(f"/admin/staff/{staff.cashier}/password", form)
    assert response.status_code == 422
    assert message in response.get_data(as_text=True)
    assert admin_db.staff_users()[2].password_hash == before
    assert admin_db.events("staff.") == []


def test_unknown_accounts_are_not_found(admin):
    assert admin.get("/admin/staff/999999").status_code == 404
    assert admin.post("/admin/staff/999999/active", {"active": "0"}).status_code == 404
