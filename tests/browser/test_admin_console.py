"""An operator with nothing but an admin account sets the shop up in a browser: a store, a cashier, an
API key (shown once, copied), then moves the GOLD threshold and sees who would move before saving; the
audit trail lists each change and the data-access log the cashier's look at a member.

With LOYALTY_SCREENSHOTS=1: docs/screenshots/admin-stores.png, admin-staff.png, admin-keys.png,
admin-tier-preview.png, admin-audit.png, admin-access.png and admin-program-zh.png."""

import re

import pytest

from loyalty.auth.services import create_staff_user
from loyalty.extensions import db
from tests.browser.conftest import PASSWORD, assert_fits_the_screen, staff_sign_in

pytestmark = pytest.mark.browser
expect = pytest.importorskip("playwright.sync_api", reason="playwright is not installed").expect

DESKTOP = {"viewport": {"width": 1280, "height": 900}, "device_scale_factor": 1, "is_mobile": False,
           "has_touch": False}


def first_admin(app) -> None:
    """What `loyalty user create --role admin` leaves: one admin, no store, nothing else."""
    with app.app_context():
        create_staff_user(db.session, email="admin@example.com", role="admin", password=PASSWORD)
        db.session.commit()


def sales_with_the_new_key(app, key: str) -> list[str]:
    """The till the key was made for enrols four members and posts their sales (1 point per 1.00)."""
    till = app.test_client()
    headers = {"Authorization": f"Bearer {key}"}
    numbers = []
    for index, amount in enumerate([80_000, 250_000, 320_000, 600_000]):
        enrolled = till.post("/api/v1/members", json={"name": f"Member {index}", "email": f"m{index}@example.com"},
                             headers=headers)
        assert enrolled.status_code == 201, enrolled.get_json()
        member_no = enrolled.get_json()["member_no"]
        sale = till.post("/api/v1/transactions", headers=headers, json={
            "external_id": f"T-{index}", "member": member_no, "occurred_at": "2026-11-22T10:00:00+08:00",
            "currency": "CNY", "amount": amount})
        assert sale.status_code == 201, sale.get_json()
        numbers.append(member_no)
    return numbers


