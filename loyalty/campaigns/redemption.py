"""Coupons at the till: checking them against a basket, redeeming them inside a sale, and giving them
back when the sale is refunded in full.

Checking (`plan_coupons`, also behind `POST /coupons/validate`) reads and changes nothing. The first
failing rule names the reason, checked in this order: unknown, used / limit-reached (the coupon's own
uses), expired (also void), not-yet-valid, not-this-member, tier, limit-reached (the member's uses of
the offer), budget-exhausted, min-spend, conditions.

Stacking. One coupon per offer kind may be combined with others only if every coupon in the sale is
`stackable`; a non-stackable coupon stands alone (listing it with any other is `conditions`). The same
code twice in one sale is `conditions` too.

How much each coupon gives, and in which order they apply: loyalty.campaigns.discounts.

Redeeming (`redeem_coupons`) enforces every limit in the database, not by read-then-write: inside a
SAVEPOINT, the coupon's use (`UPDATE coupons ... WHERE status = 'issued' AND uses_count < uses_limit`),
the member's use of the offer (`... WHERE uses + n <= per_member_limit`) and the offer's budget
(`... WHERE redeemed_count + n <= budget_count AND discount_given + d <= budget_amount`) are each one
conditional UPDATE whose row count says whether it won. A loser rolls the savepoint back, so the sale
records nothing and the batch it belongs to goes on. Rows are locked in one order (coupons by id,
member uses, offers by id), after the member rows the sale already holds, so redemptions cannot
deadlock each other.

Refunds. A refund that brings the sale to fully refunded gives its coupons back: each coupon's use is
returned (a single-use coupon is `issued` again, or `expired` if its validity has passed), and the
member's use and the offer's redeemed count and discount given are returned too, so budgets and
limits count only sales that stood. A partial refund changes nothing about coupons, even when what the
customer keeps falls below the offer's min spend: the coupon stays redeemed and its discount stays
spent from the budget. The refund `amount` is the money the till pays back, so a till that wants the
customer to lose the discount they no longer qualify for pays back that much less (the points side
needs nothing: earning was on the amount paid, and reversal is in proportion). Refunding the rest later
completes the sale's refund and gives the coupon back then.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from loyalty.campaigns import codes
from loyalty.campaigns.discounts import AppliedCoupon, apply_discounts, matches_conditions
from loyalty.campaigns.models import Coupon, CouponRedemption, Offer, OfferMemberUse
from loyalty.errors import CouponInvalid
from loyalty.members.models import Member


@dataclass
class CouponPlan:
    """The coupons of one sale, checked, in order of application, with what each gives."""

    member: Member | None
    applied: list[AppliedCoupon] = field(default_factory=list)

    @property
    def discount(self) -> int:
        return sum(item.discount for item in self.applied)

    def response(self) -> list[dict]:
        """`coupons` of the sale response, in the order the client listed them."""
        listed = sorted(self.applied, key=lambda item: item.listed_at)
        return [{"code": item.code, "discount": item.discount} for item in listed]

    def extra_points(self, sale_points: int) -> int:
        """What the points coupons add to a sale earning `sale_points` before the tier multiplier."""
        extra = 0
        for item in self.applied:
            if item.offer.kind == "bonus_points":
                extra += item.offer.value
            elif item.offer.kind == "points_multiplier":
                extra += sale_points * (item.offer.value - 100) // 100
        return extra

    @property
    def earns_points(self) -> bool:
        return any(item.offer.kind in ("bonus_points", "points_multiplier") for item in self.applied)


def invalid(reason: str, code: str, explanation: str) -> CouponInvalid:
    """`detail` starts with the reason, so a till can show it and a program can read it."""
    return CouponInvalid(f"{reason}: coupon {code} {explanation}", reason=reason, code=code)


# --- checking ------------------------------------------------------------------------------------

def find_coupons(session: Session, normalized: Sequence[str]) -> dict[str, Coupon]:
    """Coupons by normalised code, read fresh. Generated-looking codes with a wrong check character
    are typos: they are not looked up at all."""
    wanted = [code for code in normalized
              if code and (not codes.is_generated_shape(code) or codes.has_valid_check(code))]
    if not wanted:
        return {}
    found = session.scalars(
        sa.select(Coupon).where(Coupon.code.in_(wanted)).execution_options(populate_existing=True)
    )
    return {coupon.code: coupon for coupon in found}


def plan_coupons(session: Session, raw_codes: Sequence[str], member: Member | None, *, subtotal: int,
                 lines: Sequence[dict], now: datetime) -> CouponPlan:
    """Check a sale's coupons and work out what each gives; raises CouponInvalid for the first that
    fails. Reads only."""
    plan = CouponPlan(member=member)
    if not raw_codes:
        return plan
    normalized = [codes.normalize(raw) for raw in raw_codes]
    found = find_coupons(session, normalized)
    limited = {coupon.offer_id for coupon in found.values() if coupon.offer.per_member_limit is not None}
    member_uses = _member_uses(session, member, limited)
    seen: set[str] = set()
    for position, code in enumerate(normalized):
        if code in seen:
            raise invalid("conditions", raw_codes[position], "is listed twice in this sale")
        seen.add(code)
        coupon = found.get(code)
        if coupon is None:
            # Echoed as sent: a code we do not know is not ours to reformat.
            raise invalid("unknown", raw_codes[position], "is not a valid code (check for a typo)")
        _check_coupon(coupon, member, member_uses, subtotal, lines, now)
        member_uses[coupon.offer_id] = member_uses.get(coupon.offer_id, 0) + 1
        plan.applied.append(AppliedCoupon(coupon=coupon, offer=coupon.offer, listed_at=position))
    _check_stacking(plan.applied)
    nothing_to_free = apply_discounts(plan.applied, subtotal, lines)
    if nothing_to_free is not None:
        raise invalid("conditions", nothing_to_free.code, "has no line left to make free")
    _check_budgets(plan.applied)
    return plan


def preview_coupon(session: Session, raw_code: str, member: Member | None, *, subtotal: int,
                   lines: Sequence[dict], now: datetime) -> dict:
    """`POST /coupons/validate`: would this coupon, alone, apply to this basket, and for how much?"""
    try:
        plan = plan_coupons(session, [raw_code], member, subtotal=subtotal, lines=lines, now=now)
    except CouponInvalid as error:
        return {"code": error.code, "valid": False, "reason": error.reason, "discount": 0}
    applied = plan.applied[0]
    return {"code": applied.code, "valid": True, "reason": None, "discount": applied.discount}


def _member_uses(session: Session, member: Member | None, offer_ids: set[int]) -> dict[int, int]:
    if member is None or not offer_ids:
        return {}
    rows = session.execute(
        sa.select(OfferMemberUse.offer_id, OfferMemberUse.uses)
        .where(OfferMemberUse.member_id == member.id, OfferMemberUse.offer_id.in_(offer_ids))
    )
    return {offer_id: uses for offer_id, uses in rows}


def coupon_has_ended(coupon: Coupon, offer: Offer, now: datetime) -> bool:
    return ((coupon.expires_at is not None and coupon.expires_at <= now)
            or (offer.valid_until is not None and offer.valid_until <= now))


def _check_coupon_state(coupon: Coupon, now: datetime) -> None:
    """The coupon's own state: its uses, void, expiry."""
    shown = codes.display(coupon.code)
    if coupon.status == "redeemed" or coupon.uses_count >= coupon.uses_limit:
        if coupon.generic:
            raise invalid("limit-reached", shown, f"has been used its {coupon.uses_limit} time(s)")
        raise invalid("used", shown, "has already been used")
    if coupon.status == "void":
        raise invalid("expired", shown, "was voided")
    if coupon.status == "expired" or coupon_has_ended(coupon, coupon.offer, now):
        raise invalid("expired", shown, "has expired")


