"""Cross-sell in the member's 360° view: the top next-purchase suggestions once the rules are computed."""

import pytest

from loyalty.extensions import db
from loyalty.insights import crosssell
from tests.support.clock import DEFAULT_NOW

YESTERDAY = "2026-11-21T10:00:00+08:00"


def lines(*skus):
    category = {"S1": "shoes", "K1": "socks"}
    return [{"sku": sku, "category": category[sku], "amount": 100} for sku in skus]


@pytest.fixture
def cashier(console, staff):
    return console.sign_in_staff(staff.cashier)


def test_member_who_bought_the_antecedent_is_offered_the_consequent(app, cashier, member_no, pos):
    html = cashier.get(f"/staff/members/{member_no}").get_data(as_text=True)
    assert "Suggested next" in html and "No suggestions yet." in html

    for _ in range(4):  # shoes and socks go together in other people's baskets...
        assert pos.sale(None, 200, occurred_at=YESTERDAY, lines=lines("S1", "K1")).status_code == 201
    for _ in range(2):  # ...more than chance: some baskets hold neither
        assert pos.sale(None, 100, occurred_at=YESTERDAY, lines=[
            {"sku": "H1", "category": "hats", "amount": 100}]).status_code == 201
    assert pos.sale(member_no, 100, occurred_at=YESTERDAY, lines=lines("S1")).status_code == 201
    with app.app_context():
        crosssell.compute_rules(db.session, DEFAULT_NOW, min_together=2)
        db.session.commit()

    html = cashier.get(f"/staff/members/{member_no}").get_data(as_text=True)
    assert "No suggestions yet." not in html
    assert '<strong class="suggested-item">K1</strong>' in html
    assert "bought with S1 in 80% of baskets" in html
    assert '<strong class="suggested-item">S1</strong>' not in html  # already bought
