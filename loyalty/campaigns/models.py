"""Offers (coupon templates), the coupons issued from them, their redemptions, and bulk batches.

Counters that limits and budgets are judged on (`Offer.redeemed_count`, `Offer.discount_given`,
`Coupon.uses_count`, `OfferMemberUse.uses`) only ever move by conditional UPDATEs in
loyalty.campaigns.redemption, and the CHECK constraints below refuse any write that would overrun them.
"""

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from loyalty.db import BigId, created_at_column, id_column
from loyalty.extensions import db

OFFER_KINDS = ("amount_off", "percent_off", "free_item", "bonus_points", "points_multiplier")
MONEY_KINDS = ("amount_off", "percent_off", "free_item")
COUPON_STATUSES = ("issued", "redeemed", "void", "expired")
BATCH_STATUSES = ("queued", "running", "done", "failed")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(value) for value in values)})"


class Offer(db.Model):
    __tablename__ = "offers"

    id: Mapped[int] = id_column()
    name: Mapped[str] = mapped_column(sa.String(200))
    kind: Mapped[str] = mapped_column(sa.String(20))
    # Minor units (amount_off), percent (percent_off, points_multiplier), points (bonus_points), 0 (free_item).
    value: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    # Judged on the sale's subtotal (the basket before coupon and points discounts).
    min_spend: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    max_discount: Mapped[int | None] = mapped_column(sa.BigInteger)
    skus: Mapped[list] = mapped_column(sa.JSON, default=list)
    categories: Mapped[list] = mapped_column(sa.JSON, default=list)
    valid_from: Mapped[datetime | None] = mapped_column()
    valid_until: Mapped[datetime | None] = mapped_column()
    # Single-use coupons expire this many days after issue (and never after valid_until).
    valid_days: Mapped[int | None] = mapped_column()
    # Tier codes allowed to use it; empty: every tier.
    tiers: Mapped[list] = mapped_column(sa.JSON, default=list)
    per_member_limit: Mapped[int | None] = mapped_column()
    budget_count: Mapped[int | None] = mapped_column(sa.BigInteger)
    budget_amount: Mapped[int | None] = mapped_column(sa.BigInteger)
    stackable: Mapped[bool] = mapped_column(default=False)
    # Net of full refunds, which give the redemption back.
    redeemed_count: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    discount_given: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    created_by_client_id: Mapped[int | None] = mapped_column(sa.ForeignKey("api_clients.id"))
    created_by_staff_id: Mapped[int | None] = mapped_column(sa.ForeignKey("staff_users.id"))
    created_at: Mapped[datetime] = created_at_column()

    __table_args__ = (
        sa.CheckConstraint(_in("kind", OFFER_KINDS), name="kind"),
        sa.CheckConstraint("redeemed_count >= 0 AND discount_given >= 0", name="counters_not_negative"),
        sa.CheckConstraint("budget_count IS NULL OR redeemed_count <= budget_count", name="within_budget_count"),
        sa.CheckConstraint("budget_amount IS NULL OR discount_given <= budget_amount", name="within_budget_amount"),
    )

    @property
    def is_money(self) -> bool:
        return self.kind in MONEY_KINDS


