"""The numbers behind the marketer's dashboard, as plain dicts and lists (no ORM objects, no floats
where an integer says it), plus the insights settings read from configuration.

Every function reads; none writes. Money is in minor units of the program's currency; ratios are
floats in [0, 1] rounded to four places; dates are ISO strings so a dict can go straight to JSON or CSV.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from loyalty.insights import crosssell, rfm
from loyalty.insights.churn import churn_bands
from loyalty.insights.churn_models import DEFAULT_RISK_CUTS
from loyalty.insights.models import JobRun, utc_month
from loyalty.members.models import Member
from loyalty.points.models import PointsEntry, PointsLot, Tier
from loyalty.points.program import Program
from loyalty.sales.models import Transaction

JOBS = ("rfm", "churn", "crosssell")


@dataclass(frozen=True)
class InsightsSettings:
    """Insights configuration; each field is read from `INSIGHTS_<FIELD>` (e.g. LOYALTY_INSIGHTS_
    RFM_WINDOW_DAYS=180 in the environment), falling back to the default here."""

    rfm_window_days: int = 365
    # Daily snapshots are kept this long; older ones only as the first of each month.
    rfm_snapshot_keep_days: int = 35
    churn_horizon_days: int = 90
    # Risk below the first cut is "low", from the second up "high".
    churn_risk_cuts: tuple[float, float] = DEFAULT_RISK_CUTS
    crosssell_window_days: int = 365
    crosssell_min_together: int = 5
    active_days: int = 90

    @classmethod
    def from_config(cls, config: Mapping) -> "InsightsSettings":
        values = {name: config[f"INSIGHTS_{name.upper()}"] for name in cls.__dataclass_fields__
                  if f"INSIGHTS_{name.upper()}" in config}
        if "churn_risk_cuts" in values:
            values["churn_risk_cuts"] = tuple(float(cut) for cut in values["churn_risk_cuts"])
        return cls(**values)


def _ratio(part: int, whole: int) -> float | None:
    return None if not whole else round(part / whole, 4)


def _purchase(sales=Transaction):
    return sa.and_(sales.kind == "sale", sa.or_(sales.refunded_amount < sales.amount, sales.amount == 0))


def overview(session: Session, program: Program, now: datetime, settings: InsightsSettings) -> dict:
    """The headline figures: members, active members, repeat-purchase rate, points liability in money,
    redemption rate."""
    members = session.scalar(sa.select(sa.func.count()).select_from(Member).where(Member.status != "erased"))
    active_since = now - timedelta(days=settings.active_days)
    active = session.scalar(
        sa.select(sa.func.count(sa.distinct(Transaction.member_id)))
        .where(_purchase(), Transaction.member_id.is_not(None), Transaction.occurred_at >= active_since,
               Transaction.occurred_at <= now))
    year_ago = now - timedelta(days=settings.rfm_window_days)
    per_buyer = (
        sa.select(sa.func.count().label("purchases"))
        .where(_purchase(), Transaction.member_id.is_not(None), Transaction.occurred_at >= year_ago,
               Transaction.occurred_at <= now)
        .group_by(Transaction.member_id).subquery()
    )
    buyers, repeat_buyers = session.execute(
        sa.select(sa.func.count(), sa.func.count().filter(per_buyer.c.purchases >= 2))).one()
    liability_points = session.scalar(
        sa.select(sa.func.coalesce(sa.func.sum(PointsLot.remaining), 0))
        .where(PointsLot.remaining > 0, PointsLot.expires_at > now))
    settings_row = program.settings

    def points_of(*kinds):
        return sa.func.coalesce(sa.func.sum(PointsEntry.points).filter(PointsEntry.kind.in_(kinds)), 0)

    # Issued: earned and bonus points net of reversals; redeemed: spent net of refunds' restorations.
    issued, redeemed = session.execute(
        sa.select(points_of("earn", "bonus", "reverse"), -points_of("redeem", "restore"))
        .where(PointsEntry.occurred_at >= year_ago, PointsEntry.occurred_at <= now)
    ).one()
    return {
        "members": members,
        "active_members": active,
        "active_days": settings.active_days,
        "active_share": _ratio(active, members),
        "buyers": buyers,
        "repeat_buyers": repeat_buyers,
        "repeat_purchase_rate": _ratio(repeat_buyers, buyers),
        "points_liability": int(liability_points),
        # Points are worth redeem_value_minor per redeem_points; rounded down, as a redemption would be.
        "points_liability_minor": int(liability_points) * settings_row.redeem_value_minor // settings_row.redeem_points,
        "currency": settings_row.currency,
        "points_issued": int(issued),
        "points_redeemed": int(redeemed),
        "redemption_rate": _ratio(int(redeemed), int(issued)),
        "window_days": settings.rfm_window_days,
    }


def _month_starts(now: datetime, months: int) -> list[date]:
    year, month = now.astimezone(UTC).year, now.astimezone(UTC).month
    starts = []
    for _ in range(months):
        starts.append(date(year, month, 1))
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    return starts[::-1]


def sales_trend(session: Session, now: datetime, months: int = 12) -> list[dict]:
    """Net sales per UTC month over the last `months` months (this one included), oldest first:
    {"month": "2026-11", "sales": count, "net_amount": minor units, "member_sales": count, "buyers": n}."""
    starts = _month_starts(now, months)
    since = datetime(starts[0].year, starts[0].month, 1, tzinfo=UTC)
    month = utc_month(Transaction.occurred_at)
    rows = session.execute(
        sa.select(month, sa.func.count(), sa.func.sum(Transaction.amount - Transaction.refunded_amount),
                  sa.func.count(Transaction.member_id), sa.func.count(sa.distinct(Transaction.member_id)))
        .where(_purchase(), Transaction.occurred_at >= since, Transaction.occurred_at <= now)
        .group_by(month)
    ).all()
    found = {label: (count, int(net or 0), member_sales, buyers) for label, count, net, member_sales, buyers in rows}
    trend = []
    for start in starts:
        label = start.strftime("%Y-%m")
        count, net, member_sales, buyers = found.get(label, (0, 0, 0, 0))
        trend.append({"month": label, "sales": count, "net_amount": net, "member_sales": member_sales,
                      "buyers": buyers})
    return trend


def tier_distribution(session: Session) -> list[dict]:
    """Members per tier, lowest tier first (tiers without members included)."""
    rows = session.execute(
        sa.select(Tier.code, Tier.name, sa.func.count(Member.id))
        .outerjoin(Member, sa.and_(Member.tier_id == Tier.id, Member.status != "erased"))
        .group_by(Tier.id, Tier.code, Tier.name, Tier.rank).order_by(Tier.rank)
    ).all()
    return [{"tier": code, "name": name, "members": members} for code, name, members in rows]


def last_runs(session: Session) -> list[dict]:
    """The latest run of each insights job: status, when, how long, what it did."""
    runs = []
    for job in JOBS:
        run = session.scalar(sa.select(JobRun).where(JobRun.job == job)
                             .order_by(JobRun.started_at.desc(), JobRun.id.desc()).limit(1))
        runs.append({"job": job, "status": run.status if run else None,
                     "started_at": run.started_at.isoformat(timespec="microseconds") if run else None,
                     "finished_at": run.finished_at.isoformat(timespec="microseconds")
                     if run and run.finished_at else None,
                     "duration_ms": run.duration_ms if run else None,
                     "detail": run.detail if run else {}, "error": run.error if run else None})
    return runs


def segment_movement(session: Session) -> dict:
    """rfm.segment_movement with the dates as ISO strings."""
    movement = rfm.segment_movement(session)
    for key in ("previous", "current"):
        if movement[key] is not None:
            movement[key] = movement[key].isoformat()
    return movement


def dashboard(session: Session, program: Program, now: datetime, settings: InsightsSettings) -> dict:
    """Everything the marketer's dashboard shows, in one dict of numbers."""
    return {
        "as_of": now.isoformat(),
        "overview": overview(session, program, now, settings),
        "sales_trend": sales_trend(session, now),
        "tiers": tier_distribution(session),
        "rfm_segments": rfm.segment_summary(session),
        "churn_bands": churn_bands(session),
        "churn_risk_cuts": list(settings.churn_risk_cuts),
        "segment_movement": segment_movement(session),
        "top_pairs": crosssell.top_pairs(session, level="sku"),
        "top_category_pairs": crosssell.top_pairs(session, level="category"),
        "jobs": last_runs(session),
    }


