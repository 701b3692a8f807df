"""Every response carries the security headers (loyalty/web/security_headers.py), and the pages that show
personal data are not stored by the browser."""

import pytest

from loyalty.web.security_headers import register_security_headers
from tests.support.portal import new_portal_member, staff_log_in, use_cheap_password_hashing

SECURITY_HEADERS = {"X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin"}


@pytest.fixture(autouse=True)
def _cheap_password_hashing(monkeypatch):
    use_cheap_password_hashing(monkeypatch)


def assert_security_headers(response):
    for name, value in SECURITY_HEADERS.items():
        assert response.headers.get(name) == value, name
    policy = response.headers["Content-Security-Policy"]
    for directive in ("default-src 'self'", "frame-ancestors 'none'", "object-src 'none'", "base-uri 'self'",
                      "form-action 'self'"):
        assert directive in policy
    assert "unsafe-inline" not in policy


def test_portal_pages(app):
    member = new_portal_member(app)
    anonymous = app.test_client()
    pages = [member.client.get("/portal/"), member.client.get("/portal/profile"), anonymous.get("/portal/login")]
    for page in pages:
        assert page.status_code == 200
        assert_security_headers(page)
        assert page.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize(("role", "path"), [("cashier", "/staff/enrol"), ("admin", "/admin/"),
                                           ("admin", "/admin/staff")])
def test_staff_and_admin_pages(app, factory, role, path):
    factory.staff(f"{role}@example.com", role)
    client = app.test_client()
    assert staff_log_in(client, f"{role}@example.com").status_code == 302
    page = client.get(path)
    assert page.status_code == 200
    assert_security_headers(page)
    assert page.headers["Cache-Control"] == "no-store"


def test_api_responses(client):
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    assert_security_headers(response)


def test_hsts_outside_development_only():
    from flask import Flask

    for environment, expected in (("production", "max-age=31536000"), ("development", None)):
        app = Flask(__name__)
        app.config["ENVIRONMENT"] = environment
        app.add_url_rule("/", "index", lambda: "ok")
        register_security_headers(app)
        assert app.test_client().get("/").headers.get("Strict-Transport-Security") == expected
