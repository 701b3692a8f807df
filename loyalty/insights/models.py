"""What the insights jobs store besides the scores on each member: dated RFM snapshots (so segment
movement between runs can be shown), "bought together" rules, and a record of every job run.

Also the two SQL expressions the insights queries share and that PostgreSQL and SQLite spell
differently: whole UTC days since 1970-01-01 and the UTC month of a timestamp.
"""

from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.sql.expression import FunctionElement

from loyalty.db import BigId, created_at_column, id_column
from loyalty.extensions import db


class RfmSnapshot(db.Model):
    """One RFM run, kept by date: a second run on the same UTC day replaces the first."""

    __tablename__ = "rfm_snapshots"

    id: Mapped[int] = id_column()
    taken_on: Mapped[date] = mapped_column(unique=True)
    as_of: Mapped[datetime] = mapped_column()
    window_days: Mapped[int] = mapped_column()
    created_at: Mapped[datetime] = created_at_column()


class RfmSnapshotMember(db.Model):
    """A member's RFM figures and segment in one snapshot. Every member but the erased has a row, so
    "No Purchases" is a segment like the others when counting movement."""

    __tablename__ = "rfm_snapshot_members"

    # No foreign keys: these rows are written only by rfm.score_rfm, right after their snapshot row,
    # and deleted with it; member rows are never deleted (erasure keeps them). A per-row check on each
    # was a fifth of the time it takes to write a snapshot of 100,000 members.
    snapshot_id: Mapped[int] = mapped_column(BigId, primary_key=True)
    member_id: Mapped[int] = mapped_column(BigId, primary_key=True)
    recency_days: Mapped[int | None] = mapped_column()
    frequency: Mapped[int | None] = mapped_column()
    monetary: Mapped[int | None] = mapped_column(sa.BigInteger)
    r: Mapped[int | None] = mapped_column(sa.SmallInteger)
    f: Mapped[int | None] = mapped_column(sa.SmallInteger)
    m: Mapped[int | None] = mapped_column(sa.SmallInteger)
    segment: Mapped[str] = mapped_column(sa.String(32))


class AssociationRule(db.Model):
    """"Customers who bought `antecedent` also bought `consequent` in the same sale", at the level of
    SKUs or of categories. Counts are of baskets (sales); the ratios are derived from them."""

    __tablename__ = "association_rules"

    id: Mapped[int] = id_column()
    level: Mapped[str] = mapped_column(sa.String(16))
    antecedent: Mapped[str] = mapped_column(sa.String(64))
    consequent: Mapped[str] = mapped_column(sa.String(64))
    together: Mapped[int] = mapped_column(sa.BigInteger)
    antecedent_baskets: Mapped[int] = mapped_column(sa.BigInteger)
    consequent_baskets: Mapped[int] = mapped_column(sa.BigInteger)
    baskets: Mapped[int] = mapped_column(sa.BigInteger)
    # Share of all baskets holding both; share of antecedent baskets holding the consequent; and how
    # many times likelier the consequent is with the antecedent than without knowing it.
    support: Mapped[float] = mapped_column(sa.Float)
    confidence: Mapped[float] = mapped_column(sa.Float)
    lift: Mapped[float] = mapped_column(sa.Float)
    computed_at: Mapped[datetime] = mapped_column()

    __table_args__ = (
        sa.UniqueConstraint("level", "antecedent", "consequent"),
        sa.CheckConstraint("level IN ('sku', 'category')", name="level"),
    )


class JobRun(db.Model):
    """One run of an insights job: when, how long, how it ended and what it did. The dashboard shows
    the latest of each; a rescore in progress shows as rows still 'running'."""

    __tablename__ = "insight_job_runs"

    id: Mapped[int] = id_column()
    job: Mapped[str] = mapped_column(sa.String(32))
    status: Mapped[str] = mapped_column(sa.String(16), default="running")
    started_at: Mapped[datetime] = mapped_column()
    finished_at: Mapped[datetime | None] = mapped_column()
    duration_ms: Mapped[int | None] = mapped_column()
    detail: Mapped[dict] = mapped_column(sa.JSON, default=dict)
    error: Mapped[str | None] = mapped_column(sa.Text)

    __table_args__ = (
        sa.CheckConstraint("status IN ('running', 'succeeded', 'failed')", name="status"),
        sa.Index("ix_insight_job_runs_job_started_at", "job", "started_at"),
    )


# --- SQL expressions spelled per dialect ------------------------------------------------------------

class utc_day(FunctionElement):
    """Whole UTC days since 1970-01-01 of a timestamp column: the day numbers of purchase_log.as_day,
    exact integers on both databases (no float julian days)."""

    type = sa.Integer()
    inherit_cache = True


@compiles(utc_day, "postgresql")
def _utc_day_postgresql(element, compiler, **kw):
    return f"(({compiler.process(element.clauses, **kw)} AT TIME ZONE 'UTC')::date - DATE '1970-01-01')"


@compiles(utc_day, "sqlite")
def _utc_day_sqlite(element, compiler, **kw):
    # Timestamps are stored as naive UTC text; strftime('%s') reads them as whole UTC seconds.
    return f"(CAST(strftime('%s', {compiler.process(element.clauses, **kw)}) AS INTEGER) / 86400)"


class utc_month(FunctionElement):
    """'YYYY-MM' of a timestamp column in UTC."""

    type = sa.String()
    inherit_cache = True


@compiles(utc_month, "postgresql")
def _utc_month_postgresql(element, compiler, **kw):
    return f"to_char({compiler.process(element.clauses, **kw)} AT TIME ZONE 'UTC', 'YYYY-MM')"


@compiles(utc_month, "sqlite")
def _utc_month_sqlite(element, compiler, **kw):
    return f"strftime('%Y-%m', {compiler.process(element.clauses, **kw)})"