def chart_tables(data: dict) -> dict[str, dict]:
    """Each chart's numbers as a table, {chart: {"columns": [keys], "rows": [[values]]}}, from the
    `dashboard` dict: what the page shows under each chart and what its CSV download holds."""
    overview_rows = [[key, value] for key, value in data["overview"].items()]
    movement = data["segment_movement"]
    movement_rows = [[source, *counts] for source, counts in zip(movement["from"], movement["counts"], strict=False)]
    pair_columns = ["first", "second", "together", "support", "lift", "confidence_first_to_second",
                    "confidence_second_to_first"]
    job_columns = ["job", "status", "started_at", "finished_at", "duration_ms", "error"]

    def table(columns, records):
        return {"columns": columns, "rows": [[record[column] for column in columns] for record in records]}

    return {
        "overview": {"columns": ["figure", "value"], "rows": overview_rows},
        "sales_trend": table(["month", "sales", "net_amount", "member_sales", "buyers"], data["sales_trend"]),
        "tiers": table(["tier", "name", "members"], data["tiers"]),
        "rfm_segments": table(["segment", "members", "monetary"], data["rfm_segments"]),
        "churn_bands": table(["band", "members", "mean_risk_bp"], data["churn_bands"]),
        "segment_movement": {"columns": ["from", *movement["segments"]], "rows": movement_rows},
        "top_pairs": table(pair_columns, data["top_pairs"]),
        "top_category_pairs": table(pair_columns, data["top_category_pairs"]),
        "jobs": table(job_columns, data["jobs"]),
    }
