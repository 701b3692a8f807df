"""Offers and coupons: creating and editing offers, issuing, finding and voiding coupons, a member's
usable coupons, and expiry. Verbs take a session and flush; the caller commits.

At the till, see loyalty.campaigns.redemption; bulk issue and CSV export, loyalty.campaigns.batches.
"""

from dataclasses import asdict, dataclass, replace
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session, contains_eager, joinedload

from loyalty.audit import record_audit
from loyalty.auth.models import ApiClient, StaffUser
from loyalty.campaigns import codes
from loyalty.campaigns.models import Coupon, CouponRedemption, Offer, OfferMemberUse
from loyalty.campaigns.offer_rules import LIST_FIELDS, OfferSpec, check_offer
from loyalty.campaigns.redemption import invalid
from loyalty.errors import NotFound, ValidationFailed
from loyalty.members.models import Member
from loyalty.points.models import Tier
from loyalty.sales.models import Transaction

# What may change once an offer exists: not its kind or value, which coupons in wallets promise.
EDITABLE_FIELDS = ("name", "min_spend", "max_discount", "skus", "categories", "valid_from", "valid_until",
                   "valid_days", "tiers", "per_member_limit", "budget_count", "budget_amount", "stackable")
EXPIRY_BATCH = 10_000


@dataclass(frozen=True)
class OfferReport:
    """An offer with what it has cost so far (the marketer's view and `GET /offers/{id}`)."""

    offer: Offer
    issued_count: int

    @property
    def redeemed_count(self) -> int:
        return self.offer.redeemed_count

    @property
    def discount_given(self) -> int:
        return self.offer.discount_given


# --- offers --------------------------------------------------------------------------------------

def create_offer(session: Session, spec: OfferSpec, *, now: datetime, api_client: ApiClient | None = None,
                 staff_user: StaffUser | None = None) -> Offer:
    """A new offer, once `spec` keeps every rule (offer_rules.check_offer) and names known tiers."""
    check_offer(spec)
    values = {**asdict(spec), "value": spec.value or 0}
    for name in LIST_FIELDS:
        values[name] = list(dict.fromkeys(values[name]))
    _check_tiers(session, values["tiers"])
    offer = Offer(**values, redeemed_count=0, discount_given=0, created_at=now,
                  created_by_client_id=api_client.id if api_client else None,
                  created_by_staff_id=staff_user.id if staff_user else None)
    session.add(offer)
    session.flush()
    record_audit(session, action="offer.create", actor=staff_user, api_client=api_client, at=now,
                 after={"offer_id": offer.id, "name": offer.name})
    return offer


def update_offer(session: Session, offer: Offer, changes: dict, *, now: datetime,
                 staff_user: StaffUser | None = None, api_client: ApiClient | None = None) -> Offer:
    """Edit an offer (marketing console): `changes` maps OfferSpec field names to their new values, and
    the offer they make must keep every rule a new one does. Budgets cannot go below what is already
    spent; ending the offer earlier shortens its coupons too, so the expiry job and wallets agree with
    the till."""
    unknown = set(changes) - set(EDITABLE_FIELDS)
    if unknown:
        raise ValidationFailed("these fields cannot change once an offer exists",
                               errors={name: ["Cannot be changed."] for name in sorted(unknown)})
    check_offer(replace(OfferSpec.of(offer), **{
        name: tuple(value or ()) if name in LIST_FIELDS else value for name, value in changes.items()}))
    locked = session.scalar(sa.select(Offer).where(Offer.id == offer.id).with_for_update()
                            .execution_options(populate_existing=True))
    before = {name: getattr(locked, name) for name in changes}
    errors = {}
    if changes.get("budget_count") is not None and changes["budget_count"] < locked.redeemed_count:
        errors["budget_count"] = [f"Already {locked.redeemed_count} redeemed."]
    if changes.get("budget_amount") is not None and changes["budget_amount"] < locked.discount_given:
        errors["budget_amount"] = [f"Already {locked.discount_given} given."]
    if "tiers" in changes:
        _check_tiers(session, changes["tiers"] or [])
    if errors:
        raise ValidationFailed("the offer's budget is already spent beyond that", errors=errors)
    for name, value in changes.items():
        setattr(locked, name, list(value or []) if name in LIST_FIELDS else value)
    if changes.get("valid_until") is not None:
        coupons = Coupon.__table__
        session.execute(
            sa.update(coupons).where(coupons.c.offer_id == locked.id, coupons.c.status == "issued",
                                     sa.or_(coupons.c.expires_at.is_(None),
                                            coupons.c.expires_at > changes["valid_until"]))
            .values(expires_at=changes["valid_until"])
        )
    session.flush()
    record_audit(session, action="offer.update", actor=staff_user, api_client=api_client, at=now,
                 before={"offer_id": locked.id, **before}, after={"offer_id": locked.id, **changes})
    return locked