def test_an_operator_sets_up_the_shop(app, new_context, screenshot):
    first_admin(app)
    context = new_context(locale="en-GB", **DESKTOP)
    context.grant_permissions(["clipboard-read", "clipboard-write"])
    page = context.new_page()
    staff_sign_in(page, "admin@example.com", "/admin/")
    expect(page.locator("h1")).to_have_text("Admin")

    # A store.
    page.locator("#nav-stores").click()
    expect(page.locator("#no-stores")).to_be_visible()
    page.fill("#code", "S001")
    page.fill("#name", "Nanjing Road")
    page.select_option("#timezone", "Asia/Shanghai")
    page.locator("#create-store").click()
    expect(page.locator(".flash-success")).to_have_text("Store S001 created.")
    expect(page.locator("#store-S001")).to_contain_text("Nanjing Road")
    expect(page.locator("#store-S001")).to_contain_text("Asia/Shanghai")
    screenshot(page, "admin-stores")

    # A cashier of that store.
    page.locator("#nav-staff").click()
    page.fill("#email", "ann@example.com")
    page.select_option("#role", "cashier")
    page.select_option("#store", "S001")
    page.fill("#password", PASSWORD)
    page.locator("#create-staff").click()
    expect(page.locator(".flash-success")).to_have_text("Account ann@example.com created.")
    ann = page.locator("#staff-list tr", has_text="ann@example.com")
    expect(ann).to_contain_text("cashier")
    expect(ann).to_contain_text("S001")
    screenshot(page, "admin-staff")

    # A key for the store's till: shown once, copied with the button.
    page.locator("#nav-keys").click()
    page.fill("#name", "Front till")
    page.select_option("#store", "S001")
    page.locator("#create-key").click()
    key = page.locator("#new-key-value").inner_text().strip()
    assert re.fullmatch(r"lk_[A-Za-z0-9_-]{43}", key)
    page.locator("#copy-key").click()
    expect(page.locator("#copy-key")).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == key
    expect(page.locator("#key-list")).to_contain_text(key[:10])
    screenshot(page, "admin-keys")
    page.locator("#nav-keys").click()
    assert key not in page.content()

    # The key works: the till enrols members and posts sales.
    members = sales_with_the_new_key(app, key)

    # GOLD from 5,000 to 3,000 qualifying points: the member with 3,200 would move up.
    page.locator("#nav-program").click()
    page.locator("#edit-GOLD").click()
    page.fill("#threshold", "3000")
    # As the admin types, the counts arrive (moves.json).
    # A debounced request, then a count over the members: on a busy CI machine that took over 5 s.
    expect(page.locator("#live-preview")).to_have_text("1 member would move up to Gold, 0 would move down.",
                                                       timeout=30_000)
    page.locator("#save-tier").click()
    # The confirmation step: the same counts, nothing saved yet.
    expect(page.locator("#preview-text")).to_have_text("1 member would move up to Gold, 0 would move down.")
    expect(page.locator("#preview")).to_contain_text("Saving moves those members up at once.")
    screenshot(page, "admin-tier-preview")
    page.locator("#save-tier").click()
    expect(page.locator(".flash-success")).to_have_text("Gold saved: 1 member moved up at once.")
    expect(page.locator("#tier-GOLD .threshold")).to_have_text("3,000")
    member = app.test_client().get(f"/api/v1/members/{members[2]}", headers={"Authorization": f"Bearer {key}"})
    assert member.get_json()["tier"]["code"] == "GOLD"

    # The cashier looks a member up; the privacy officer (here, the admin) sees it.
    till = new_context(locale="en-GB", **DESKTOP).new_page()
    staff_sign_in(till, "ann@example.com", "/staff/")
    till.goto(f"/staff/members/{members[0]}")
    expect(till.locator("#member-no")).to_have_text(members[0])

    # The audit trail: each change, newest first.
    page.locator("#nav-audit").click()
    actions = [text.strip() for text in page.locator("#audit tr.audit-event td:nth-child(3)").all_inner_texts()]
    assert actions[:4] == ["tier.update", "api_key.create", "staff.create", "store.create"]
    expect(page.locator("#audit tr.audit-event").first).to_contain_text("3000")
    expect(page.locator("#audit tr.audit-event").first).to_contain_text("admin@example.com")
    assert "member.view" not in actions
    screenshot(page, "admin-audit")

    page.locator("#nav-access").click()
    look = page.locator("#access tr.access-event").first
    expect(look).to_contain_text("ann@example.com")
    expect(look).to_contain_text(members[0])
    expect(look).to_contain_text("Staff console: member")
    screenshot(page, "admin-access")

    # The same console in Simplified Chinese.
    page.goto("/admin/program/?lang=zh")
    expect(page.locator("h1")).to_have_text("会员计划")
    expect(page.locator("#nav-overview")).to_have_text("管理后台")
    assert "Earning, redeeming and expiry" not in page.content()
    screenshot(page, "admin-program-zh")


def test_every_admin_page_fits_a_phone(app, factory, pos, new_context):
    """On a phone nothing is wider than the screen: wide tables scroll inside their box."""
    factory.staff("admin@example.com", "admin", password=PASSWORD)
    cashier = factory.staff("ann@example.com", "cashier", password=PASSWORD)
    page = new_context(locale="en-GB").new_page()
    staff_sign_in(page, "admin@example.com", "/admin/")
    with app.app_context():
        from loyalty.points.models import Tier

        gold = db.session.query(Tier).filter_by(code="GOLD").one().id
    for path in ("/admin/", "/admin/stores", "/admin/staff", f"/admin/staff/{cashier}", "/admin/keys",
                 "/admin/program/", f"/admin/program/tiers/{gold}", "/admin/audit", "/admin/access"):
        page.goto(path)
        assert_fits_the_screen(page)
