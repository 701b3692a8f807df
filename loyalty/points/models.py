"""The points ledger (entries, lots, allocations), the program's settings, tiers and earning rules."""

from datetime import datetime
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from loyalty.db import BigId, created_at_column, id_column
from loyalty.extensions import db

# The most points one entry, offer or request may carry: far beyond any program, far inside BigInteger.
MAX_POINTS = 10**9


class ProgramSettings(db.Model):
    """The program's rules of exchange; one row, created by the first migration with the defaults."""

    __tablename__ = "program_settings"

    id: Mapped[int] = id_column()
    currency: Mapped[str] = mapped_column(sa.String(3), default="CNY")
    # `earn_points` points for every `earn_per_minor` minor units paid (1 point per 1.00 = 100 fen).
    earn_points: Mapped[int] = mapped_column(default=1)
    earn_per_minor: Mapped[int] = mapped_column(default=100)
    # `redeem_points` points are worth `redeem_value_minor` minor units (100 points = 1.00).
    redeem_points: Mapped[int] = mapped_column(default=100)
    redeem_value_minor: Mapped[int] = mapped_column(default=100)
    lot_lifetime_days: Mapped[int] = mapped_column(default=365)
    hold_days: Mapped[int] = mapped_column(default=0)
    # Qualifying points count over this many days, and a tier is kept at least this long.
    tier_window_days: Mapped[int] = mapped_column(default=365)
    tier_hold_days: Mapped[int] = mapped_column(default=365)


class Tier(db.Model):
    __tablename__ = "tiers"

    id: Mapped[int] = id_column()
    code: Mapped[str] = mapped_column(sa.String(32), unique=True)
    name: Mapped[str] = mapped_column(sa.String(100))
    rank: Mapped[int] = mapped_column(unique=True)
    # Qualifying points over the tier window needed to hold this tier.
    threshold: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    # Earn multiplier in percent (125 = ×1.25): integer arithmetic, no floats near the ledger.
    multiplier_percent: Mapped[int] = mapped_column(default=100)
    benefits: Mapped[str] = mapped_column(sa.Text, default="")
    stripe_price_id: Mapped[str | None] = mapped_column(sa.String(100))

    @property
    def multiplier(self) -> Decimal:
        return (Decimal(self.multiplier_percent) / 100).quantize(Decimal("0.01"))


class TierChange(db.Model):
    __tablename__ = "tier_changes"

    id: Mapped[int] = id_column()
    member_id: Mapped[int] = mapped_column(BigId, sa.ForeignKey("members.id"), index=True)
    from_tier_id: Mapped[int | None] = mapped_column(sa.ForeignKey("tiers.id"))
    to_tier_id: Mapped[int] = mapped_column(sa.ForeignKey("tiers.id"))
    reason: Mapped[str] = mapped_column(sa.String(32))
    qualifying_points: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    created_at: Mapped[datetime] = created_at_column()


class EarningRule(db.Model):
    """Extra earning on top of the base rate: a multiplier on matching lines (by SKU or category), or
    on the whole sale when neither is set, within an optional date window and above a minimum spend."""

    __tablename__ = "earning_rules"

    id: Mapped[int] = id_column()
    name: Mapped[str] = mapped_column(sa.String(200))
    sku: Mapped[str | None] = mapped_column(sa.String(64))
    category: Mapped[str | None] = mapped_column(sa.String(64))
    multiplier_percent: Mapped[int] = mapped_column(default=100)
    min_spend: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    starts_at: Mapped[datetime | None] = mapped_column()
    ends_at: Mapped[datetime | None] = mapped_column()
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = created_at_column()


