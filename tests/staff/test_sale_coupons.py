"""Redeeming a coupon in a hand-recorded sale: picked from the member's wallet or typed, judged on the
basket before discounts, redeemed with the sale through post_sales, and refused with the reason (and
nothing recorded) when the till would refuse it."""

import re

import pytest
import sqlalchemy as sa

from loyalty.campaigns.models import CouponRedemption
from tests.campaigns.helpers import Campaigns
from tests.staff.test_sale import open_sale_form


@pytest.fixture
def cashier(console, staff):
    return console.sign_in_staff(staff.cashier)


@pytest.fixture
def campaigns(app, factory):
    return Campaigns(app, factory.api_client(scope="manage", name="crm"))


@pytest.fixture
def ten_off(campaigns):
    """10.00 off a basket of at least 100.00."""
    return campaigns.offer(name="Ten off", value=1000, min_spend=10000)["id"]


def sale_path(member_no: str) -> str:
    return f"/staff/members/{member_no}/sale"


def test_the_sale_form_offers_the_members_usable_coupons(cashier, member_no, campaigns, factory, ten_off):
    mine = campaigns.personal(ten_off, member_no)
    theirs = campaigns.personal(ten_off, factory.member())

    page = cashier.get(sale_path(member_no)).get_data(as_text=True)

    assert re.search(rf'<option value="{mine}">{mine} · Ten off · CN¥10.00 off</option>', page)
    assert theirs not in page
    assert "Spend at least CN¥100.00" in page
    assert 'name="coupon_code"' in page and 'name="subtotal"' in page


def test_a_picked_coupon_is_redeemed_in_the_sale(cashier, member_no, campaigns, database, ten_off):
    code = campaigns.personal(ten_off, member_no)
    form = open_sale_form(cashier, member_no)

    response = cashier.post(sale_path(member_no), {**form, "amount": "118.00", "subtotal": "128.00", "coupon": code})

    assert response.status_code == 302 and response.location == f"/staff/members/{member_no}"
    [sale] = database.sales()
    assert (sale.amount, sale.subtotal, sale.points_earned) == (11800, 12800, 118)
    assert campaigns.coupon(code)["status"] == "redeemed"
    [redemption] = database.scalars(sa.select(CouponRedemption))
    assert (redemption.transaction_id, redemption.discount) == (sale.id, 1000)
    offer = campaigns.offer_row(ten_off)
    assert (offer.redeemed_count, offer.discount_given) == (1, 1000)
    [event] = database.audit("sale.record")
    assert event.after["coupons"] == [{"code": code, "discount": 1000}] and event.after["subtotal"] == 12800
    page = cashier.get(response.location).get_data(as_text=True)
    assert f"Coupon {code} redeemed: ¥10.00 off." in page
    assert code not in re.search(r'<section id="coupons".*?</section>', page, re.S).group(0)


def test_a_typed_code_is_read_as_people_type_it(cashier, member_no, campaigns, database):
    percent = campaigns.offer(name="Ten percent", kind="percent_off", value=10)["id"]
    code = campaigns.personal(percent, member_no)
    form = open_sale_form(cashier, member_no)

    response = cashier.post(sale_path(member_no), {**form, "amount": "180.00", "subtotal": "200.00",
                                                   "coupon_code": f" {code.replace('-', ' ').lower()} "})

    assert response.status_code == 302
    assert campaigns.coupon(code)["status"] == "redeemed"
    [redemption] = database.scalars(sa.select(CouponRedemption))
    assert redemption.discount == 2000  # 10% of the 200.00 basket, not of the 180.00 paid


def test_a_generic_code_works_at_the_console(cashier, member_no, campaigns):
    offer = campaigns.offer(name="Summer", value=500)["id"]
    campaigns.generic(offer, limit=10, code="SUMMER26")
    form = open_sale_form(cashier, member_no)
    response = cashier.post(sale_path(member_no), {**form, "amount": "45.00", "subtotal": "50.00",
                                                   "coupon_code": "summer26"})
    assert response.status_code == 302
    assert campaigns.coupon("SUMMER26")["uses_left"] == 9


def refused(cashier, member_no, database, data: dict, status: int = 422) -> str:
    form = open_sale_form(cashier, member_no)
    response = cashier.post(sale_path(member_no), {**form, **data})
    assert response.status_code == status, response.get_data(as_text=True)[-2000:]
    assert database.sales() == [] and database.audit("sale.record") == []
    assert database.scalars(sa.select(CouponRedemption)) == []
    html = response.get_data(as_text=True)
    # The form comes back as typed, with its one-time id, ready to correct and submit again.
    assert f'value="{form["external_id"]}"' in html
    return html


