"""Bought-together rules on hand-built baskets with counts worked out by hand.

Baskets in the year (N = 10), SKU: category S1, S2 shoes; K1 socks; H1 hats; B1 bags:
    1-4 {S1, K1} (anonymous)     5 {S2, K1, K1} (Q; K1 twice, counted once)
    6 {H1} (R)   7 {H1}   8 {H1, B1}   9 {B1}   10 {S1} (P)
not counted: 11 {S1, H1} by P, refunded in full; 12 {S1, H1} 400 days ago.
n(S1) = 5, n(S2) = 1, n(K1) = 5, n(H1) = 3, n(B1) = 2; together: S1+K1 4, S2+K1 1, H1+B1 1.
"""

import pytest
import sqlalchemy as sa
from purchases import buy, refund

from loyalty.extensions import db
from loyalty.insights import crosssell
from loyalty.insights.models import AssociationRule
from loyalty.members.models import Member
from tests.support.clock import DEFAULT_NOW

CATEGORY = {"S1": "shoes", "S2": "shoes", "K1": "socks", "H1": "hats", "B1": "bags"}


def basket(pos, member_no, skus, days_ago=1):
    lines = [{"sku": sku, "category": CATEGORY[sku], "amount": 100} for sku in skus]
    return buy(pos, member_no, days_ago, 100 * len(skus), lines=lines)


@pytest.fixture
def baskets(factory, pos):
    members = {name: factory.member(name=name) for name in "PQR"}
    for _ in range(4):
        basket(pos, None, ["S1", "K1"])
    basket(pos, members["Q"], ["S2", "K1", "K1"])
    basket(pos, members["R"], ["H1"])
    basket(pos, None, ["H1"])
    basket(pos, None, ["H1", "B1"])
    basket(pos, None, ["B1"])
    basket(pos, members["P"], ["S1"])
    refund(pos, basket(pos, members["P"], ["S1", "H1"]), 200)
    basket(pos, None, ["S1", "H1"], days_ago=400)
    return members


def rules(level):
    return {(rule.antecedent, rule.consequent): rule for rule in
            db.session.scalars(sa.select(AssociationRule).where(AssociationRule.level == level))}


def member_id(member_no):
    return db.session.scalar(sa.select(Member.id).where(Member.member_no == member_no))


def test_rules_have_the_hand_counted_support_confidence_and_lift(app, baskets):
    with app.app_context():
        stored = crosssell.compute_rules(db.session, DEFAULT_NOW, window_days=365, min_together=2)
        db.session.commit()
        sku = rules("sku")

    assert stored == {"sku": 2, "category": 2}
    assert set(sku) == {("S1", "K1"), ("K1", "S1")}
    rule = sku[("S1", "K1")]
    assert (rule.together, rule.antecedent_baskets, rule.consequent_baskets, rule.baskets) == (4, 5, 5, 10)
    assert rule.support == pytest.approx(0.4)
    assert rule.confidence == pytest.approx(0.8)
    assert rule.lift == pytest.approx(4 * 10 / (5 * 5))
    assert rule.computed_at == DEFAULT_NOW


def test_category_rules_count_each_category_once_per_basket(app, baskets):
    with app.app_context():
        crosssell.compute_rules(db.session, DEFAULT_NOW, min_together=2)
        db.session.commit()
        category = rules("category")

    # shoes in baskets 1-5 and 10 (6), socks in 1-5 (5), together in 1-5.
    assert set(category) == {("shoes", "socks"), ("socks", "shoes")}
    assert category[("shoes", "socks")].confidence == pytest.approx(5 / 6)
    assert category[("socks", "shoes")].confidence == pytest.approx(1.0)
    assert category[("socks", "shoes")].lift == pytest.approx(5 * 10 / (6 * 5))


def test_rare_pairs_appear_only_below_the_threshold(app, baskets):
    with app.app_context():
        crosssell.compute_rules(db.session, DEFAULT_NOW, min_together=1)
        db.session.commit()
        sku = rules("sku")

    assert set(sku) == {("S1", "K1"), ("K1", "S1"), ("S2", "K1"), ("K1", "S2"), ("H1", "B1"), ("B1", "H1")}
    assert sku[("H1", "B1")].confidence == pytest.approx(1 / 3)
    assert sku[("B1", "H1")].confidence == pytest.approx(1 / 2)
    assert sku[("H1", "B1")].lift == pytest.approx(10 / 6)


