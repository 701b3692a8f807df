"""Stores: listed, created with an IANA time zone, audited; bad input is refused and changes nothing."""

import pytest


def test_create_a_store(admin, admin_db, staff):
    response = admin.post("/admin/stores", {"code": "s002", "name": "Harbour City", "timezone": "Asia/Hong_Kong"})
    assert response.status_code == 302 and response.location == "/admin/stores"
    page = admin.get("/admin/stores").get_data(as_text=True)
    assert "Store S002 created." in page
    assert 'id="store-S002"' in page and "Harbour City" in page and "Asia/Hong_Kong" in page
    store = next(store for store in admin_db.stores() if store.code == "S002")
    assert (store.name, store.timezone) == ("Harbour City", "Asia/Hong_Kong")
    [event] = admin_db.events("store.")
    assert (event.action, event.subject, event.staff_user_id) == ("store.create", "store:S002", staff.admin)
    assert event.before is None
    assert event.after == {"code": "S002", "name": "Harbour City", "timezone": "Asia/Hong_Kong"}


def test_the_time_zone_list_holds_iana_names_with_shanghai_chosen(admin):
    page = admin.get("/admin/stores").get_data(as_text=True)
    assert '<option selected value="Asia/Shanghai">' in page
    assert '<option value="Europe/Paris">' in page and '<option value="UTC">' in page
    assert "posix/" not in page


@pytest.mark.parametrize(("form", "field", "message"), [
    ({"code": "", "name": "Harbour", "timezone": "Asia/Shanghai"}, "code", "This field is required."),
    ({"code": "S 1", "name": "Harbour", "timezone": "Asia/Shanghai"}, "code", "Letters, digits, - and _ only"),
    ({"code": "S001", "name": "Harbour", "timezone": "Asia/Shanghai"}, "code", "A store with this code already"),
    ({"code": "s001", "name": "Harbour", "timezone": "Asia/Shanghai"}, "code", "A store with this code already"),
    ({"code": "S002", "name": "", "timezone": "Asia/Shanghai"}, "name", "This field is required."),
    ({"code": "S002", "name": "Harbour", "timezone": "Mars/Olympus_Mons"}, "timezone", "Not a valid choice"),
    ({"code": "S002", "name": "Harbour", "timezone": "posix/Asia/Shanghai"}, "timezone", "Not a valid choice"),
])
def test_bad_input_is_refused_and_changes_nothing(admin, admin_db, form, field, message):
    before = admin_db.row_counts()
    response = admin.post("/admin/stores", form)
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert message in html
    assert f'id="{field}"' in html.split(message)[0].rsplit('class="field', 1)[1]
    assert admin_db.row_counts() == before
    assert [store.code for store in admin_db.stores()] == ["S001"]