def test_a_mistyped_code_is_refused_with_the_reason(cashier, member_no, database, campaigns, ten_off):
    code = campaigns.personal(ten_off, member_no)
    typo = code[:-1] + ("2" if code[-1] != "2" else "3")
    page = refused(cashier, member_no, database, {"amount": "118.00", "subtotal": "128.00", "coupon_code": typo})
    assert f"Coupon {typo} is not a valid code. Check it for a typo." in page
    assert campaigns.coupon(code)["status"] == "issued"


def test_a_used_coupon_is_refused(cashier, member_no, database, campaigns, ten_off, factory):
    code = campaigns.personal(ten_off, member_no)
    assert factory.api_client().sale(member_no, 11800, subtotal=12800, coupons=[code]).status_code == 201
    sales_before = len(database.sales())
    form = open_sale_form(cashier, member_no)
    response = cashier.post(sale_path(member_no), {**form, "amount": "118.00", "subtotal": "128.00",
                                                   "coupon_code": code})
    assert response.status_code == 422
    assert f"Coupon {code} has already been used." in response.get_data(as_text=True)
    assert len(database.sales()) == sales_before


def test_below_min_spend_the_needed_basket_is_shown(cashier, member_no, database, campaigns, ten_off):
    code = campaigns.personal(ten_off, member_no)
    page = refused(cashier, member_no, database, {"amount": "89.00", "subtotal": "99.00", "coupon": code})
    assert f"Coupon {code} needs a basket of at least ¥100.00 before discounts." in page
    assert campaigns.coupon(code)["status"] == "issued"


def test_another_members_coupon_is_refused(cashier, member_no, database, campaigns, ten_off, factory):
    theirs = campaigns.personal(ten_off, factory.member())
    page = refused(cashier, member_no, database, {"amount": "118.00", "subtotal": "128.00", "coupon_code": theirs})
    assert f"Coupon {theirs} belongs to another member." in page


def test_an_expired_coupon_is_refused(cashier, member_no, database, campaigns, clock):
    code = campaigns.personal(campaigns.offer(value=500, valid_days=1)["id"], member_no)
    clock.advance(days=2)
    page = refused(cashier, member_no, database, {"amount": "45.00", "subtotal": "50.00", "coupon_code": code})
    assert f"Coupon {code} has expired or was withdrawn." in page


def test_a_tier_coupon_is_refused_for_another_tier(cashier, member_no, database, campaigns):
    code = campaigns.personal(campaigns.offer(value=500, tiers=["GOLD"])["id"], member_no)
    page = refused(cashier, member_no, database, {"amount": "45.00", "subtotal": "50.00", "coupon_code": code})
    assert f"Coupon {code} is not for this member&#39;s tier." in page


def test_a_coupon_needs_the_basket_before_discounts(cashier, member_no, database, campaigns, ten_off):
    code = campaigns.personal(ten_off, member_no)
    page = refused(cashier, member_no, database, {"amount": "118.00", "coupon": code})
    assert "Enter the basket before discounts to use a coupon." in page
    page = refused(cashier, member_no, database, {"amount": "118.00", "subtotal": "100.00", "coupon": code})
    assert "not less than the amount paid" in page
    page = refused(cashier, member_no, database, {"amount": "118.00", "subtotal": "12.345", "coupon": code})
    assert "Enter the basket before discounts in yuan" in page


def test_pick_or_type_not_two_different_coupons(cashier, member_no, database, campaigns, ten_off):
    first, second = campaigns.personal(ten_off, member_no), campaigns.personal(ten_off, member_no)
    page = refused(cashier, member_no, database, {"amount": "118.00", "subtotal": "128.00", "coupon": first,
                                                  "coupon_code": second})
    assert "Pick a coupon or type a code, not both." in page


def test_the_corrected_form_goes_through_once(cashier, member_no, database, campaigns, ten_off):
    code = campaigns.personal(ten_off, member_no)
    form = {**open_sale_form(cashier, member_no), "amount": "118.00", "coupon": code}
    assert cashier.post(sale_path(member_no), {**form, "subtotal": "99.00"}).status_code == 422
    first = cashier.post(sale_path(member_no), {**form, "subtotal": "128.00"})
    again = cashier.post(sale_path(member_no), {**form, "subtotal": "128.00"})
    assert first.status_code == again.status_code == 302
    assert len(database.sales()) == 1 and len(database.scalars(sa.select(CouponRedemption))) == 1
    assert "already recorded" in cashier.get(again.location).get_data(as_text=True)
    # The same form with another coupon is a different sale, refused rather than replayed.
    other = campaigns.personal(ten_off, member_no)
    conflict = cashier.post(sale_path(member_no), {**form, "subtotal": "128.00", "coupon": other})
    assert conflict.status_code == 409
    assert campaigns.coupon(other)["status"] == "issued"


def test_sales_without_a_coupon_are_as_before(cashier, member_no, database):
    form = open_sale_form(cashier, member_no)
    assert cashier.post(sale_path(member_no), {**form, "amount": "50.00"}).status_code == 302
    [sale] = database.sales()
    assert (sale.amount, sale.subtotal) == (5000, 5000)
