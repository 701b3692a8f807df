"""Offers end to end: a marketer creates an offer in the console and issues one coupon to every Bronze
member as a background job whose progress the page follows; the member finds it in the portal's wallet
with a QR code a scanner reads.

With LOYALTY_SCREENSHOTS=1: docs/screenshots/marketing-offers.png, marketing-offer-form.png and
portal-wallet.png."""

import io

import pytest

from tests.browser.conftest import PASSWORD, assert_fits_the_screen, staff_sign_in
from tests.campaigns.helpers import Campaigns
from tests.campaigns.test_batches_and_wallets import run_queued_jobs

pytestmark = pytest.mark.browser
expect = pytest.importorskip("playwright.sync_api", reason="playwright is not installed").expect

DESKTOP = {"viewport": {"width": 1280, "height": 900}, "device_scale_factor": 1, "is_mobile": False,
           "has_touch": False}


@pytest.fixture
def campaigns(app, factory):
    return Campaigns(app, factory.api_client(scope="manage", name="crm"))


def other_offers(campaigns, factory, pos):
    """A few offers made by an integrator, one of them already used twice, so the list has figures."""
    shoes = campaigns.offer(name="Shoe week", kind="percent_off", value=15, max_discount=5000,
                            categories=["shoes"], stackable=True, budget_amount=100000,
                            valid_until="2026-11-30T16:00:00Z")["id"]
    campaigns.generic(shoes, limit=500, code="SHOES15")
    for amount in (40000, 20000):
        line = {"sku": "RUN-42", "category": "shoes", "amount": amount}
        discount = min(amount * 15 // 100, 5000)
        assert pos.sale(factory.member(), amount - discount, subtotal=amount, lines=[line],
                        coupons=["SHOES15"]).status_code == 201
    campaigns.offer(name="Double points weekend", kind="points_multiplier", value=200, tiers=["SILVER", "GOLD"])
    campaigns.offer(name="Free coffee with breakfast", kind="free_item", skus=["COFFEE-S"], min_spend=3000)
    return shoes


def test_marketer_issues_coupons_and_the_member_finds_them_in_the_wallet(
        app, factory, campaigns, pos, new_context, sign_up, screenshot):
    factory.staff("marketer@example.com", "marketer", password=PASSWORD)
    phone = new_context(locale="en-GB").new_page()
    member_no = sign_up(phone, "Wang Fang", "wang.fang@example.com", phone="+8613800138000")
    shoes = other_offers(campaigns, factory, pos)
    campaigns.personal(shoes, member_no)

    desk = new_context(locale="en-GB", **DESKTOP).new_page()
    staff_sign_in(desk, "marketer@example.com", "/marketing/offers/")

    # A new offer, money typed in yuan.
    desk.click("#new-offer")
    desk.wait_for_url("**/marketing/offers/new")
    desk.fill("#name", "Welcome gift: ¥20 off")
    desk.select_option("#kind", "amount_off")
    desk.fill("#value", "20.00")
    desk.fill("#min_spend", "100")
    desk.fill("#valid_days", "30")
    desk.fill("#per_member_limit", "1")
    desk.fill("#budget_count", "1000")
    desk.fill("#budget_amount", "20000.00")
    desk.locator("#budget_amount").blur()
    screenshot(desk, "marketing-offer-form")
    desk.click("#save-offer")
    desk.wait_for_url("**/marketing/offers/*")
    expect(desk.locator(".flash-success")).to_have_text("Offer “Welcome gift: ¥20 off” created.")
    expect(desk.locator("#benefit")).to_have_text("CN¥20.00 off")

    # One personal coupon for each Bronze member, issued by a job; the page follows its progress.
    desk.check("#target-1")
    desk.select_option("#tier", label="Bronze (BRONZE)")
    desk.click("#issue-batch")
    desk.wait_for_url("**/marketing/offers/batches/*")
    if app.config["REDIS_URL"]:
        expect(desk.locator("#batch-status")).to_have_text("queued")
        with app.app_context():
            run_queued_jobs(app)
    expect(desk.locator("#batch-status")).to_have_text("done")
    expect(desk.locator("#batch-download a")).to_be_visible()
    members = 3  # the member who signed up and the two shoe buyers
    expect(desk.locator("#batch-issued")).to_have_text(str(members))

    desk.goto("/marketing/offers/")
    expect(desk.locator("#offer-list tbody tr")).to_have_count(4)
    shoe_row = desk.locator(f"#offer-{shoes}")
    expect(shoe_row.locator(".redeemed")).to_have_text("2")
    expect(shoe_row.locator(".cost")).to_contain_text("CN¥80.00")  # 50.00 (capped) + 30.00
    screenshot(desk, "marketing-offers")

    # The member's wallet: both coupons, soonest expiry first, each with a QR a scanner reads.
    phone.goto("/portal/")
    phone.click("#show-coupons")
    phone.wait_for_url("**/portal/coupons")
    cards = phone.locator(".coupon")
    expect(cards).to_have_count(2)
    expect(cards.nth(0)).to_contain_text("15% off, at most CN¥50.00")
    expect(cards.nth(1)).to_contain_text("CN¥20.00 off")
    expect(cards.nth(1)).to_contain_text("Spend at least CN¥100.00")
    expect(cards.nth(1)).to_contain_text("Use by 22 Dec 2026, 10:00")
    zxingcpp = pytest.importorskip("zxingcpp")
    from PIL import Image

    for index in range(2):
        card = cards.nth(index)
        shown = card.locator(".coupon__code").inner_text().strip()
        [read] = zxingcpp.read_barcodes(Image.open(io.BytesIO(card.locator("img").screenshot())))
        assert read.text == shown
    assert_fits_the_screen(phone)
    screenshot(phone, "portal-wallet")
