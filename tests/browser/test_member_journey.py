"""A member joins on their phone: sign-up, the card with a scannable QR and the member number, and the
dashboard with the balance and the way to the next tier."""

import io

import pytest
import sqlalchemy as sa

from loyalty.extensions import db
from loyalty.members.models import Member
from tests.browser.conftest import assert_fits_the_screen

pytestmark = pytest.mark.browser
expect = pytest.importorskip("playwright.sync_api", reason="playwright is not installed").expect


def test_member_signs_up_and_sees_card_and_balance(app, new_context, sign_up, screenshot):
    page = new_context(locale="en-GB").new_page()
    member_no = sign_up(page, "Wang Fang", "wang.fang@example.com", phone="+8613800138000")

    with app.app_context():
        member = db.session.scalar(sa.select(Member).where(Member.email == "wang.fang@example.com"))
        assert member.member_no == member_no and member.name == "Wang Fang"

    # The card: the welcome message, the QR (served by the app, drawn), the number under it.
    expect(page.locator(".flash-success")).to_contain_text("Your membership card is ready")
    expect(page.locator("h1")).to_have_text("Membership card")
    expect(page.locator("#member-no")).to_have_text(member_no)
    qr = page.locator("#card-qr")
    assert "/portal/card.svg" in qr.get_attribute("src")
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=qr.element_handle())

    # What is on the screen is what a scanner reads: the QR decodes to the current card.json token.
    zxingcpp = pytest.importorskip("zxingcpp")
    from PIL import Image

    [code] = zxingcpp.read_barcodes(Image.open(io.BytesIO(qr.screenshot())))
    card = page.context.request.get("/portal/card.json")
    assert card.ok and card.headers["cache-control"] == "no-store"
    assert code.text == card.json()["token"]
    assert_fits_the_screen(page)

    # The dashboard: balance, available, pending and the tier, from the portal's own navigation.
    page.click("#nav-dashboard")
    page.wait_for_url("**/portal/")
    expect(page.locator("h1")).to_have_text("Hello, Wang Fang")
    expect(page.locator("#balance")).to_have_text("0")
    expect(page.locator("#available")).to_have_text("0")
    expect(page.locator("#pending")).to_have_text("0")
    expect(page.locator("#tier-name")).to_have_text("Bronze")
    expect(page.locator("#tier-next")).to_have_text("1,000 more points to SILVER")
    assert_fits_the_screen(page)

    # At the till, from the dashboard: the whole code and the number on the phone's screen, no scrolling.
    page.click("#show-card")
    page.wait_for_url("**/portal/card")
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=qr.element_handle())
    expect(qr).to_be_in_viewport(ratio=1)
    expect(page.locator("#member-no")).to_be_in_viewport(ratio=1)
    screenshot(page, "portal-card", full_page=False)
