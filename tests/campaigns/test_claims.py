"""The database decides: a coupon that passed its checks but loses the race at redemption refuses the
sale, and undoes the claims made before it in the same sale (the savepoint); and a redemption is part
of the caller's transaction, rolled back with it (on SQLite too, where a savepoint taken first would
otherwise commit on release)."""

import sqlalchemy as sa

from loyalty.auth.models import ApiClient
from loyalty.campaigns import codes
from loyalty.campaigns.models import Coupon, Offer, OfferMemberUse
from loyalty.campaigns.redemption import plan_coupons, record_redemptions, redeem_coupons
from loyalty.clock import utcnow
from loyalty.errors import CouponInvalid
from loyalty.extensions import db
from loyalty.members.models import Member
from loyalty.sales.models import Transaction


def load(session, member_no):
    return session.scalar(sa.select(Member).where(Member.member_no == member_no))


def sale_row(member):
    # The ids of whatever client and store the test made: sequences are not reset between tests.
    client = db.session.scalar(sa.select(ApiClient).order_by(ApiClient.id))
    return Transaction(client_id=client.id, kind="sale", external_id="T-1", store_id=client.store_id,
                       member_id=member.id, channel="pos", occurred_at=utcnow(), currency="CNY", amount=10800,
                       subtotal=12800)


def counters(code):
    coupon = db.session.scalar(sa.select(Coupon).where(Coupon.code == codes.normalize(code)))
    return coupon.status, coupon.uses_count, coupon.offer.redeemed_count, coupon.offer.discount_given


def other_till(app, statement):
    """Another connection changes the database and commits, as a concurrent sale would."""
    with db.engine.begin() as connection:
        connection.execute(statement)


def test_a_claim_lost_after_the_checks_rolls_back_the_sales_earlier_claims(app, campaigns, factory):
    member_no = factory.member()
    limited = campaigns.offer(stackable=True, per_member_limit=3)
    first = campaigns.personal(limited["id"], member_no)  # lower coupon id: claimed first
    second = campaigns.personal(campaigns.offer(stackable=True, budget_count=1)["id"], member_no)

    with app.app_context():
        session = db.session
        member = load(session, member_no)
        plan = plan_coupons(session, [first, second], member, subtotal=12800, lines=[], now=utcnow())
        # Between the checks and the redemption, another till spends the second offer's budget.
        other_till(app, sa.update(Offer).where(Offer.id != limited["id"]).values(redeemed_count=1))

        try:
            redeem_coupons(session, plan, utcnow())
        except CouponInvalid as error:
            refused = error
        session.commit()  # what the caller does for the other sales of its batch

        assert refused.reason == "budget-exhausted"
        session.expire_all()
        assert counters(first) == ("issued", 0, 0, 0)
        assert session.scalar(sa.select(sa.func.count()).select_from(OfferMemberUse).where(
            OfferMemberUse.uses > 0)) == 0


def test_a_coupon_used_meanwhile_is_refused_as_used(app, campaigns, factory):
    member_no = factory.member()
    code = campaigns.generic(campaigns.offer()["id"], limit=1)

    with app.app_context():
        session = db.session
        member = load(session, member_no)
        plan = plan_coupons(session, [code], member, subtotal=12800, lines=[], now=utcnow())
        other_till(app, sa.update(Coupon).values(uses_count=1, status="redeemed"))
        try:
            redeem_coupons(session, plan, utcnow())
        except CouponInvalid as error:
            assert error.reason == "limit-reached"
        else:
            raise AssertionError("the claim should have lost")


def test_redemption_is_rolled_back_with_the_callers_transaction(app, campaigns, factory):
    member_no = factory.member()
    code = campaigns.personal(campaigns.offer()["id"], member_no)

    with app.app_context():
        session = db.session
        member = load(session, member_no)
        plan = plan_coupons(session, [code], member, subtotal=12800, lines=[], now=utcnow())
        redeem_coupons(session, plan, utcnow())
        assert counters(code)[:2] == ("redeemed", 1)
        session.rollback()  # e.g. the sale failed later, or its idempotency record lost a race

        session.expire_all()
        assert counters(code) == ("issued", 0, 0, 0)


def test_a_lost_claim_leaves_the_earlier_sales_of_its_batch_alone(app, campaigns, factory):
    first_no, second_no = factory.member(), factory.member()
    kept = campaigns.personal(campaigns.offer()["id"], first_no)
    lost = campaigns.personal(campaigns.offer(budget_count=1)["id"], second_no)

    with app.app_context():
        session = db.session
        first, second = load(session, first_no), load(session, second_no)
        # Sale 2 is checked; then another till spends its budget (before this session writes: SQLite
        # lets one writer at a time); then sale 1 is redeemed, its rows left pending in the session.
        plan = plan_coupons(session, [lost], second, subtotal=12800, lines=[], now=utcnow())
        other_till(app, sa.update(Offer).where(Offer.budget_count.is_not(None)).values(redeemed_count=1))
        kept_plan = plan_coupons(session, [kept], first, subtotal=12800, lines=[], now=utcnow())
        redeem_coupons(session, kept_plan, utcnow())
        sale = sale_row(first)
        session.add(sale)
        session.flush()
        record_redemptions(session, kept_plan, sale.id, utcnow())
        try:
            redeem_coupons(session, plan, utcnow())
        except CouponInvalid:
            pass
        session.commit()

        session.expire_all()
        assert session.scalar(sa.select(sa.func.count()).select_from(Transaction)) == 1
        assert counters(kept) == ("redeemed", 1, 1, 1000)
        assert counters(lost)[:2] == ("issued", 0)
