"""Segments: a marketer's stored rule over members, its current members, and who entered or left it.

The rule tree and its compilation to SQL are loyalty.campaigns.segments; these rows are what an
evaluation leaves behind, so campaigns and promotions read a segment's members from SegmentMember
without evaluating the rule again.
"""

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from loyalty.db import BigId, created_at_column, id_column
from loyalty.extensions import db

SEGMENT_CHANGES = ("entered", "left")


class Segment(db.Model):
    __tablename__ = "segments"

    id: Mapped[int] = id_column()
    name: Mapped[str] = mapped_column(sa.String(200))
    # The rule as the marketer wrote it (validated on the way in), re-parsed at each evaluation.
    rule: Mapped[dict] = mapped_column(sa.JSON)
    # As of evaluated_at; 0 until first evaluated.
    member_count: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    evaluated_at: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = created_at_column()


class SegmentMember(db.Model):
    """A member currently in a segment, since `entered_at` (the evaluation that first found them)."""

    __tablename__ = "segment_members"

    segment_id: Mapped[int] = mapped_column(BigId, sa.ForeignKey("segments.id"), primary_key=True)
    member_id: Mapped[int] = mapped_column(BigId, sa.ForeignKey("members.id"), primary_key=True)
    entered_at: Mapped[datetime] = mapped_column()

    # "Which segments is this member in" (in_segment of another rule reads by segment, the key's order).
    __table_args__ = (sa.Index("ix_segment_members_member_id", "member_id"),)


class SegmentChange(db.Model):
    """A member entering or leaving a segment at one evaluation: the history SegmentMember forgets."""

    __tablename__ = "segment_changes"

    id: Mapped[int] = id_column()
    segment_id: Mapped[int] = mapped_column(BigId, sa.ForeignKey("segments.id"))
    member_id: Mapped[int] = mapped_column(BigId, sa.ForeignKey("members.id"))
    change: Mapped[str] = mapped_column(sa.String(8))
    at: Mapped[datetime] = mapped_column()

    __table_args__ = (
        sa.CheckConstraint("change IN ('entered', 'left')", name="change"),
        sa.Index("ix_segment_changes_segment_id_at", "segment_id", "at"),
        sa.Index("ix_segment_changes_member_id", "member_id"),
    )