def test_recomputing_replaces_the_rules(app, baskets):
    with app.app_context():
        crosssell.compute_rules(db.session, DEFAULT_NOW, min_together=1)
        crosssell.compute_rules(db.session, DEFAULT_NOW, min_together=1)
        db.session.commit()
        assert db.session.scalar(sa.select(sa.func.count()).select_from(AssociationRule)) == 6 + 4  # sku, category
        # Nothing left in the window: nothing stored.
        crosssell.compute_rules(db.session, DEFAULT_NOW.replace(year=2030), min_together=1)
        db.session.commit()
        assert db.session.scalar(sa.select(sa.func.count()).select_from(AssociationRule)) == 0


def test_suggestions_offer_what_goes_with_what_the_member_bought_and_not_what_they_have(app, baskets):
    with app.app_context():
        crosssell.compute_rules(db.session, DEFAULT_NOW, min_together=1)
        db.session.commit()

        def suggest(name, **kwargs):
            return crosssell.next_purchase_suggestions(db.session, member_id(baskets[name]), DEFAULT_NOW, **kwargs)

        # P bought S1 (their S1 + H1 basket was refunded in full, so H1 does not count as bought).
        assert [(s["item"], s["because_of"]) for s in suggest("P")] == [("K1", "S1")]
        assert suggest("P")[0]["confidence"] == pytest.approx(0.8)
        # Q bought S2 and K1: K1 -> S1 (0.8, lift 1.6); S2 -> K1 is already theirs.
        assert [s["item"] for s in suggest("Q")] == ["S1"]
        # R bought H1: H1 -> B1, lift 10/6 > 1.
        assert [s["item"] for s in suggest("R")] == ["B1"]
        assert [s["item"] for s in suggest("P", level="category")] == ["socks"]
        assert suggest("P", limit=0) == []


def test_suggestions_leave_out_rules_no_better_than_chance(app, factory, pos):
    """A and B each in 2 of 4 baskets, together in 1: lift = 1 * 4 / (2 * 2) = 1, not a suggestion."""
    buyer = factory.member()
    basket(pos, buyer, ["S1"])
    basket(pos, None, ["S1", "K1"])
    basket(pos, None, ["K1"])
    basket(pos, None, ["H1"])
    with app.app_context():
        crosssell.compute_rules(db.session, DEFAULT_NOW, min_together=1)
        db.session.commit()
        assert rules("sku")[("S1", "K1")].lift == pytest.approx(1.0)
        assert crosssell.next_purchase_suggestions(db.session, member_id(buyer), DEFAULT_NOW) == []


def test_top_pairs_list_each_pair_once_most_bought_first(app, baskets):
    with app.app_context():
        crosssell.compute_rules(db.session, DEFAULT_NOW, min_together=1)
        db.session.commit()
        pairs = crosssell.top_pairs(db.session, level="sku")

    assert [(p["first"], p["second"], p["together"]) for p in pairs] == [
        ("K1", "S1", 4), ("K1", "S2", 1), ("B1", "H1", 1)]  # ties on count: higher lift (2.0, 1.67) first
    assert pairs[2]["confidence_first_to_second"] == pytest.approx(1 / 2)
    assert pairs[2]["confidence_second_to_first"] == pytest.approx(1 / 3)
    assert pairs[0]["lift"] == pytest.approx(1.6)


def test_sales_without_lines_or_categories_are_no_baskets(app, factory, pos):
    buy(pos, factory.member(), 1, 500)
    buy(pos, None, 1, 300, lines=[{"sku": "X1", "amount": 300}])
    with app.app_context():
        assert crosssell.compute_rules(db.session, DEFAULT_NOW, min_together=1) == {"sku": 0, "category": 0}


def test_an_unknown_level_is_refused():
    with pytest.raises(ValueError):
        crosssell.rules_select("brand", DEFAULT_NOW, DEFAULT_NOW, 1, DEFAULT_NOW)

