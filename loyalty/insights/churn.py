"""Churn risk wired to the database: read the purchase history in one query, score it with the
models of `churn_models` (no database there), write risk, band and explanation back in bulk.

The history is every purchase (as RFM counts them: sales not refunded in full, by members who are not
erased) on or before the scoring time, as (member, UTC day, amount net of refunds). On PostgreSQL it
arrives packed into one binary value that numpy reads in place (see `_packed_event_log`), so ten
million purchases cost a second or two, not the half minute that ten million Python tuples would.
"""

from dataclasses import dataclass
from datetime import datetime

import numpy as np
import sqlalchemy as sa
from sqlalchemy.orm import Session
from threadpoolctl import threadpool_limits

from loyalty.insights.churn_models import DEFAULT_RISK_CUTS, BGNBDChurn, default_churn_model, facts_code, risk_band
from loyalty.insights.models import utc_day
from loyalty.insights.purchase_log import EventLog, take_snapshot
from loyalty.insights.rfm import _one_scoring_at_a_time
from loyalty.members.models import Member
from loyalty.sales.models import Transaction

BASIS_POINTS = 10_000
NULL = "\\N"  # COPY text format


def purchases_select(as_of: datetime) -> sa.Select:
    """(member_id, day, amount) of every purchase up to `as_of`, in no particular order."""
    sales, members = Transaction.__table__, Member.__table__
    erased = sa.select(members.c.id).where(members.c.status == "erased")
    return sa.select(
        sales.c.member_id,
        utc_day(sales.c.occurred_at).label("day"),
        (sales.c.amount - sales.c.refunded_amount).label("amount"),
    ).where(
        sales.c.kind == "sale",
        sales.c.member_id.is_not(None),
        sales.c.occurred_at <= as_of,
        sa.or_(sales.c.refunded_amount < sales.c.amount, sales.c.amount == 0),
        sales.c.member_id.not_in(erased),
    )


def load_event_log(session: Session, as_of: datetime) -> EventLog:
    """The purchase history as an EventLog, read with one query."""
    query = purchases_select(as_of)
    if session.get_bind().dialect.name == "postgresql":
        return _packed_event_log(session, query)
    rows = session.execute(query).all()
    if not rows:
        return EventLog.from_arrays(np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0))
    member_ids, days, amounts = (np.asarray(column) for column in zip(*rows, strict=True))
    return EventLog.from_arrays(member_ids.astype(np.int64), days.astype(np.int64), amounts.astype(float))


# On PostgreSQL each purchase travels as 20 bytes of one bytea (member int8, day int4, amount int8,
# big-endian, as int8send/int4send write them), so a million purchases are one 20 MB value that numpy
# reads in place: about a tenth of the client CPU of COPY, whose rows arrive one message each, or of
# fetching tuples. One value is capped at 1 GB: some 50 million purchases.
_PACKED_PURCHASE = np.dtype([("member_id", ">i8"), ("day", ">i4"), ("amount", ">i8")])


def _packed_event_log(session: Session, query: sa.Select) -> EventLog:
    rows = query.subquery("purchases")
    packed = sa.func.int8send(rows.c.member_id).op("||")(sa.func.int4send(rows.c.day)) \
        .op("||")(sa.func.int8send(rows.c.amount))
    statement = sa.select(sa.func.string_agg(packed, sa.literal(b"", sa.LargeBinary))) \
        .compile(dialect=session.get_bind().dialect)
    # Through the driver, to ask for the binary result format: as text, bytea travels hex-encoded,
    # twice the bytes and a decoding pass. Same connection, so same transaction.
    with session.connection().connection.driver_connection.cursor() as cursor:
        cursor.execute(str(statement), statement.params, binary=True)
        blob = cursor.fetchone()[0]
    purchases = np.frombuffer(blob or b"", _PACKED_PURCHASE)
    return EventLog(purchases["member_id"].astype(np.int64), purchases["day"].astype(np.int64),
                    purchases["amount"].astype(float))


@dataclass(frozen=True)
class ChurnScores:
    """Scores for every member with a purchase, in member id order."""

    model: str
    member_ids: np.ndarray
    risk_bp: np.ndarray
    bands: np.ndarray
    explanations: list[str]


def score_history(history: EventLog, now: datetime, horizon_days: int,
                  cuts: tuple[float, float] = DEFAULT_RISK_CUTS) -> ChurnScores:
    """Fit and score as churn_models.score_members does, with the default model, falling back to the
    BG/NBD (which needs no labels) while the history is too short to train on; plus bands and the
    explanations a marketer reads. Pure numpy: no database."""
    snapshot = take_snapshot(history, now)
    if not len(snapshot.customer_ids):
        return ChurnScores(model="none", member_ids=snapshot.customer_ids, risk_bp=np.empty(0, np.int64),
                           bands=np.empty(0, object), explanations=[])
    # A tiny or degenerate history can put a BG/NBD parameter on a pole (a = 1 divides by zero in
    # expected purchases); the results are checked below rather than warned about. One BLAS thread:
    # the models' linear algebra is vectors and small matrices, where extra BLAS threads only spin
    # (measured: 3x the CPU time for the same result at 100,000 members on 2 cores).
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"), threadpool_limits(limits=1):
        model, risk = _fit_and_score(default_churn_model(horizon_days), history, snapshot, now)
        if model is None or not np.all(np.isfinite(risk)):
            model, risk = _fit_and_score(BGNBDChurn(horizon_days=horizon_days), history, snapshot, now)
    if model is None:  # nothing could be fitted: explanations still, risks left empty
        risk = np.full(len(snapshot.customer_ids), np.nan)
    risk_bp = np.where(np.isfinite(risk), np.rint(np.nan_to_num(risk) * BASIS_POINTS), -1).astype(np.int64)
    # The band is cut from the stored basis points, so a risk shown as 30.00% is never "low".
    bands = np.asarray(risk_band(risk_bp / BASIS_POINTS, cuts), dtype=object).reshape(-1)
    bands[risk_bp < 0] = None
    explanations = explain_all(snapshot.recency_days, snapshot.purchase_days, snapshot.usual_gap_days)
    return ChurnScores(model=type(model).__name__ if model else "none", member_ids=snapshot.customer_ids,
                       risk_bp=risk_bp, bands=bands, explanations=explanations)