def get_offer(session: Session, offer_id: int) -> Offer:
    offer = session.get(Offer, offer_id)
    if offer is None:
        raise NotFound(f"no offer has the id {offer_id}")
    return offer


def offer_report(session: Session, offer: Offer) -> OfferReport:
    issued = session.scalar(sa.select(sa.func.count()).select_from(Coupon).where(Coupon.offer_id == offer.id))
    return OfferReport(offer=offer, issued_count=issued or 0)


def offer_reports(session: Session, offers: list[Offer]) -> list[OfferReport]:
    """Reports for a page of offers, counting their coupons in one query rather than one per offer."""
    ids = [offer.id for offer in offers]
    issued = dict(session.execute(
        sa.select(Coupon.offer_id, sa.func.count()).where(Coupon.offer_id.in_(ids)).group_by(Coupon.offer_id)
    ).all()) if ids else {}
    return [OfferReport(offer=offer, issued_count=issued.get(offer.id, 0)) for offer in offers]


def offer_redemptions(session: Session, offer: Offer, *, limit: int = 50,
                      before_id: int | None = None) -> list[CouponRedemption]:
    """The offer's redemptions, newest first, each with its sale (`.transaction`) and coupon: what the
    marketing console shows as redemptions and cost. Reversed ones (`reversed_at`) were fully refunded."""
    query = (sa.select(CouponRedemption).where(CouponRedemption.offer_id == offer.id)
             .options(joinedload(CouponRedemption.transaction).joinedload(Transaction.member),
                      joinedload(CouponRedemption.coupon))
             .order_by(CouponRedemption.id.desc()).limit(limit))
    if before_id is not None:
        query = query.where(CouponRedemption.id < before_id)
    return list(session.scalars(query))


def list_offers(session: Session, *, limit: int = 50, after_id: int | None = None) -> list[Offer]:
    """Newest first, for the marketing console."""
    query = sa.select(Offer).order_by(Offer.id.desc()).limit(limit)
    if after_id is not None:
        query = query.where(Offer.id < after_id)
    return list(session.scalars(query))


def _check_tiers(session: Session, tier_codes: list[str]) -> None:
    if not tier_codes:
        return
    known = set(session.scalars(sa.select(Tier.code).where(Tier.code.in_(tier_codes))))
    missing = [code for code in tier_codes if code not in known]
    if missing:
        raise ValidationFailed("unknown tier",
                               errors={"tiers": [f"No tier has the code {code!r}." for code in missing]})


# --- issuing -------------------------------------------------------------------------------------

def coupon_expiry(offer: Offer, issued_at: datetime, *, single_use: bool) -> datetime | None:
    """A single-use coupon lives `valid_days` from issue; nothing outlives the offer's `valid_until`."""
    ends = offer.valid_until
    if single_use and offer.valid_days:
        by_days = issued_at + timedelta(days=offer.valid_days)
        ends = by_days if ends is None else min(ends, by_days)
    return ends


def refuse_ended_offer(offer: Offer, now: datetime) -> None:
    if offer.valid_until is not None and offer.valid_until <= now:
        raise ValidationFailed("the offer has ended", errors={"offer": ["Its valid_until has passed."]})


def issue_personal_coupon(session: Session, offer: Offer, member: Member, *, now: datetime,
                          api_client: ApiClient | None = None, staff_user: StaffUser | None = None) -> Coupon:
    """One single-use coupon in the member's wallet."""
    refuse_ended_offer(offer, now)
    coupon = Coupon(code=_unused_code(session), offer=offer, member_id=member.id, generic=False, status="issued",
                    uses_limit=1, uses_count=0, expires_at=coupon_expiry(offer, now, single_use=True), issued_at=now)
    session.add(coupon)
    session.flush()
    record_audit(session, action="coupon.issue", actor=staff_user, api_client=api_client, member_id=member.id,
                 at=now, after={"coupon_id": coupon.id, "offer_id": offer.id})
    return coupon


def create_generic_code(session: Session, offer: Offer, *, limit: int, now: datetime, code: str | None = None,
                        api_client: ApiClient | None = None, staff_user: StaffUser | None = None) -> Coupon:
    """One shared code usable `limit` times in all (by anyone, within the offer's other rules). A
    marketer may choose the code (`SUMMER10`); without one a generated code is used."""
    refuse_ended_offer(offer, now)
    if code is None:
        normalized = _unused_code(session)
    else:
        normalized = codes.normalize(code)
        if not codes.is_acceptable_generic(normalized):
            raise ValidationFailed("unusable code", errors={"code": [
                "4 to 32 letters and digits, and not 12 long (the length of generated codes)."]})
        if session.scalar(sa.select(Coupon.id).where(Coupon.code == normalized)) is not None:
            raise ValidationFailed("code taken", errors={"code": ["Another coupon has this code."]})
    coupon = Coupon(code=normalized, offer=offer, member_id=None, generic=True, status="issued", uses_limit=limit,
                    uses_count=0, expires_at=coupon_expiry(offer, now, single_use=False), issued_at=now)
    session.add(coupon)
    session.flush()
    record_audit(session, action="coupon.issue", actor=staff_user, api_client=api_client, at=now,
                 after={"coupon_id": coupon.id, "offer_id": offer.id, "limit": limit})
    return coupon


