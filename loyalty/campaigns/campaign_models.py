"""Campaigns (a saved segment, an action and a control share) and the members each one drew.

A CampaignMember row is unique per campaign and member: the launch inserts the frozen audience with
the arm its draw gave, and an action records what it gave (coupon, ledger entry, acted_at) on that
row in the same transaction, so a re-run, a retry or a killed worker neither moves nor doubles anyone.
"""

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from loyalty.db import BigId, created_at_column, id_column
from loyalty.extensions import db

CAMPAIGN_STATUSES = ("draft", "launching", "running", "ended")
ACTION_KINDS = ("coupon", "bonus_points", "promotion", "message")
ARMS = ("treatment", "control")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(value) for value in values)})"


class Campaign(db.Model):
    __tablename__ = "campaigns"

    id: Mapped[int] = id_column()
    name: Mapped[str] = mapped_column(sa.String(200))
    # A saved segment; its current members are the audience the launch freezes.
    segment_id: Mapped[int] = mapped_column(BigId, index=True)
    # {"kind": "coupon", "offer_id"} | {"kind": "bonus_points", "points"} | {"kind": "promotion", "promotion_id"}
    action: Mapped[dict] = mapped_column(sa.JSON)
    control_percent: Mapped[int] = mapped_column()
    conversion_window_days: Mapped[int] = mapped_column(default=30)
    # {"on": ..., "days"?}; None: the campaign acts once, at launch.
    trigger: Mapped[dict | None] = mapped_column(sa.JSON)
    status: Mapped[str] = mapped_column(sa.String(10), default="draft")
    # Counted when the audience is frozen; acted_count moves with every committed chunk of actions.
    members_count: Mapped[int] = mapped_column(default=0)
    treatment_count: Mapped[int] = mapped_column(default=0)
    control_count: Mapped[int] = mapped_column(default=0)
    acted_count: Mapped[int] = mapped_column(default=0)
    error: Mapped[str | None] = mapped_column(sa.Text)
    created_by_client_id: Mapped[int | None] = mapped_column(sa.ForeignKey("api_clients.id"))
    created_by_staff_id: Mapped[int | None] = mapped_column(sa.ForeignKey("staff_users.id"))
    created_at: Mapped[datetime] = created_at_column()
    launched_at: Mapped[datetime | None] = mapped_column()
    # When the launch job last committed: a launching campaign standing still past the stall time lost
    # its worker, and the sweeper starts the job again.
    progress_at: Mapped[datetime | None] = mapped_column()
    ended_at: Mapped[datetime | None] = mapped_column()

    __table_args__ = (
        sa.CheckConstraint(_in("status", CAMPAIGN_STATUSES), name="status"),
        sa.CheckConstraint("control_percent >= 0 AND control_percent <= 50", name="control_percent"),
        sa.CheckConstraint("conversion_window_days >= 1", name="conversion_window"),
        sa.CheckConstraint(
            "members_count >= 0 AND treatment_count >= 0 AND control_count >= 0 AND acted_count >= 0",
            name="counts_not_negative",
        ),
    )


class CampaignMember(db.Model):
    """One member of a launched campaign's frozen audience, the arm the draw gave them, and what the
    action gave (treatment only; control members get nothing and keep acted_at null)."""

    __tablename__ = "campaign_members"

    id: Mapped[int] = id_column()
    campaign_id: Mapped[int] = mapped_column(BigId, sa.ForeignKey("campaigns.id"))
    member_id: Mapped[int] = mapped_column(BigId, sa.ForeignKey("members.id"), index=True)
    arm: Mapped[str] = mapped_column(sa.String(10))
    drawn_at: Mapped[datetime] = created_at_column()
    acted_at: Mapped[datetime | None] = mapped_column()
    coupon_id: Mapped[int | None] = mapped_column(BigId, sa.ForeignKey("coupons.id"))
    points_entry_id: Mapped[int | None] = mapped_column(BigId, sa.ForeignKey("points_entries.id"))

    __table_args__ = (
        sa.UniqueConstraint("campaign_id", "member_id"),
        sa.CheckConstraint(_in("arm", ARMS), name="arm"),
        sa.CheckConstraint("arm = 'treatment' OR acted_at IS NULL", name="control_gets_nothing"),
        sa.Index("ix_campaign_members_campaign_id_arm_id", "campaign_id", "arm", "id"),
    )