def _check_coupon(coupon: Coupon, member: Member | None, member_uses: dict[int, int], subtotal: int,
                  lines: Sequence[dict], now: datetime) -> None:
    offer, shown = coupon.offer, codes.display(coupon.code)
    _check_coupon_state(coupon, now)
    if offer.valid_from is not None and offer.valid_from > now:
        raise invalid("not-yet-valid", shown, f"is valid from {offer.valid_from.isoformat()}")
    if coupon.member_id is not None and (member is None or member.id != coupon.member_id):
        raise invalid("not-this-member", shown, "belongs to another member")
    if member is None and (offer.kind not in ("amount_off", "percent_off", "free_item") or offer.per_member_limit):
        raise invalid("not-this-member", shown, "needs the sale to name the member")
    if offer.tiers and (member is None or member.tier.code not in offer.tiers):
        raise invalid("tier", shown, f"is for tiers {', '.join(offer.tiers)} only")
    if offer.per_member_limit is not None and member_uses.get(offer.id, 0) >= offer.per_member_limit:
        raise invalid("limit-reached", shown, f"offer may be used {offer.per_member_limit} time(s) per member")
    if offer.budget_count is not None and offer.redeemed_count >= offer.budget_count:
        raise invalid("budget-exhausted", shown, "offer's budget is spent")
    if offer.budget_amount is not None and offer.discount_given >= offer.budget_amount:
        raise invalid("budget-exhausted", shown, "offer's budget is spent")
    if subtotal < offer.min_spend:
        raise invalid("min-spend", shown, f"needs a subtotal of at least {offer.min_spend}")
    if (offer.skus or offer.categories) and not any(matches_conditions(offer, line) for line in lines):
        raise invalid("conditions", shown, "needs a line with one of its SKUs or categories")


