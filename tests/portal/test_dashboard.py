"""The dashboard: balance, available and pending points, tier and the way to the next one, what
expires when (dates in the store's zone, Asia/Shanghai), in English or Simplified Chinese."""

import re

import sqlalchemy as sa

from loyalty.extensions import db
from loyalty.points.models import ProgramSettings


def _text(response) -> str:
    """The page's visible text, tags removed and whitespace collapsed."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.get_data(as_text=True)))


def _figure(page: str, element_id: str) -> str:
    return re.search(rf'id="{element_id}">([^<]*)<', page).group(1)


def _two_sales(member, pos):
    # 500 points from January (they expire on 31 Jan 2027), 3,260 from today: 3,760 qualifying points
    # within the year, so SILVER since the second sale and 1,240 short of GOLD (5,000).
    january = pos.sale(member.member_no, 50000, occurred_at="2026-01-30T10:00:00+08:00")
    today = pos.sale(member.member_no, 326000, occurred_at="2026-11-22T10:00:00+08:00")
    assert january.status_code == today.status_code == 201
    assert today.get_json()["member"]["tier"]["code"] == "SILVER"


def test_dashboard_shows_balance_tier_progress_and_expiry(member, pos):
    _two_sales(member, pos)
    response = member.client.get("/portal/")
    page, text = response.get_data(as_text=True), _text(response)
    assert _figure(page, "balance") == "3,760"
    assert _figure(page, "available") == "3,760"
    assert _figure(page, "pending") == "0"
    assert _figure(page, "tier-name") == "Silver"
    assert "1,240 more points to GOLD" in text
    assert '<progress id="tier-progress" max="5000" value="3760">' in page
    assert "500 points expire on 31 Jan 2027" in text
    assert "3,260 points expire on 23 Nov 2027" in text
    assert f"Hello, {member.name}" in text


def test_available_and_pending_differ_while_points_are_on_hold(app, member, pos):
    with app.app_context():
        db.session.execute(sa.update(ProgramSettings).values(hold_days=14))
        db.session.commit()
    assert pos.sale(member.member_no, 12800).status_code == 201
    page = member.client.get("/portal/").get_data(as_text=True)
    assert (_figure(page, "balance"), _figure(page, "available"), _figure(page, "pending")) == ("128", "0", "128")
    assert "return period" in page


def test_redeemed_points_leave_the_balance(member, pos):
    assert pos.sale(member.member_no, 100000).status_code == 201
    # Paid entirely with points: nothing earned, 300 taken oldest-expiry first.
    assert pos.sale(member.member_no, 0, subtotal=300, points_redeemed=300).status_code == 201
    page = member.client.get("/portal/").get_data(as_text=True)
    assert _figure(page, "balance") == _figure(page, "available") == "700"


def test_one_point_short_reads_in_the_singular(member, pos):
    assert pos.sale(member.member_no, 99900).status_code == 201
    assert "1 more point to SILVER" in _text(member.client.get("/portal/"))


def test_the_top_tier_has_nowhere_further_to_go(member, pos):
    assert pos.sale(member.member_no, 600000).status_code == 201
    text = _text(member.client.get("/portal/"))
    assert "You have reached our highest tier." in text
    assert "more points to" not in text


def test_the_dashboard_in_chinese_follows_the_browser(member, pos):
    _two_sales(member, pos)
    response = member.client.get("/portal/", headers={"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.8"})
    page, text = response.get_data(as_text=True), _text(response)
    assert '<html lang="zh-Hans">' in page
    assert "我的积分" in text and "积分余额" in text and "当前可用" in text
    assert _figure(page, "tier-name") == "银卡"
    assert "再获得 1,240 积分即可升级至 GOLD" in text
    assert "500 积分将于 2027年1月31日 过期" in text
    assert "Your points" not in text and "Balance" not in text


def test_the_language_switch_wins_over_the_browser_and_is_remembered(member):
    chinese = {"Accept-Language": "zh-CN"}
    switched = member.client.get("/portal/?lang=en", headers=chinese)
    assert "Your points" in _text(switched)
    assert "lang=en" in switched.headers["Set-Cookie"]
    assert "Your points" in _text(member.client.get("/portal/", headers=chinese))
    member.client.get("/portal/?lang=zh")
    assert "我的积分" in _text(member.client.get("/portal/", headers={"Accept-Language": "en"}))


def test_unknown_languages_fall_back_to_english(member):
    response = member.client.get("/portal/?lang=xx", headers={"Accept-Language": "fr-FR,de;q=0.8"})
    assert '<html lang="en">' in response.get_data(as_text=True)
    assert "Your points" in _text(response)
    assert "Set-Cookie" not in response.headers or "lang=" not in response.headers["Set-Cookie"]


def test_pages_load_nothing_from_other_hosts(member):
    for path in ("/portal/", "/portal/card", "/portal/history", "/portal/profile", "/portal/login"):
        page = member.client.get(path).get_data(as_text=True)
        for attribute in re.findall(r'(?:src|href|action)="([^"]*)"', page):
            assert attribute.startswith(("/", "#", "data:")), (path, attribute)
        assert "@import" not in page and "url(http" not in page
    with member.client.get("/static/css/site.css") as css:
        assert css.status_code == 200
        assert "http" not in css.get_data(as_text=True)