def _unused_code(session: Session) -> str:
    # 54 random bits: a clash is all but impossible, and the unique key guards the rest.
    while True:
        candidate = codes.generate_code()
        if session.scalar(sa.select(Coupon.id).where(Coupon.code == candidate)) is None:
            return candidate


# --- finding, voiding, wallets -------------------------------------------------------------------

def find_coupon(session: Session, raw_code: str) -> Coupon | None:
    code = codes.normalize(raw_code)
    if not code or (codes.is_generated_shape(code) and not codes.has_valid_check(code)):
        return None
    return session.scalar(sa.select(Coupon).where(Coupon.code == code))


def get_coupon(session: Session, raw_code: str) -> Coupon:
    coupon = find_coupon(session, raw_code)
    if coupon is None:
        raise NotFound(f"no coupon has the code {raw_code!r}")
    return coupon


def void_coupon(session: Session, raw_code: str, *, now: datetime, api_client: ApiClient | None = None,
                staff_user: StaffUser | None = None) -> Coupon:
    """Withdraw a coupon with uses left. Voiding twice is harmless; a used-up or expired coupon is
    refused (coupon-invalid). One conditional UPDATE, so a till redeeming it at the same moment either
    wins (and the void is refused) or finds it void."""
    coupon = get_coupon(session, raw_code)
    coupons = Coupon.__table__
    voided = session.execute(
        sa.update(coupons).where(coupons.c.id == coupon.id, coupons.c.status == "issued")
        .values(status="void", voided_at=now)
    ).rowcount
    session.refresh(coupon)
    if not voided and coupon.status != "void":
        shown = codes.display(coupon.code)
        if coupon.status == "redeemed":
            raise invalid("used", shown, "has been used and cannot be voided")
        raise invalid("expired", shown, "has expired")
    if voided:
        record_audit(session, action="coupon.void", actor=staff_user, api_client=api_client,
                     member_id=coupon.member_id, at=now, after={"coupon_id": coupon.id})
    return coupon


def usable_coupons(session: Session, member: Member, now: datetime, *, limit: int = 50,
                   after_id: int | None = None) -> tuple[list[Coupon], int | None]:
    """The member's own coupons that they could use now, whatever the basket (min spend and SKU
    conditions are the basket's business), oldest first; and the cursor of the next page, if any."""
    usage = sa.func.coalesce(OfferMemberUse.uses, 0)
    query = (
        sa.select(Coupon).join(Coupon.offer).options(contains_eager(Coupon.offer))
        .outerjoin(OfferMemberUse, sa.and_(OfferMemberUse.offer_id == Coupon.offer_id,
                                           OfferMemberUse.member_id == member.id))
        .where(Coupon.member_id == member.id, Coupon.status == "issued", Coupon.uses_count < Coupon.uses_limit,
               sa.or_(Coupon.expires_at.is_(None), Coupon.expires_at > now),
               sa.or_(Offer.valid_from.is_(None), Offer.valid_from <= now),
               sa.or_(Offer.valid_until.is_(None), Offer.valid_until > now),
               sa.or_(Offer.budget_count.is_(None), Offer.redeemed_count < Offer.budget_count),
               sa.or_(Offer.budget_amount.is_(None), Offer.discount_given < Offer.budget_amount),
               sa.or_(Offer.per_member_limit.is_(None), usage < Offer.per_member_limit))
        .order_by(Coupon.id).limit(limit + 1)
    )
    if after_id is not None:
        query = query.where(Coupon.id > after_id)
    rows = list(session.scalars(query))
    page, more = rows[:limit], len(rows) > limit
    # Tier lists are short JSON arrays: filtered here rather than with each backend's JSON operators.
    usable = [coupon for coupon in page if not coupon.offer.tiers or member.tier.code in coupon.offer.tiers]
    return usable, (page[-1].id if more else None)


def expire_coupons(session: Session, now: datetime, *, batch_size: int = EXPIRY_BATCH) -> int:
    """Mark up to `batch_size` issued coupons past their expiry as expired; returns how many. The till
    refuses them already (it checks `expires_at`); this keeps statuses, wallets and reports honest.
    Idempotent; call until it returns 0, committing in between."""
    due = (sa.select(Coupon.id).where(Coupon.status == "issued", Coupon.expires_at <= now)
           .order_by(Coupon.id).limit(batch_size).scalar_subquery())
    coupons = Coupon.__table__
    return session.execute(
        sa.update(coupons).where(coupons.c.id.in_(due), coupons.c.status == "issued").values(status="expired")
    ).rowcount or 0
