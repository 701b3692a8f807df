"""API keys: listed by prefix (never whole), created with the key shown once in the answer to the POST
(not stored, not in the session cookie), revoked after a confirmation step. Each change audited."""

import json
import re

import pytest

from loyalty.auth.services import hash_api_key

KEY = re.compile(r'<code id="new-key-value">(lk_[A-Za-z0-9_-]+)</code>')


def session_cookie(app, http) -> dict:
    cookie = http.get_cookie(app.config["SESSION_COOKIE_NAME"])
    return app.session_interface.get_signing_serializer(app).loads(cookie.value) if cookie else {}


def create_key(admin, **form):
    response = admin.post("/admin/keys", {"name": "Front till", "store": "S001", "scope": "pos", **form})
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    return response, KEY.search(response.get_data(as_text=True)).group(1)


def test_a_new_key_is_shown_once_and_works(admin, admin_db, app, member_no, staff):
    response, key = create_key(admin, scope="manage")
    html = response.get_data(as_text=True)
    assert "it is shown only this once" in html and 'id="copy-key"' in html
    assert response.headers["Cache-Control"] == "no-store"
    # Kept: its prefix and its hash only. Not in the session cookie (no flash message carries it).
    [client] = admin_db.api_clients()
    assert client.key_prefix == key[:10] and client.key_sha256 == hash_api_key(key)
    assert (client.name, client.scopes) == ("Front till", "pos manage")
    assert key not in json.dumps(session_cookie(app, admin.http))
    # Never again: not on the list, not after a reload.
    assert key not in admin.get("/admin/keys").get_data(as_text=True)
    assert key[:10] in admin.get("/admin/keys").get_data(as_text=True)
    assert key not in admin.get("/admin/audit").get_data(as_text=True)
    # It is a real key.
    pos = app.test_client()
    assert pos.get(f"/api/v1/members/{member_no}", headers={"Authorization": f"Bearer {key}"}).status_code == 200
    [event] = admin_db.events("api_key.")
    assert (event.action, event.subject, event.staff_user_id) == ("api_key.create", f"api_key:{key[:10]}", staff.admin)
    assert key not in json.dumps(event.after) and client.key_sha256 not in json.dumps(event.after)
    assert event.after["store"] == "S001" and event.after["scopes"] == "pos manage"


def test_the_list_shows_prefix_name_store_scope_and_use(admin, pos, app, member_no):
    html = admin.get("/admin/keys").get_data(as_text=True)
    row = html.split('<tr id="key-')[1].split("</tr>")[0]
    assert "till" in row and "S001" in row and ">pos<" in row and "never" in row and "Revoke" in row
    app.test_client().get(f"/api/v1/members/{member_no}", headers=pos.headers)
    row = admin.get("/admin/keys").get_data(as_text=True).split('<tr id="key-')[1].split("</tr>")[0]
    assert "never" not in row


def test_no_store_no_key_form(app, staff_password_hash):
    from loyalty.auth.models import StaffUser
    from loyalty.extensions import db
    from tests.admin.conftest import Console

    with app.app_context():
        first = StaffUser(email="first@example.com", role="admin", password_hash=staff_password_hash)
        db.session.add(first)
        db.session.commit()
        first_id = first.id
    console = Console(app=app, http=app.test_client(), token_staff_id=first_id).sign_in_staff(first_id)
    html = console.get("/admin/keys").get_data(as_text=True)
    assert 'id="key-form"' not in html and "create a store first" in html
    assert "No stores yet" in console.get("/admin/stores").get_data(as_text=True)


@pytest.mark.parametrize(("form", "field", "message"), [
    ({"name": ""}, "name", "This field is required."),
    ({"store": "S999"}, "store", "Not a valid choice"),
    ({"scope": "everything"}, "scope", "Not a valid choice"),
])
def test_bad_keys_are_refused_and_change_nothing(admin, admin_db, form, field, message):
    before = admin_db.row_counts()
    response = admin.post("/admin/keys", {"name": "Front till", "store": "S001", "scope": "pos", **form})
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert message in html and "new-key-value" not in html
    assert f'id="{field}"' in html.split(message)[0].rsplit('class="field', 1)[1]
    assert admin_db.row_counts() == before


def test_revoke_after_confirmation(admin, admin_db, app, member_no, staff):
    _response, key = create_key(admin)
    prefix = key[:10]
    confirm = admin.get(f"/admin/keys/{prefix}/revoke")
    assert confirm.status_code == 200 and 'id="confirm-revoke"' in confirm.get_data(as_text=True)
    assert admin_db.api_clients()[0].revoked_at is None  # asking is not doing
    response = admin.post(f"/admin/keys/{prefix}/revoke")
    assert response.status_code == 302
    assert f"Key {prefix}… (Front till) is revoked" in admin.get("/admin/keys").get_data(as_text=True)
    assert admin_db.api_clients()[0].revoked_at is not None
    # Refused at once in this process (the commit cleared its copy of the keys).
    pos = app.test_client()
    assert pos.get(f"/api/v1/members/{member_no}", headers={"Authorization": f"Bearer {key}"}).status_code == 401
    [event] = admin_db.events("api_key.revoke")
    assert event.staff_user_id == staff.admin and event.subject == f"api_key:{prefix}"
    assert event.before["revoked_at"] is None and event.after["revoked_at"]
    # A second revoke changes nothing more.
    admin.get(f"/admin/keys/{prefix}/revoke")
    admin.post(f"/admin/keys/{prefix}/revoke")
    assert len(admin_db.events("api_key.revoke")) == 1


def test_revoking_an_unknown_key_is_not_found(admin):
    assert admin.get("/admin/keys/lk_nothing/revoke").status_code == 404
    assert admin.post("/admin/keys/lk_nothing/revoke").status_code == 404


def test_the_staff_consoles_own_clients_are_not_listed(admin, staff, member_no, app):
    from loyalty.auth.models import Store
    from loyalty.extensions import db
    from loyalty.members.staff_services import console_client

    with app.app_context():
        console_client(db.session, db.session.query(Store).one())
        db.session.commit()
    assert "staff-console:" not in admin.get("/admin/keys").get_data(as_text=True)
