"""Promotions: earning rules a marketer runs for a while (docs/api.md "Promotions"), what each has given
in all and to each member, and which promotions gave what to each sale."""

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from loyalty.db import BigId, created_at_column, id_column
from loyalty.extensions import db


class Promotion(db.Model):
    """A multiplier and/or a fixed bonus on matching sales. Empty lists and None numbers are "any" and
    "no limit"; `days_of_week` (ISO, 1 = Monday) and `hours_from`/`hours_to` ("HH:MM") are read in the
    sale's store's time zone. `points_given` only ever grows by a conditional UPDATE that keeps it
    within `budget_points` (loyalty/points/promotions.py)."""

    __tablename__ = "promotions"

    id: Mapped[int] = id_column()
    name: Mapped[str] = mapped_column(sa.String(200))
    multiplier_percent: Mapped[int | None] = mapped_column()
    bonus_points: Mapped[int | None] = mapped_column(sa.BigInteger)
    tiers: Mapped[list] = mapped_column(sa.JSON, default=list)
    segment_id: Mapped[int | None] = mapped_column(BigId)
    stores: Mapped[list] = mapped_column(sa.JSON, default=list)
    channels: Mapped[list] = mapped_column(sa.JSON, default=list)
    skus: Mapped[list] = mapped_column(sa.JSON, default=list)
    categories: Mapped[list] = mapped_column(sa.JSON, default=list)
    min_spend: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    starts_at: Mapped[datetime | None] = mapped_column()
    ends_at: Mapped[datetime | None] = mapped_column()
    days_of_week: Mapped[list] = mapped_column(sa.JSON, default=list)
    hours_from: Mapped[str | None] = mapped_column(sa.String(5))
    hours_to: Mapped[str | None] = mapped_column(sa.String(5))
    per_member_limit: Mapped[int | None] = mapped_column(sa.BigInteger)
    budget_points: Mapped[int | None] = mapped_column(sa.BigInteger)
    points_given: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    ended_at: Mapped[datetime | None] = mapped_column()
    created_by_client_id: Mapped[int | None] = mapped_column(sa.ForeignKey("api_clients.id"))
    created_at: Mapped[datetime] = created_at_column()

    __table_args__ = (
        sa.CheckConstraint("budget_points IS NULL OR points_given <= budget_points", name="within_budget"),
    )


class PromotionMemberPoints(db.Model):
    """Points one member has had from one promotion: the per-member limit is kept on this row."""

    __tablename__ = "promotion_member_points"

    promotion_id: Mapped[int] = mapped_column(BigId, sa.ForeignKey("promotions.id"), primary_key=True)
    member_id: Mapped[int] = mapped_column(BigId, sa.ForeignKey("members.id"), primary_key=True)
    points: Mapped[int] = mapped_column(sa.BigInteger, default=0)


class PromotionGrant(db.Model):
    """What one promotion gave one sale (what the sale's answer lists under `promotions`)."""

    __tablename__ = "promotion_grants"

    id: Mapped[int] = id_column()
    transaction_id: Mapped[int] = mapped_column(BigId, sa.ForeignKey("transactions.id"), index=True)
    promotion_id: Mapped[int] = mapped_column(BigId, sa.ForeignKey("promotions.id"), index=True)
    member_id: Mapped[int] = mapped_column(BigId, sa.ForeignKey("members.id"))
    points: Mapped[int] = mapped_column(sa.BigInteger)
    created_at: Mapped[datetime] = created_at_column()