def _fit_and_score(model, history: EventLog, snapshot, now):
    """score_members(model, history, now), reusing the snapshot the explanations need as well.
    (None, None) when the model cannot learn from this history (too short: no labels yet)."""
    try:
        model.fit(history, now)
        return model, model.churn_risk(snapshot)
    except ValueError:
        return None, None


def explain_all(recency_days: np.ndarray, frequency: np.ndarray, usual_gap_days: np.ndarray) -> list[str]:
    """churn_models.churn_facts for a whole population, vectorised."""
    recency_days = np.rint(recency_days).astype(np.int64)
    frequency = np.asarray(frequency, np.int64)
    gap = np.where(np.isnan(usual_gap_days), -1, np.rint(np.nan_to_num(usual_gap_days, nan=-1.0))).astype(np.int64)
    return [facts_code(r, f, g if g >= 0 else None)
            for r, f, g in zip(recency_days.tolist(), frequency.tolist(), gap.tolist(), strict=True)]


@dataclass(frozen=True)
class ChurnRun:
    model: str
    scored: int
    bands: dict[str, int]
    cleared: int


_scores_table = sa.Table(
    "churn_scores_scratch", sa.MetaData(),
    sa.Column("member_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("risk_bp", sa.Integer),
    sa.Column("band", sa.String(8)),
    sa.Column("explanation", sa.String(200)),
    prefixes=["TEMPORARY"],
    postgresql_on_commit="DROP",
)


def score_churn(session: Session, now: datetime, horizon_days: int = 90,
                cuts: tuple[float, float] = DEFAULT_RISK_CUTS) -> ChurnRun:
    """Score every member with a purchase up to `now` and write the results onto the members in one
    UPDATE ... FROM a scratch table; members with no purchase (or erased) lose any old score.
    Deterministic and safe to repeat. Flushes, never commits."""
    _one_scoring_at_a_time(session, "churn")
    history = load_event_log(session, now)
    scores = score_history(history, now, horizon_days, cuts)
    _write_scores(session, scores)
    members, scratch = Member.__table__, _scores_table
    session.execute(
        sa.update(members).where(members.c.id == scratch.c.member_id)
        .values(churn_risk_bp=scratch.c.risk_bp, churn_band=scratch.c.band,
                churn_explanation=scratch.c.explanation, churn_scored_at=now)
    )
    # Scored before but not now (erased since, or every purchase refunded): clear. Telling them by
    # the time stamp the UPDATE above just wrote avoids an anti-join with the scratch table (6 s of a
    # million-member run); it assumes runs happen at distinct times, as any two runs on a clock do.
    cleared = session.execute(
        sa.update(members)
        .where(members.c.churn_scored_at < now)
        .values(churn_risk_bp=None, churn_band=None, churn_explanation=None, churn_scored_at=now)
    ).rowcount
    scratch.drop(session.connection())
    session.expire_all()
    names, counts = np.unique(scores.bands[scores.bands != None].astype(str), return_counts=True)  # noqa: E711
    return ChurnRun(model=scores.model, scored=len(scores.member_ids),
                    bands={str(name): int(count) for name, count in zip(names, counts, strict=True)},
                    cleared=cleared)


def _write_scores(session: Session, scores: ChurnScores) -> None:
    """Fill the scratch table: COPY on PostgreSQL, executemany elsewhere."""
    connection = session.connection()
    _scores_table.create(connection)
    risks = [None if risk_bp < 0 else risk_bp for risk_bp in scores.risk_bp.tolist()]
    rows = zip(scores.member_ids.tolist(), risks, scores.bands.tolist(), scores.explanations, strict=True)
    if connection.dialect.name == "postgresql":
        # One text COPY built in one join: the values hold no tab, newline or backslash to escape.
        text = "".join(f"{member_id}\t{NULL if risk_bp is None else risk_bp}\t{band or NULL}\t{explanation}\n"
                       for member_id, risk_bp, band, explanation in rows)
        raw = connection.connection.driver_connection
        with raw.cursor() as cursor, cursor.copy(
            f"COPY {_scores_table.name} (member_id, risk_bp, band, explanation) FROM STDIN"
        ) as copy:
            copy.write(text)
        # A fresh temporary table has no statistics; without them the UPDATE may not plan a hash join.
        connection.exec_driver_sql(f"ANALYZE {_scores_table.name}")
        return
    if not len(scores.member_ids):
        return
    connection.execute(_scores_table.insert(), [
        {"member_id": member_id, "risk_bp": risk_bp, "band": band, "explanation": explanation}
        for member_id, risk_bp, band, explanation in rows
    ])


def churn_bands(session: Session) -> list[dict]:
    """Members and mean risk per band from the latest scores, low to high."""
    rows = session.execute(
        sa.select(Member.churn_band, sa.func.count(), sa.func.avg(Member.churn_risk_bp))
        .where(Member.status != "erased", Member.churn_band.is_not(None))
        .group_by(Member.churn_band)
    ).all()
    found = {band: (members, mean) for band, members, mean in rows}
    return [{"band": band, "members": found.get(band, (0, None))[0],
             "mean_risk_bp": None if found.get(band, (0, None))[1] is None else round(float(found[band][1]))}
            for band in ("low", "medium", "high")]
