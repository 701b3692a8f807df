"""Members: the people who hold points, tiers and coupons."""

from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from loyalty.db import BigId, created_at_column, id_column
from loyalty.extensions import db
from loyalty.points.models import Tier


class Member(db.Model):
    __tablename__ = "members"

    id: Mapped[int] = id_column()
    # What cashiers type: nine digits and a Damm check digit (loyalty/members/numbers.py).
    member_no: Mapped[str] = mapped_column(sa.String(16), unique=True)
    name: Mapped[str | None] = mapped_column(sa.String(200))
    email: Mapped[str | None] = mapped_column(sa.String(320), unique=True)
    phone: Mapped[str | None] = mapped_column(sa.String(20), unique=True)
    birthday: Mapped[date | None] = mapped_column()
    home_store_id: Mapped[int | None] = mapped_column(sa.ForeignKey("stores.id"))
    status: Mapped[str] = mapped_column(sa.String(16), default="active")
    enrolled_at: Mapped[datetime] = created_at_column()
    tier_id: Mapped[int] = mapped_column(sa.ForeignKey("tiers.id"))
    tier_since: Mapped[datetime] = created_at_column()
    # Cache of SUM(points_entries.points), written in the same DB transaction as every entry.
    points_balance: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    # Per-member key of the rotating QR token; erasing the member clears it, killing every token.
    card_secret: Mapped[str | None] = mapped_column(sa.String(64))
    password_hash: Mapped[str | None] = mapped_column(sa.String(200))
    # Part of every portal session's credential stamp (auth/access.py): signing out bumps it.
    session_epoch: Mapped[int] = mapped_column(default=0, server_default="0")
    email_marketing: Mapped[bool] = mapped_column(default=False)
    sms_marketing: Mapped[bool] = mapped_column(default=False)
    erased_at: Mapped[datetime | None] = mapped_column()

    # Latest scores, written in bulk by the insights jobs (loyalty/insights/rfm.py, churn.py); NULL
    # until first scored. RFM figures are over the scoring window as of rfm_scored_at; a member with
    # no purchase in the window has segment "No Purchases" and NULL scores.
    rfm_recency_days: Mapped[int | None] = mapped_column()
    rfm_frequency: Mapped[int | None] = mapped_column()
    rfm_monetary: Mapped[int | None] = mapped_column(sa.BigInteger)
    rfm_r: Mapped[int | None] = mapped_column(sa.SmallInteger)
    rfm_f: Mapped[int | None] = mapped_column(sa.SmallInteger)
    rfm_m: Mapped[int | None] = mapped_column(sa.SmallInteger)
    rfm_code: Mapped[str | None] = mapped_column(sa.String(3))
    rfm_segment: Mapped[str | None] = mapped_column(sa.String(32))
    rfm_scored_at: Mapped[datetime | None] = mapped_column()
    # P(no purchase over the churn horizon) in basis points (0..10000): an integer, like all stored figures.
    churn_risk_bp: Mapped[int | None] = mapped_column()
    churn_band: Mapped[str | None] = mapped_column(sa.String(8))
    # The facts behind the risk as a code ("r155 f2 g40", see insights.churn_models.churn_facts), put
    # into words in the reader's language by insights.wording.describe_churn_facts.
    churn_explanation: Mapped[str | None] = mapped_column(sa.String(200))
    churn_scored_at: Mapped[datetime | None] = mapped_column()

    # Many-to-one by primary key: served from the identity map after the first load, no join needed.
    tier: Mapped[Tier] = relationship()

    __table_args__ = (
        sa.CheckConstraint("status IN ('active', 'suspended', 'erased')", name="status"),
    )


class StaffNote(db.Model):
    """A note staff keep on a member ("prefers SMS", "VIP: call before big launches"). Personal data:
    erasing the member deletes their notes."""

    __tablename__ = "staff_notes"

    id: Mapped[int] = id_column()
    member_id: Mapped[int] = mapped_column(BigId, sa.ForeignKey("members.id"))
    staff_user_id: Mapped[int] = mapped_column(sa.ForeignKey("staff_users.id"))
    body: Mapped[str] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = created_at_column()

    staff_user = relationship("StaffUser")

    __table_args__ = (sa.Index("ix_staff_notes_member_id_created_at", "member_id", "created_at"),)


CONSENTS = ("email_marketing", "sms_marketing")


class ConsentEvent(db.Model):
    """One change of one marketing consent: what, given or withdrawn, when and through which channel
    (portal, staff, api, enrolment, erasure). The member row holds the current state; these rows are
    the evidence of how it came to be."""

    __tablename__ = "consent_events"

    id: Mapped[int] = id_column()
    member_id: Mapped[int] = mapped_column(BigId, sa.ForeignKey("members.id"), index=True)
    consent: Mapped[str] = mapped_column(sa.String(32))
    granted: Mapped[bool] = mapped_column()
    channel: Mapped[str] = mapped_column(sa.String(16))
    staff_user_id: Mapped[int | None] = mapped_column(sa.ForeignKey("staff_users.id"))
    created_at: Mapped[datetime] = created_at_column()

    __table_args__ = (
        sa.CheckConstraint("consent IN ('email_marketing', 'sms_marketing')", name="consent"),
    )
