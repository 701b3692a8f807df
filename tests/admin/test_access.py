"""Every admin route, for every kind of visitor: admins get in; marketers and cashiers get 403; the
anonymous and members are sent to the staff sign-in; a refused POST changes nothing."""

import pytest

# (method, path, form data). Form data is valid, so a refusal is about who asks.
ROUTES = [
    ("GET", "/admin/", None),
    ("GET", "/admin/stores", None),
    ("POST", "/admin/stores", {"code": "S777", "name": "Harbour", "timezone": "Asia/Shanghai"}),
    ("GET", "/admin/staff", None),
    ("POST", "/admin/staff", {"email": "new@example.com", "role": "marketer", "store": "",
                              "password": "long enough pass"}),
    ("GET", "/admin/staff/{cashier}", None),
    ("POST", "/admin/staff/{cashier}/role", {"role": "marketer", "store": "S001"}),
    ("POST", "/admin/staff/{cashier}/active", {"active": "0"}),
    ("POST", "/admin/staff/{cashier}/password", {"password": "another passw0rd", "confirm": "another passw0rd"}),
    ("GET", "/admin/keys", None),
    ("POST", "/admin/keys", {"name": "web shop", "store": "S001", "scope": "pos"}),
    ("GET", "/admin/keys/{prefix}/revoke", None),
    ("POST", "/admin/keys/{prefix}/revoke", {}),
    ("GET", "/admin/program/", None),
    ("POST", "/admin/program/settings", {"earn_points": "2", "earn_per": "1.00", "redeem_points": "100",
                                         "redeem_value": "1.00", "lot_lifetime_days": "365", "hold_days": "0",
                                         "tier_window_days": "365", "tier_hold_days": "365"}),
    ("GET", "/admin/program/tiers/{silver}", None),
    ("POST", "/admin/program/tiers/{silver}", {"name": "Argent", "threshold": "1000", "multiplier": "1.25",
                                              "benefits": "", "action": "save"}),
    ("GET", "/admin/program/tiers/{silver}/moves.json?threshold=900", None),
    ("GET", "/admin/audit", None),
    ("GET", "/admin/access", None),
]
ROUTE_IDS = [f"{method} {path}" for method, path, _ in ROUTES]


@pytest.fixture
def ids(staff, pos, admin_db) -> dict:
    return {"cashier": staff.cashier, "prefix": admin_db.api_clients()[0].key_prefix,
            "silver": admin_db.tiers()["SILVER"].id}


def call(console, method, path, data, ids):
    path = path.format(**ids)
    return console.get(path) if method == "GET" else console.post(path, data)


@pytest.mark.parametrize("role", ["cashier", "marketer", "admin"])
@pytest.mark.parametrize(("method", "path", "data"), ROUTES, ids=ROUTE_IDS)
def test_admins_only(console, staff, ids, role, method, path, data):
    console.sign_in_staff(getattr(staff, role))
    response = call(console, method, path, data, ids)
    if role == "admin":
        assert response.status_code in (200, 302), response.get_data(as_text=True)[:800]
        if response.status_code == 302:
            assert response.location.startswith("/admin/")
    else:
        assert response.status_code == 403


@pytest.mark.parametrize(("method", "path", "data"), ROUTES, ids=ROUTE_IDS)
def test_anonymous_is_sent_to_staff_login(console, ids, method, path, data):
    console.sign_out()
    response = call(console, method, path, data, ids)
    assert response.status_code == 302
    assert response.location.startswith("/staff/login")


@pytest.mark.parametrize(("method", "path", "data"), ROUTES[:3], ids=ROUTE_IDS[:3])
def test_member_session_never_reaches_the_console(console, factory, member_no, ids, method, path, data):
    console.sign_in_member(factory.member_row(member_no).id)
    response = call(console, method, path, data, ids)
    assert response.status_code == 302
    assert response.location.startswith("/staff/login")


def test_refused_posts_change_nothing(console, staff, ids, admin_db):
    before = admin_db.row_counts()
    tiers, settings = admin_db.tiers(), admin_db.settings()
    for role in ("marketer", "cashier", None):
        if role:
            console.sign_in_staff(getattr(staff, role))
        else:
            console.sign_out()
        for method, path, data in ROUTES:
            if method == "POST":
                call(console, method, path, data, ids)
    assert admin_db.row_counts() == before
    assert admin_db.tiers()["SILVER"].name == tiers["SILVER"].name
    assert admin_db.settings().earn_points == settings.earn_points
    assert all(user.active and user.role == role for user, role in
               zip(admin_db.staff_users(), ["admin", "marketer", "cashier"], strict=True))
    assert admin_db.api_clients()[0].revoked_at is None


def test_consoles_link_to_admin_for_admins_only(console, staff, member_no):
    console.sign_in_staff(staff.admin)
    assert 'id="nav-admin"' in console.get("/staff/").get_data(as_text=True)
    assert 'id="nav-admin"' in console.get("/marketing/").get_data(as_text=True)
    console.sign_in_staff(staff.cashier)
    assert 'id="nav-admin"' not in console.get("/staff/").get_data(as_text=True)
    console.sign_in_staff(staff.marketer)
    assert 'id="nav-admin"' not in console.get("/marketing/").get_data(as_text=True)


@pytest.mark.parametrize("path", ["/admin/", "/admin/stores", "/admin/staff", "/admin/staff/{cashier}", "/admin/keys",
                                  "/admin/keys/{prefix}/revoke", "/admin/program/", "/admin/program/tiers/{silver}",
                                  "/admin/audit", "/admin/access"])
def test_every_page_renders_in_chinese(console, staff, ids, path):
    console.sign_in_staff(staff.admin)
    response = console.get(path.format(**ids) + "?lang=zh")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert '<html lang="zh-Hans">' in html
    assert "管理" in html