def _check_stacking(applied: list[AppliedCoupon]) -> None:
    if len(applied) < 2:
        return
    for item in applied:
        if not item.offer.stackable:
            raise invalid("conditions", item.code, "cannot be combined with other coupons")


def _check_budgets(applied: list[AppliedCoupon]) -> None:
    """Budgets again, now that the discounts are known (the database decides for real at redemption)."""
    counts: dict[int, int] = {}
    given: dict[int, int] = {}
    for item in applied:
        offer = item.offer
        counts[offer.id] = counts.get(offer.id, 0) + 1
        given[offer.id] = given.get(offer.id, 0) + item.discount
        if offer.budget_count is not None and offer.redeemed_count + counts[offer.id] > offer.budget_count:
            raise invalid("budget-exhausted", item.code, "offer's budget is spent")
        if offer.budget_amount is not None and offer.discount_given + given[offer.id] > offer.budget_amount:
            raise invalid("budget-exhausted", item.code, "offer's budget does not cover this discount")


# --- redeeming -----------------------------------------------------------------------------------

def redeem_coupons(session: Session, plan: CouponPlan, now: datetime) -> None:
    """Claim a checked plan's coupons for a sale not yet written. Each limit is one conditional
    UPDATE; if any loses a race, everything this call did is rolled back to the savepoint and
    CouponInvalid says why. Call it before writing anything else of the sale, and
    `record_redemptions` once the sale row has its id."""
    if not plan.applied:
        return
    # On SQLite the SAVEPOINT opens the transaction, with the write lock (loyalty/db.py).
    with session.begin_nested():
        for item in sorted(plan.applied, key=lambda item: item.coupon.id):
            _claim_coupon_use(session, item, now)
        if plan.member is not None:
            _claim_member_uses(session, plan)
        _claim_budgets(session, plan)
    for item in plan.applied:
        # Only the counters the UPDATEs moved are stale; they reload if anyone reads them.
        session.expire(item.coupon, ["uses_count", "status", "redeemed_at"])
        session.expire(item.offer, ["redeemed_count", "discount_given"])


def record_redemptions(session: Session, plan: CouponPlan, transaction_id: int, now: datetime) -> None:
    """The CouponRedemption rows of a claimed plan, for the written sale `transaction_id`."""
    for item in plan.applied:
        session.add(CouponRedemption(
            coupon_id=item.coupon.id, offer_id=item.offer.id, member_id=plan.member.id if plan.member else None,
            transaction_id=transaction_id, discount=item.discount, created_at=now,
        ))


def _claim_coupon_use(session: Session, item: AppliedCoupon, now: datetime) -> None:
    coupons = Coupon.__table__
    claimed = session.execute(
        sa.update(coupons)
        .where(coupons.c.id == item.coupon.id, coupons.c.status == "issued",
               coupons.c.uses_count < coupons.c.uses_limit,
               sa.or_(coupons.c.expires_at.is_(None), coupons.c.expires_at > now))
        .values(uses_count=coupons.c.uses_count + 1, redeemed_at=now,
                status=sa.case((coupons.c.uses_count + 1 >= coupons.c.uses_limit, "redeemed"), else_="issued"))
    ).rowcount
    if claimed != 1:
        # Another sale got there first (or it was voided or expired meanwhile): say which.
        session.refresh(item.coupon)
        _check_coupon_state(item.coupon, now)
        raise invalid("used", item.code, "has already been used")


