"""Services the marketing console and staff screens call: editing an offer, its redemptions and cost."""

import pytest
import sqlalchemy as sa

from loyalty.auth.models import AuditEvent
from loyalty.campaigns import services
from loyalty.campaigns.offer_rules import OfferSpec
from loyalty.clock import utcnow
from loyalty.errors import ValidationFailed
from loyalty.extensions import db


def test_editing_an_offer_keeps_budgets_above_what_is_spent_and_shortens_coupons(app, campaigns, factory, pos):
    member_no = factory.member()
    offer = campaigns.offer(value=1000, budget_amount=50000, valid_days=30)
    used = campaigns.personal(offer["id"], member_no)
    waiting = campaigns.personal(offer["id"], member_no)
    pos.sale(member_no, 11800, subtotal=12800, coupons=[used])

    with app.app_context():
        row = services.get_offer(db.session, offer["id"])
        with pytest.raises(ValidationFailed) as refused:
            services.update_offer(db.session, row, {"budget_amount": 999}, now=utcnow())
        assert "budget_amount" in refused.value.errors
        db.session.rollback()
        with pytest.raises(ValidationFailed):
            services.update_offer(db.session, row, {"value": 5}, now=utcnow())
        db.session.rollback()
        services.update_offer(db.session, row, {"budget_amount": 1000, "valid_until": utcnow().replace(day=25)},
                              now=utcnow())
        db.session.commit()
        assert db.session.scalar(sa.select(AuditEvent.action).order_by(AuditEvent.id.desc()).limit(1)) == "offer.update"

    assert campaigns.coupon(waiting)["expires_at"] == "2026-11-25T02:00:00Z"
    assert campaigns.coupon(used)["expires_at"] == "2026-12-22T02:00:00Z"  # redeemed: history stays as it was
    assert campaigns.get_offer(offer["id"])["budget_amount"] == 1000


def test_the_service_checks_every_rule_of_an_offer_whoever_calls(app, campaigns):
    """Ranges first, in the API's words; only then the rules between fields."""
    offer_id = campaigns.offer(value=1000)["id"]

    with app.app_context():
        with pytest.raises(ValidationFailed) as out_of_range:
            services.create_offer(db.session, OfferSpec(name="Free coffee", kind="free_item", max_discount=0,
                                                        categories=("drinks",)), now=utcnow())
        assert out_of_range.value.errors == {
            "max_discount": ["Must be greater than or equal to 1 and less than or equal to 1000000000000."]}
        with pytest.raises(ValidationFailed) as against_its_kind:
            services.create_offer(db.session, OfferSpec(name="Free coffee", kind="free_item", value=3,
                                                        categories=("drinks",)), now=utcnow())
        assert set(against_its_kind.value.errors) == {"value", "skus", "categories"}
        with pytest.raises(ValidationFailed) as edited:
            services.update_offer(db.session, services.get_offer(db.session, offer_id), {"valid_days": 0},
                                  now=utcnow())
        assert set(edited.value.errors) == {"valid_days"}
        db.session.rollback()


def test_redemptions_with_their_sales_for_the_marketing_console(app, campaigns, factory, pos):
    offer = campaigns.offer(value=700)
    code = campaigns.generic(offer["id"], limit=10)
    for number in range(3):
        pos.sale(factory.member(), 12100, subtotal=12800, coupons=[code], external_id=f"S-{number}")
    pos.post("/transactions/S-0/refunds", json={"external_id": "R-0", "amount": 12100})

    with app.app_context():
        rows = services.offer_redemptions(db.session, services.get_offer(db.session, offer["id"]))
        assert [(row.transaction.external_id, row.discount, row.reversed_at is not None) for row in rows] == [
            ("S-2", 700, False), ("S-1", 700, False), ("S-0", 700, True)]
    assert campaigns.get_offer(offer["id"])["discount_given"] == 1400