class Coupon(db.Model):
    """A personal coupon (member set, single use), an unassigned single-use code from a batch, or a
    generic code (member unset, `uses_limit` uses in all). `code` is stored normalised."""

    __tablename__ = "coupons"

    id: Mapped[int] = id_column()
    code: Mapped[str] = mapped_column(sa.String(32), unique=True)
    offer_id: Mapped[int] = mapped_column(BigId, sa.ForeignKey("offers.id"), index=True)
    member_id: Mapped[int | None] = mapped_column(BigId, sa.ForeignKey("members.id"))
    batch_id: Mapped[int | None] = mapped_column(BigId, sa.ForeignKey("coupon_batches.id"), index=True)
    generic: Mapped[bool] = mapped_column(default=False)
    status: Mapped[str] = mapped_column(sa.String(10), default="issued")
    uses_limit: Mapped[int] = mapped_column(default=1)
    uses_count: Mapped[int] = mapped_column(default=0)
    expires_at: Mapped[datetime | None] = mapped_column()
    issued_at: Mapped[datetime] = created_at_column()
    redeemed_at: Mapped[datetime | None] = mapped_column()
    voided_at: Mapped[datetime | None] = mapped_column()

    offer: Mapped[Offer] = relationship(lazy="joined", innerjoin=True)
    member = relationship("Member")

    __table_args__ = (
        sa.CheckConstraint(_in("status", COUPON_STATUSES), name="status"),
        sa.CheckConstraint("uses_limit >= 1 AND uses_count >= 0 AND uses_count <= uses_limit", name="uses"),
        sa.Index("ix_coupons_member_id_status", "member_id", "status"),
        sa.Index("ix_coupons_issued_by_expiry", "expires_at", postgresql_where=sa.text("status = 'issued'"),
                 sqlite_where=sa.text("status = 'issued'")),
    )

    @property
    def uses_left(self) -> int:
        return self.uses_limit - self.uses_count if self.status == "issued" else 0


class CouponRedemption(db.Model):
    """One coupon used in one sale, with the discount it gave; `reversed_at` is set by the full refund
    that gave it back."""

    __tablename__ = "coupon_redemptions"

    id: Mapped[int] = id_column()
    coupon_id: Mapped[int] = mapped_column(BigId, sa.ForeignKey("coupons.id"), index=True)
    offer_id: Mapped[int] = mapped_column(BigId, sa.ForeignKey("offers.id"), index=True)
    member_id: Mapped[int | None] = mapped_column(BigId, sa.ForeignKey("members.id"))
    transaction_id: Mapped[int] = mapped_column(BigId, sa.ForeignKey("transactions.id"))
    discount: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    created_at: Mapped[datetime] = created_at_column()
    reversed_at: Mapped[datetime | None] = mapped_column()

    transaction = relationship("Transaction")
    coupon: Mapped[Coupon] = relationship()

    __table_args__ = (sa.UniqueConstraint("transaction_id", "coupon_id"),)


class OfferMemberUse(db.Model):
    """How many times a member has used an offer: the per-member limit, keyed on the member's id (not
    an email or phone, which the member can change)."""

    __tablename__ = "offer_member_uses"

    offer_id: Mapped[int] = mapped_column(BigId, sa.ForeignKey("offers.id"), primary_key=True)
    member_id: Mapped[int] = mapped_column(BigId, sa.ForeignKey("members.id"), primary_key=True)
    uses: Mapped[int] = mapped_column(default=0)

    __table_args__ = (sa.CheckConstraint("uses >= 0", name="uses_not_negative"),)


class CouponBatch(db.Model):
    """A bulk issue of `requested` single-use codes, run by a job that commits every chunk and records
    its progress in `issued`, so a crashed run resumes where it stopped."""

    __tablename__ = "coupon_batches"

    id: Mapped[int] = id_column()
    offer_id: Mapped[int] = mapped_column(BigId, sa.ForeignKey("offers.id"), index=True)
    requested: Mapped[int] = mapped_column()
    issued: Mapped[int] = mapped_column(default=0)
    status: Mapped[str] = mapped_column(sa.String(10), default="queued")
    # Personal batch: one coupon for each of these member ids, in order. None: unassigned codes.
    member_ids: Mapped[list | None] = mapped_column(sa.JSON)
    error: Mapped[str | None] = mapped_column(sa.Text)
    created_by_staff_id: Mapped[int | None] = mapped_column(sa.ForeignKey("staff_users.id"))
    created_at: Mapped[datetime] = created_at_column()
    finished_at: Mapped[datetime | None] = mapped_column()
    # When the last chunk was committed: a queued or running batch that stands still for
    # COUPON_BATCH_STALL_SECONDS lost its worker, and the sweeper starts it again.
    progress_at: Mapped[datetime | None] = mapped_column()

    offer: Mapped[Offer] = relationship()

    __table_args__ = (
        sa.CheckConstraint(_in("status", BATCH_STATUSES), name="status"),
        sa.CheckConstraint("issued >= 0 AND issued <= requested", name="progress"),
    )