def _claim_member_uses(session: Session, plan: CouponPlan) -> None:
    uses = OfferMemberUse.__table__
    wanted: dict[int, tuple[int, AppliedCoupon]] = {}
    for item in plan.applied:
        if item.offer.per_member_limit is not None:
            count, _ = wanted.get(item.offer.id, (0, item))
            wanted[item.offer.id] = (count + 1, item)
    for offer_id in sorted(wanted):
        count, item = wanted[offer_id]
        _insert_ignoring_conflict(session, uses, {"offer_id": offer_id, "member_id": plan.member.id, "uses": 0})
        claimed = session.execute(
            sa.update(uses)
            .where(uses.c.offer_id == offer_id, uses.c.member_id == plan.member.id,
                   uses.c.uses + count <= item.offer.per_member_limit)
            .values(uses=uses.c.uses + count)
        ).rowcount
        if claimed != 1:
            raise invalid("limit-reached", item.code,
                          f"offer may be used {item.offer.per_member_limit} time(s) per member")


def _claim_budgets(session: Session, plan: CouponPlan) -> None:
    offers = Offer.__table__
    totals: dict[int, tuple[int, int, AppliedCoupon]] = {}
    for item in plan.applied:
        count, discount, _ = totals.get(item.offer.id, (0, 0, item))
        totals[item.offer.id] = (count + 1, discount + item.discount, item)
    for offer_id in sorted(totals):
        count, discount, item = totals[offer_id]
        claimed = session.execute(
            sa.update(offers)
            .where(offers.c.id == offer_id,
                   sa.or_(offers.c.budget_count.is_(None), offers.c.redeemed_count + count <= offers.c.budget_count),
                   sa.or_(offers.c.budget_amount.is_(None),
                          offers.c.discount_given + discount <= offers.c.budget_amount))
            .values(redeemed_count=offers.c.redeemed_count + count,
                    discount_given=offers.c.discount_given + discount)
        ).rowcount
        if claimed != 1:
            raise invalid("budget-exhausted", item.code, "offer's budget is spent")


def _insert_ignoring_conflict(session: Session, table: sa.Table, values: dict) -> None:
    dialect = session.connection().dialect.name
    insert = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}[dialect]
    session.execute(insert(table).values(**values).on_conflict_do_nothing())


# --- giving back ---------------------------------------------------------------------------------

def give_back_coupons(session: Session, sale, now: datetime) -> list[CouponRedemption]:
    """On the refund that completes a sale's refund: return each coupon's use, the member's use and the
    offer's budget (see "Refunds" above). The caller holds the sale row locked, so this runs once."""
    redemptions = session.scalars(
        sa.select(CouponRedemption)
        .where(CouponRedemption.transaction_id == sale.id, CouponRedemption.reversed_at.is_(None))
        .order_by(CouponRedemption.coupon_id)
    ).all()
    coupons, uses, offers = Coupon.__table__, OfferMemberUse.__table__, Offer.__table__
    totals: dict[int, tuple[int, int]] = {}
    for redemption in redemptions:
        redemption.reversed_at = now
        coupon = session.get(Coupon, redemption.coupon_id)
        back_to = "expired" if coupon_has_ended(coupon, coupon.offer, now) else "issued"
        session.execute(
            sa.update(coupons).where(coupons.c.id == coupon.id, coupons.c.uses_count > 0)
            .values(uses_count=coupons.c.uses_count - 1,
                    status=sa.case((coupons.c.status == "redeemed", back_to), else_=coupons.c.status))
        )
        if redemption.member_id is not None and coupon.offer.per_member_limit is not None:
            session.execute(
                sa.update(uses).where(uses.c.offer_id == redemption.offer_id,
                                      uses.c.member_id == redemption.member_id, uses.c.uses > 0)
                .values(uses=uses.c.uses - 1)
            )
        count, discount = totals.get(redemption.offer_id, (0, 0))
        totals[redemption.offer_id] = (count + 1, discount + redemption.discount)
    for offer_id in sorted(totals):
        count, discount = totals[offer_id]
        session.execute(
            sa.update(offers).where(offers.c.id == offer_id)
            .values(redeemed_count=offers.c.redeemed_count - count, discount_given=offers.c.discount_given - discount)
        )
    # The ORM copies are stale after the UPDATEs above (nothing of them was changed in Python).
    for redemption in redemptions:
        coupon = session.get(Coupon, redemption.coupon_id)
        session.expire(coupon.offer)
        session.expire(coupon)
    return list(redemptions)
