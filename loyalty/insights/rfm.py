"""RFM value scoring, computed in the database: recency, frequency and monetary value per member over
a window, scored 1-5, named by the R x F grid, written to the members and to a dated snapshot.

What is counted, over the `window_days` UTC days ending on the scoring day (that day included):

- a *purchase* is a sale by a member that was not refunded in full (a sale of amount 0, paid with
  points, still counts); refunds are attributed to the sale they refund, through its cumulative
  `refunded_amount`;
- recency = UTC days from the last purchase to the scoring day (0 = bought today);
- frequency = number of purchases;
- monetary = sum over purchases of (amount - refunded_amount), in minor units.

Scores. For a member whose value is v, among the N members with a purchase in the window:

    q(v) = 1 + floor(5 * (number of those members whose value is strictly below v) / N)
         = 1 + (5 * (RANK() OVER (ORDER BY v) - 1)) DIV N          (integer arithmetic)

    F = q(frequency),  M = q(monetary),  R = 6 - q(recency_days)

A member's score is the quintile where their group of equal values *starts*: equal values always
share a score (unlike NTILE, which splits ties across tiles by row order), so quintiles may be
unequal - 60% one-time buyers are all F1, and everyone who bought on the latest day is R5. Without
ties q is exactly the quintile of the position (1 + floor(5 * (position - 1) / N)). Only integers and
ranks are involved, so the same rows give the same scores on PostgreSQL and SQLite, on every run.
Erased members are neither scored nor counted in N. Members with no purchase in the window get
segment "No Purchases" and no scores.

The RFM code is the three digits R, F, M ("545"); M ranks value within a segment.
"""

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import numpy as np
import sqlalchemy as sa
from sqlalchemy.orm import Session, aliased

from loyalty.db import take_sqlite_write_lock
from loyalty.insights.models import RfmSnapshot, RfmSnapshotMember, utc_day
from loyalty.insights.purchase_log import as_day
from loyalty.members.models import Member
from loyalty.sales.models import Transaction

NO_PURCHASES = "No Purchases"
# (segment, R scores, F scores): together they cover the 25 cells of the R x F grid exactly once.
SEGMENT_RULES = (
    ("Champions", (5,), (4, 5)),
    ("Loyal Customers", (3, 4), (4, 5)),
    ("Potential Loyalists", (4, 5), (2, 3)),
    ("New Customers", (5,), (1,)),
    ("Promising", (4,), (1,)),
    ("Need Attention", (3,), (3,)),
    ("About To Sleep", (3,), (1, 2)),
    ("At Risk", (1, 2), (3, 4)),
    ("Can't Lose Them", (1, 2), (5,)),
    ("Hibernating", (1, 2), (1, 2)),
)
SEGMENTS = tuple(name for name, _, _ in SEGMENT_RULES) + (NO_PURCHASES,)
# Label for members in the newer snapshot only (enrolled between the two runs).
JOINED_SINCE = "Joined Since"


def segment_grid() -> dict[tuple[int, int], str]:
    """{(R, F): segment}, refusing rules that leave a cell empty or name one twice."""
    grid: dict[tuple[int, int], str] = {}
    for name, recency_scores, frequency_scores in SEGMENT_RULES:
        for cell in ((r, f) for r in recency_scores for f in frequency_scores):
            if cell in grid:
                raise ValueError(f"R{cell[0]} F{cell[1]} is both {grid[cell]} and {name}")
            grid[cell] = name
    missing = {(r, f) for r in range(1, 6) for f in range(1, 6)} - grid.keys()
    if missing:
        raise ValueError(f"cells without a segment: {sorted(missing)}")
    return grid


def segment_for(r: int | None, f: int | None) -> str:
    return NO_PURCHASES if r is None or f is None else segment_grid()[(r, f)]


def scoring_window(as_of: datetime, window_days: int) -> tuple[int, datetime]:
    """(the scoring day's number, the first instant of the window): `window_days` whole UTC days
    ending with the scoring day."""
    if window_days < 1:
        raise ValueError("the RFM window must be at least one day")
    as_of_day = as_day(as_of.astimezone(UTC))
    first_day = as_of_day - window_days + 1
    since = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(days=first_day)
    return as_of_day, since


