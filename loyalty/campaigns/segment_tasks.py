"""Nightly re-evaluation of every saved segment (loyalty.jobs.PERIODIC_JOBS, after the scoring jobs so
rules on RFM and churn see the night's scores). One commit per segment: a crash loses at most the
segment in hand, and a rerun evaluates them all again, which changes nothing that has not changed."""

from loyalty.campaigns import segments
from loyalty.clock import utcnow
from loyalty.extensions import db
from loyalty.jobs import task


@task
def evaluate_segments() -> int:
    """Evaluate each saved segment in turn, in id order (a segment may name an older one with
    `in_segment`, which is then evaluated first); returns how many were evaluated."""
    segment_ids = segments.segment_ids(db.session)
    db.session.commit()
    for segment_id in segment_ids:
        segments.evaluate_segment(db.session, segment_id, utcnow())
        db.session.commit()
    return len(segment_ids)