class PointsEntry(db.Model):
    """One line of the ledger. Append-only: database triggers refuse UPDATE and DELETE."""

    __tablename__ = "points_entries"

    id: Mapped[int] = id_column()
    member_id: Mapped[int] = mapped_column(BigId, sa.ForeignKey("members.id"))
    kind: Mapped[str] = mapped_column(sa.String(16))
    points: Mapped[int] = mapped_column(sa.BigInteger)
    # Base points (before tier and rule multipliers) net of reversals: what tiers are earned with.
    qualifying_points: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    reason: Mapped[str] = mapped_column(sa.String(200), default="")
    transaction_id: Mapped[int | None] = mapped_column(BigId, sa.ForeignKey("transactions.id"))
    staff_user_id: Mapped[int | None] = mapped_column(sa.ForeignKey("staff_users.id"))
    # Who or what wrote it when not a transaction or a staff user: "job:expire-lots", "campaign:12".
    source: Mapped[str] = mapped_column(sa.String(64), default="")
    # When the points were earned or spent in the world (a sale's occurred_at); created_at is when
    # the row was written. Tier windows use occurred_at so a backfilled year counts where it belongs.
    occurred_at: Mapped[datetime] = created_at_column()
    created_at: Mapped[datetime] = created_at_column()

    # Set as an object so entries of a sale posted in the same flush get its id.
    transaction = relationship("Transaction")

    __table_args__ = (
        sa.CheckConstraint(
            "kind IN ('earn', 'redeem', 'expire', 'reverse', 'restore', 'adjust', 'bonus')", name="kind"
        ),
        sa.Index("ix_points_entries_member_id_id", "member_id", "id"),
        sa.Index("ix_points_entries_transaction_id", "transaction_id"),
        sa.Index("ix_points_entries_member_id_occurred_at", "member_id", "occurred_at"),
    )


class PointsLot(db.Model):
    """Points credited together, consumed oldest-expiry first. `remaining` is the only mutable part."""

    __tablename__ = "points_lots"

    id: Mapped[int] = id_column()
    member_id: Mapped[int] = mapped_column(BigId, sa.ForeignKey("members.id"))
    entry_id: Mapped[int] = mapped_column(BigId, sa.ForeignKey("points_entries.id"))
    transaction_id: Mapped[int | None] = mapped_column(BigId, sa.ForeignKey("transactions.id"))
    points: Mapped[int] = mapped_column(sa.BigInteger)
    remaining: Mapped[int] = mapped_column(sa.BigInteger)
    # Pending (on hold) until available_at; redeemable until expires_at.
    available_at: Mapped[datetime] = mapped_column()
    expires_at: Mapped[datetime] = mapped_column()
    released_at: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = created_at_column()

    entry: Mapped[PointsEntry] = relationship()
    transaction = relationship("Transaction")

    __table_args__ = (
        sa.CheckConstraint("remaining >= 0 AND remaining <= points", name="remaining_within_points"),
        # Only lots with points left are ever read on the hot paths (sale, expiry).
        sa.Index(
            "ix_points_lots_open_by_member",
            "member_id",
            "expires_at",
            postgresql_where=sa.text("remaining > 0"),
            sqlite_where=sa.text("remaining > 0"),
        ),
        sa.Index(
            "ix_points_lots_open_by_expiry",
            "expires_at",
            postgresql_where=sa.text("remaining > 0"),
            sqlite_where=sa.text("remaining > 0"),
        ),
    )


class LotAllocation(db.Model):
    """Points an entry took from a lot (redeem, expire, reverse, or an earn settling a negative
    balance out of its own lot). For every lot: points - remaining = SUM(allocations)."""

    __tablename__ = "lot_allocations"

    id: Mapped[int] = id_column()
    entry_id: Mapped[int] = mapped_column(BigId, sa.ForeignKey("points_entries.id"), index=True)
    lot_id: Mapped[int] = mapped_column(BigId, sa.ForeignKey("points_lots.id"), index=True)
    points: Mapped[int] = mapped_column(sa.BigInteger)

    entry: Mapped[PointsEntry] = relationship()
    lot: Mapped[PointsLot] = relationship()

    __table_args__ = (sa.CheckConstraint("points > 0", name="points_positive"),)
