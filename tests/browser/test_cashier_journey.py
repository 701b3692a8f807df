"""At the till: a cashier signs in, the member's phone shows the card, the scanner types its code into
the focused field and presses Enter, the cashier records the sale by hand, and the member's portal
shows the points."""

import pytest

from tests.browser.conftest import PASSWORD, assert_fits_the_screen, staff_sign_in

pytestmark = pytest.mark.browser
expect = pytest.importorskip("playwright.sync_api", reason="playwright is not installed").expect


def test_cashier_scans_the_card_records_a_sale_and_the_member_sees_the_points(
        factory, new_context, sign_up, screenshot):
    factory.staff("cashier@example.com", "cashier", password=PASSWORD)
    phone = new_context(locale="en-GB").new_page()
    member_no = sign_up(phone, "Wang Fang", "wang.fang@example.com", phone="+8613800138000")

    till = new_context(locale="en-GB").new_page()
    staff_sign_in(till, "cashier@example.com", "/staff/")

    # The scan field has the focus, so the scanner's keystrokes land in it without a tap.
    scan_field = till.locator("#scan-form input[name=code]")
    expect(scan_field).to_be_focused()

    # What the scanner reads off the member's screen: the card's current token.
    card = phone.context.request.get("/portal/card.json")
    assert card.ok
    token = card.json()["token"]
    till.keyboard.type(token)
    till.keyboard.press("Enter")
    till.wait_for_url(f"**/staff/members/{member_no}")
    expect(till.locator("h1")).to_have_text("Wang Fang")
    expect(till.locator("#member-no")).to_have_text(member_no)
    expect(till.locator("#balance")).to_have_text("0")
    expect(till.locator("#phone")).not_to_contain_text("13800138000")  # a cashier sees it masked

    # A sale by hand: ¥128.00 earns 128 points at Bronze (x1.0).
    till.get_by_role("link", name="Record a sale").click()
    till.wait_for_url(f"**/staff/members/{member_no}/sale")
    expect(till.locator("#amount")).to_be_focused()
    till.fill("#amount", "128.00")
    till.get_by_role("button", name="Record sale").click()
    till.wait_for_url(f"**/staff/members/{member_no}")
    expect(till.locator(".flash-success")).to_have_text("Sale of ¥128.00 recorded: 128 points earned, 0 redeemed.")
    expect(till.locator("#balance")).to_have_text("128")
    expect(till.locator("#transaction-list")).to_contain_text("Sale ¥128.00")
    assert_fits_the_screen(till)
    screenshot(till, "staff-member")

    # The member's phone, reloaded: the new points, available at once (no hold by default).
    phone.goto("/portal/")
    expect(phone.locator("#balance")).to_have_text("128")
    expect(phone.locator("#available")).to_have_text("128")
    expect(phone.locator("#pending")).to_have_text("0")
    expect(phone.locator("#tier-next")).to_have_text("872 more points to SILVER")
    assert_fits_the_screen(phone)
    screenshot(phone, "portal-dashboard")