def rfm_select(as_of: datetime, window_days: int) -> sa.Select:
    """One row per member who is not erased: (member_id, recency_days, frequency, monetary, r, f, m,
    segment), scores as in the module docstring. Aggregation and ranking run in the database."""
    sales, members = Transaction.__table__, Member.__table__
    as_of_day, since = scoring_window(as_of, window_days)
    purchases = (
        sa.select(
            sales.c.member_id,
            (sa.literal(as_of_day) - sa.func.max(utc_day(sales.c.occurred_at))).label("recency_days"),
            sa.func.count().label("frequency"),
            sa.func.sum(sales.c.amount - sales.c.refunded_amount).label("monetary"),
        )
        .where(
            sales.c.kind == "sale",
            sales.c.member_id.is_not(None),
            sales.c.occurred_at >= since,
            sales.c.occurred_at <= as_of,
            sa.or_(sales.c.refunded_amount < sales.c.amount, sales.c.amount == 0),
        )
        .group_by(sales.c.member_id)
        .subquery("purchases")
    )
    ranked = (
        sa.select(
            purchases,
            sa.func.count().over().label("buyers"),
            sa.func.rank().over(order_by=purchases.c.recency_days).label("recency_rank"),
            sa.func.rank().over(order_by=purchases.c.frequency).label("frequency_rank"),
            sa.func.rank().over(order_by=purchases.c.monetary).label("monetary_rank"),
        )
        .join(members, members.c.id == purchases.c.member_id)
        .where(members.c.status != "erased")
        .subquery("ranked")
    )

    def quintile(rank):
        return 1 + (5 * (rank - 1)) // ranked.c.buyers

    scored = sa.select(
        ranked.c.member_id, ranked.c.recency_days, ranked.c.frequency, ranked.c.monetary,
        (6 - quintile(ranked.c.recency_rank)).label("r"),
        quintile(ranked.c.frequency_rank).label("f"),
        quintile(ranked.c.monetary_rank).label("m"),
    ).subquery("scored")
    segment = sa.case(
        (scored.c.member_id.is_(None), NO_PURCHASES),
        else_=sa.case({r * 10 + f: name for (r, f), name in segment_grid().items()},
                      value=scored.c.r * 10 + scored.c.f),
    )
    return (
        sa.select(members.c.id.label("member_id"), scored.c.recency_days, scored.c.frequency, scored.c.monetary,
                  scored.c.r, scored.c.f, scored.c.m, segment.label("segment"))
        .select_from(members.outerjoin(scored, scored.c.member_id == members.c.id))
        .where(members.c.status != "erased")
    )


@dataclass(frozen=True)
class RfmRun:
    snapshot_id: int
    taken_on: date
    members: int
    buyers: int
    pruned_snapshots: int


def score_rfm(session: Session, as_of: datetime, window_days: int = 365, keep_days: int = 35) -> RfmRun:
    """Score every member as of `as_of` and keep the result as the snapshot of that UTC day.

    Set-based from start to end: one INSERT ... SELECT computes the scores into the snapshot, one
    UPDATE ... FROM copies them onto the members (UPDATE ... FROM needs SQLite 3.33 or later; window
    functions 3.25). Running it twice on a day replaces that day's snapshot, so it is safe to repeat.
    Flushes, never commits.
    """
    session.flush()
    _one_scoring_at_a_time(session, "rfm")
    taken_on = as_of.astimezone(UTC).date()
    snapshots, entries, members = RfmSnapshot.__table__, RfmSnapshotMember.__table__, Member.__table__
    _delete_snapshots(session, session.scalars(sa.select(RfmSnapshot.id).where(RfmSnapshot.taken_on == taken_on)))
    snapshot_id = session.execute(
        sa.insert(snapshots).values(taken_on=taken_on, as_of=as_of, window_days=window_days)
        .returning(snapshots.c.id)
    ).scalar_one()

    scores = rfm_select(as_of, window_days).subquery("scores")
    columns = ["member_id", "recency_days", "frequency", "monetary", "r", "f", "m", "segment"]
    session.execute(sa.insert(entries).from_select(
        ["snapshot_id", *columns],
        sa.select(sa.literal(snapshot_id, type_=sa.BigInteger), *(scores.c[name] for name in columns)),
    ))
    session.execute(
        sa.update(members)
        .where(members.c.id == entries.c.member_id, entries.c.snapshot_id == snapshot_id)
        .values(rfm_recency_days=entries.c.recency_days, rfm_frequency=entries.c.frequency,
                rfm_monetary=entries.c.monetary, rfm_r=entries.c.r, rfm_f=entries.c.f, rfm_m=entries.c.m,
                rfm_code=sa.cast(entries.c.r * 100 + entries.c.f * 10 + entries.c.m, sa.String(3)),
                rfm_segment=entries.c.segment, rfm_scored_at=as_of)
    )
    # Erased members keep no scores: they can be neither targeted nor shown.
    session.execute(
        sa.update(members).where(members.c.status == "erased", members.c.rfm_segment.is_not(None))
        .values({name: None for name in _RFM_MEMBER_COLUMNS})
    )
    counts = session.execute(
        sa.select(sa.func.count(), sa.func.count(entries.c.r)).where(entries.c.snapshot_id == snapshot_id)
    ).one()
    pruned = prune_snapshots(session, taken_on, keep_days)
    session.expire_all()
    return RfmRun(snapshot_id=snapshot_id, taken_on=taken_on, members=counts[0], buyers=counts[1],
                  pruned_snapshots=pruned)


_RFM_MEMBER_COLUMNS = ("rfm_recency_days", "rfm_frequency", "rfm_monetary", "rfm_r", "rfm_f", "rfm_m", "rfm_code",
                       "rfm_segment", "rfm_scored_at")


