"""The portal in Simplified Chinese: chosen by the browser's language (Accept-Language: zh-CN), or by
the switch in the header (?lang=zh), which is remembered for the next pages."""

import pytest

from tests.browser.conftest import assert_fits_the_screen

pytestmark = pytest.mark.browser
expect = pytest.importorskip("playwright.sync_api", reason="playwright is not installed").expect


def test_a_chinese_browser_gets_the_dashboard_in_chinese(new_context, sign_up, factory, screenshot):
    context = new_context(locale="zh-CN")
    page = context.new_page()
    member_no = sign_up(page, "王芳", "wang.fang@example.com")
    expect(page.locator("h1")).to_have_text("会员卡")

    factory.api_client().sale(member_no, 26800)  # ¥268.00 at the till: 268 points

    page.goto("/portal/")
    expect(page.locator("html")).to_have_attribute("lang", "zh-Hans")
    expect(page.locator("h1")).to_have_text("王芳，您好")
    expect(page.locator("#points-heading")).to_have_text("我的积分")
    expect(page.locator("#points dt").first).to_have_text("积分余额")
    expect(page.locator("#tier-heading")).to_have_text("会员等级")
    expect(page.locator("#show-card")).to_have_text("出示会员卡")
    expect(page.locator("#balance")).to_have_text("268")
    assert "Your points" not in page.content()
    assert_fits_the_screen(page)
    screenshot(page, "portal-dashboard-zh")


def test_the_language_switch_changes_and_keeps_the_language(new_context, sign_up):
    page = new_context(locale="en-US").new_page()
    sign_up(page, "Wang Fang", "wang.fang@example.com")
    page.goto("/portal/")
    expect(page.locator("#points-heading")).to_have_text("Your points")

    page.click("#lang-zh")
    expect(page.locator("#points-heading")).to_have_text("我的积分")
    page.click("#nav-card")  # no ?lang on this link: the choice is remembered
    page.wait_for_url("**/portal/card")
    expect(page.locator("h1")).to_have_text("会员卡")

    page.click("#lang-en")
    expect(page.locator("h1")).to_have_text("Membership card")
