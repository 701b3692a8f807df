"""Where sign-in sends you back to (`next`): only a plain path on this site, on the portal and the
staff sign-in alike; anything a browser could read as another host falls back to the default page."""

import pytest

from loyalty.web.sign_in import safe_next_url
from tests.support.portal import log_in, new_portal_member, staff_log_in

OFF_SITE = ["/\t/evil.example/", "/%09/evil.example/", "/%2509/evil.example/", "/\r\nSet-Cookie: x=1",
            "/%0d%0aSet-Cookie:%20x=1", "/\n/evil.example/", "//evil.example/", "/\\evil.example/",
            "\\\\evil.example/", "/%5c/evil.example/", "/%2F/evil.example/", "https://evil.example/",
            "javascript:alert(1)", "/ /evil.example/", "/\u2028/evil.example/", "/\x00/evil.example/", "evil"]


@pytest.mark.parametrize("target", OFF_SITE)
def test_anything_but_a_plain_local_path_is_refused(target):
    assert safe_next_url(target) is None


@pytest.mark.parametrize("target", ["/staff/enrol", "/portal/history?page=2", "/portal/?q=50%25"])
def test_a_plain_local_path_is_kept(target):
    assert safe_next_url(target) == target


@pytest.mark.parametrize("target", OFF_SITE)
def test_staff_sign_in_does_not_leave_the_site(app, factory, target):
    factory.staff("cashier@example.com", "cashier")
    response = staff_log_in(app.test_client(), "cashier@example.com", query_string={"next": target})
    if "\x00" in target:  # refused before any view reads it (loyalty/routing.py)
        assert response.status_code == 400
        return
    assert response.status_code == 302
    assert response.location in ("/staff/", "/staff/scan")


@pytest.mark.parametrize("target", OFF_SITE)
def test_portal_sign_in_does_not_leave_the_site(app, target):
    member = new_portal_member(app)
    client = app.test_client()
    response = log_in(client, member.email, query_string={"next": target})
    if "\x00" in target:  # refused before any view reads it (loyalty/routing.py)
        assert response.status_code == 400
        return
    assert response.status_code == 302
    assert response.location == "/portal/"
