"""The marketer's dashboard in a real browser, in English and in Chinese, after a year of sales and two
scoring runs a month apart (so segment movement has something to show).

With LOYALTY_SCREENSHOTS=1: docs/screenshots/marketing-dashboard.png and marketing-dashboard-zh.png."""

import random
from datetime import timedelta

import pytest

from loyalty.extensions import db
from tests.browser.conftest import PASSWORD, staff_sign_in
from tests.support.clock import DEFAULT_NOW

pytestmark = pytest.mark.browser
expect = pytest.importorskip("playwright.sync_api", reason="playwright is not installed").expect

DESKTOP = {"viewport": {"width": 1280, "height": 900}, "device_scale_factor": 1, "is_mobile": False,
           "has_touch": False}
CATALOGUE = {"RUN-42": ("shoes", 42000), "SOCK-3": ("socks", 4500), "CAP-1": ("hats", 9900),
             "BAG-7": ("bags", 25000), "TEE-2": ("shirts", 12900)}
BASKETS = [["RUN-42", "SOCK-3"], ["RUN-42", "SOCK-3", "CAP-1"], ["TEE-2", "CAP-1"], ["BAG-7"], ["TEE-2"],
           ["SOCK-3"], ["BAG-7", "TEE-2"]]


def year_of_sales(factory, pos):
    """Fourteen members with 0 to 9 purchases each over the last year, a few dozen sales in all."""
    rng = random.Random(5)
    members = [factory.member() for _ in range(14)]
    for index, member_no in enumerate(members):
        for _ in range([0, 1, 1, 1, 2, 2, 3, 3, 4, 5, 6, 7, 8, 9][index]):
            skus = rng.choice(BASKETS)
            lines = [{"sku": sku, "category": CATALOGUE[sku][0], "amount": CATALOGUE[sku][1]} for sku in skus]
            when = DEFAULT_NOW.replace(hour=1) - timedelta(days=rng.randint(1, 360))
            response = pos.sale(member_no, sum(line["amount"] for line in lines), lines=lines,
                                occurred_at=when.isoformat())
            assert response.status_code == 201, response.get_json()


def rescore(app):
    from loyalty.insights import tasks

    with app.app_context():
        tasks.rescore_all()
        db.session.commit()


def open_dashboard(new_context, locale):
    page = new_context(locale=locale, **DESKTOP).new_page()
    staff_sign_in(page, "marketer@example.com", "/marketing/")
    page.wait_for_selector("#canvas-sales_trend")
    page.wait_for_load_state("networkidle")
    return page


def test_the_dashboard_in_english_and_chinese(app, factory, pos, clock, new_context, screenshot):
    factory.staff("marketer@example.com", "marketer", password=PASSWORD)
    year_of_sales(factory, pos)
    clock.set(DEFAULT_NOW - timedelta(days=45))
    rescore(app)
    clock.set(DEFAULT_NOW)
    rescore(app)

    page = open_dashboard(new_context, "en-GB")
    expect(page.locator("h1")).to_have_text("Marketing dashboard")
    assert "Champions" in page.content()
    screenshot(page, "marketing-dashboard")

    page = open_dashboard(new_context, "zh-CN")
    expect(page.locator("h1")).to_have_text("营销看板")
    html = page.content()
    assert "立即重新评分" in html and "Marketing dashboard" not in html
    screenshot(page, "marketing-dashboard-zh")
