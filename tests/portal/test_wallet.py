"""The member's coupon wallet (/portal/coupons): each coupon they can use now with its code as text and
as a QR image, its conditions and its expiry in the member's time zone; nobody else's coupons, ever."""

import base64
import io
import re

import pytest
import sqlalchemy as sa

from loyalty.auth.models import Store
from loyalty.extensions import db
from loyalty.members.models import Member
from loyalty.members.qr import qr_png, qr_svg
from tests.campaigns.helpers import Campaigns
from tests.support.portal import staff_log_in


@pytest.fixture
def campaigns(app, factory):
    return Campaigns(app, factory.api_client(scope="manage", name="crm"))


@pytest.fixture
def wallets(campaigns, member, other_member, pos):
    """Coupons of both members; some of the member's can no longer be used."""
    ten_off = campaigns.offer(name="Ten off", value=1000, min_spend=10000, valid_days=10)["id"]
    shoes = campaigns.offer(name="Shoe week", kind="percent_off", value=15, max_discount=5000, skus=["SKU-1"],
                            categories=["shoes"], tiers=["BRONZE"], stackable=True,
                            valid_until="2026-12-31T16:00:00Z")["id"]
    bonus = campaigns.offer(name="Bonus", kind="bonus_points", value=500)["id"]
    mine = {"ten_off": campaigns.personal(ten_off, member.member_no),
            "shoes": campaigns.personal(shoes, member.member_no)}
    used = campaigns.personal(ten_off, member.member_no)
    assert pos.sale(member.member_no, 11000, subtotal=12000, coupons=[used]).status_code == 201
    voided = campaigns.personal(bonus, member.member_no)
    assert campaigns.manage.post(f"/coupons/{voided}/void").status_code == 200
    theirs = [campaigns.personal(ten_off, other_member.member_no), campaigns.personal(bonus, other_member.member_no)]
    return {"mine": mine, "gone": [used, voided], "theirs": theirs}


def qr_images(page: str) -> list[bytes]:
    return [base64.b64decode(data) for data in re.findall(r'<img src="data:image/svg\+xml;base64,([^"]+)"', page)]


def test_wallet_lists_the_members_usable_coupons_and_no_one_elses(member, wallets):
    response = member.client.get("/portal/coupons")
    page = response.get_data(as_text=True)

    assert response.status_code == 200
    shown = re.findall(r'<code class="coupon__code">([^<]+)</code>', page)
    # Soonest expiry first: ten off lasts 10 days, the shoe offer to the end of December.
    assert shown == [wallets["mine"]["ten_off"], wallets["mine"]["shoes"]]
    # Each with its code as a QR image in the page itself (usable in a shop with no signal).
    assert qr_images(page) == [qr_svg(code) for code in shown]
    for code in wallets["gone"] + wallets["theirs"]:
        assert code not in page and code.replace("-", "") not in page
        assert base64.b64encode(qr_svg(code)).decode() not in page


def test_each_coupon_says_what_it_gives_and_needs(member, wallets):
    page = member.client.get("/portal/coupons").get_data(as_text=True)
    ten_off, shoes = page.split('class="coupon"')[1:]

    assert "CN¥10.00 off" in ten_off and "Ten off" in ten_off
    assert "Spend at least CN¥100.00" in ten_off and "Cannot be combined with other coupons" in ten_off
    assert "15% off, at most CN¥50.00" in shoes
    for condition in ("On products: SKU-1", "On categories: shoes", "For tiers: BRONZE",
                      "Can be combined with other coupons"):
        assert condition in shoes, condition


def test_expiry_is_shown_in_the_members_time_zone(app, member, wallets):
    # Issued 22 Nov 2026 02:00 UTC, valid 10 days: 2 Dec 02:00 UTC, 10:00 in Shanghai (the default zone).
    page = member.client.get("/portal/coupons").get_data(as_text=True)
    assert "Use by 2 Dec 2026, 10:00" in page and "Use by 1 Jan 2027, 00:00" in page

    with app.app_context():
        store = Store(code="L001", name="London", timezone="Europe/London")
        db.session.add(store)
        db.session.flush()
        db.session.execute(sa.update(Member).where(Member.id == member.member_id).values(home_store_id=store.id))
        db.session.commit()
    page = member.client.get("/portal/coupons").get_data(as_text=True)
    assert "Use by 2 Dec 2026, 02:00" in page and "Use by 31 Dec 2026, 16:00" in page


def test_the_qr_image_reads_back_as_the_code(member, wallets):
    zxingcpp = pytest.importorskip("zxingcpp")
    from PIL import Image

    page = member.client.get("/portal/coupons").get_data(as_text=True)
    code = wallets["mine"]["ten_off"]
    assert qr_images(page)[0] == qr_svg(code)
    # The same QR drawn as a PNG (qr.py makes both from one QRCode) is what a scanner reads.
    [found] = zxingcpp.read_barcodes(Image.open(io.BytesIO(qr_png(code))))
    assert found.text == code


def test_an_empty_wallet_says_so(member):
    page = member.client.get("/portal/coupons").get_data(as_text=True)
    assert 'id="wallet-empty"' in page and 'class="coupon"' not in page


def test_the_wallet_is_in_the_navigation_and_on_the_dashboard(member):
    dashboard = member.client.get("/portal/").get_data(as_text=True)
    assert 'id="nav-coupons"' in dashboard and 'id="show-coupons"' in dashboard
    wallet = member.client.get("/portal/coupons").get_data(as_text=True)
    assert re.search(r'<a href="/portal/coupons" id="nav-coupons" aria-current="page"', wallet)


def test_only_members_get_in(app, client, factory):
    path = "/portal/coupons"
    anonymous = client.get(path)
    assert anonymous.status_code == 302 and anonymous.location.startswith("/portal/login?next=")
    factory.staff("cashier@example.com", "cashier")
    staff = app.test_client()
    assert staff_log_in(staff, "cashier@example.com").status_code == 302
    refused = staff.get(path)
    assert refused.status_code == 302 and refused.location.startswith("/portal/login")


def test_the_wallet_in_chinese(member, wallets):
    page = member.client.get("/portal/coupons", headers={"Accept-Language": "zh-CN"}).get_data(as_text=True)
    assert '<html lang="zh-Hans">' in page
    assert "我的优惠券" in page and "最低消费 ¥100.00" in page and "不可与其他优惠券同时使用" in page