def prune_snapshots(session: Session, today: date, keep_days: int) -> int:
    """Keep every snapshot of the last `keep_days` days and, before that, the first of each month,
    so movement can still be shown month on month without a daily row per member forever."""
    dates = session.execute(sa.select(RfmSnapshot.id, RfmSnapshot.taken_on).order_by(RfmSnapshot.taken_on)).all()
    first_of_month: dict[tuple[int, int], int] = {}
    for snapshot_id, taken_on in dates:
        first_of_month.setdefault((taken_on.year, taken_on.month), snapshot_id)
    cutoff = today - timedelta(days=keep_days)
    doomed = [snapshot_id for snapshot_id, taken_on in dates
              if taken_on < cutoff and snapshot_id not in first_of_month.values()]
    _delete_snapshots(session, doomed)
    return len(doomed)


def _delete_snapshots(session: Session, snapshot_ids) -> None:
    snapshot_ids = list(snapshot_ids)
    if snapshot_ids:
        session.execute(sa.delete(RfmSnapshotMember).where(RfmSnapshotMember.snapshot_id.in_(snapshot_ids)))
        session.execute(sa.delete(RfmSnapshot).where(RfmSnapshot.id.in_(snapshot_ids)))


# Per-transaction settings for the scoring statements on PostgreSQL: memory enough to rank a million
# members without spilling sorts to disk, and no JIT compilation, which costs more than it saves on
# statements that run once a night.
POSTGRES_SCORING_SETTINGS = {"work_mem": "128MB", "jit": "off"}


def _one_scoring_at_a_time(session: Session, name: str) -> None:
    """Serialise concurrent runs of one job (the nightly schedule and a "rescore now" click) for the
    length of the transaction, before it reads what it replaces: on PostgreSQL with an advisory lock,
    also applying POSTGRES_SCORING_SETTINGS; on SQLite with the database's write lock."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(sa.select(sa.func.pg_advisory_xact_lock(sa.func.hashtext(f"loyalty.insights.{name}"))))
        for setting, value in POSTGRES_SCORING_SETTINGS.items():
            session.execute(sa.select(sa.func.set_config(setting, value, True)))
    else:
        take_sqlite_write_lock(session)


# --- reading ------------------------------------------------------------------------------------------

def latest_snapshots(session: Session, count: int = 2) -> list[RfmSnapshot]:
    """The newest `count` snapshots, newest first."""
    return list(session.scalars(sa.select(RfmSnapshot).order_by(RfmSnapshot.taken_on.desc()).limit(count)))


def segment_movement(session: Session, previous: RfmSnapshot | None = None,
                     current: RfmSnapshot | None = None) -> dict:
    """How members moved between segments from one snapshot to another (by default the last two).

    Returns {"previous": date|None, "current": date|None, "segments": [...], "from": [...labels],
    "counts": [[n, ...], ...] (row = previous segment, column = current segment), "moved": n,
    "stayed": n}. Members enrolled between the two runs come from the row JOINED_SINCE.
    """
    if previous is None or current is None:
        latest = latest_snapshots(session, 2)
        if len(latest) < 2:
            return {"previous": None, "current": latest[0].taken_on if latest else None, "segments": list(SEGMENTS),
                    "from": [*SEGMENTS, JOINED_SINCE], "counts": [], "moved": 0, "stayed": 0}
        current, previous = latest
    now_entries = aliased(RfmSnapshotMember, name="now_entries")
    then_entries = aliased(RfmSnapshotMember, name="then_entries")
    rows = session.execute(
        sa.select(then_entries.segment, now_entries.segment, sa.func.count())
        .select_from(now_entries)
        .outerjoin(then_entries, sa.and_(then_entries.member_id == now_entries.member_id,
                                         then_entries.snapshot_id == previous.id))
        .where(now_entries.snapshot_id == current.id)
        .group_by(then_entries.segment, now_entries.segment)
    ).all()
    sources = [*SEGMENTS, JOINED_SINCE]
    counts = np.zeros((len(sources), len(SEGMENTS)), dtype=np.int64)
    for before, after, members in rows:
        counts[sources.index(before or JOINED_SINCE), SEGMENTS.index(after)] += members
    stayed = int(np.trace(counts[:len(SEGMENTS)]))
    return {"previous": previous.taken_on, "current": current.taken_on, "segments": list(SEGMENTS),
            "from": sources, "counts": counts.tolist(), "moved": int(counts.sum()) - stayed, "stayed": stayed}


def segment_summary(session: Session) -> list[dict]:
    """Members and value per segment from the latest scores on the members, in grid order."""
    rows = session.execute(
        sa.select(Member.rfm_segment, sa.func.count(), sa.func.coalesce(sa.func.sum(Member.rfm_monetary), 0))
        .where(Member.status != "erased", Member.rfm_segment.is_not(None))
        .group_by(Member.rfm_segment)
    ).all()
    found = {segment: (members, int(value)) for segment, members, value in rows}
    return [{"segment": name, "members": found.get(name, (0, 0))[0], "monetary": found.get(name, (0, 0))[1]}
            for name in SEGMENTS]
