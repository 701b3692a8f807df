"""Coupon jobs. Thin: each commits what one service call did, so a crash loses at most one chunk and a
rerun carries on from there."""

from loyalty.campaigns import batches, services
from loyalty.clock import utcnow
from loyalty.extensions import db
from loyalty.jobs import commit_until_done, enqueue, task


@task
def issue_batch(batch_id: int) -> int:
    """Issue a coupon batch chunk by chunk; returns how many coupons this run issued."""
    issued = 0
    try:
        while chunk := batches.issue_next_chunk(db.session, batch_id, utcnow()):
            db.session.commit()
            issued += chunk
        db.session.commit()
    except Exception as error:
        db.session.rollback()
        batches.mark_failed(db.session, batch_id, f"{type(error).__name__}: {error}", utcnow())
        db.session.commit()
        raise
    return issued


def enqueue_batch(batch_id: int):
    """Start a committed batch on a worker (inline without Redis). Starting it twice is harmless:
    chunks are taken under a lock on the batch row, each run carrying on from the committed progress."""
    return enqueue(issue_batch, batch_id, queue="default", job_id=f"coupon-batch-{batch_id}", timeout=3600)


@task
def expire_coupons() -> int:
    now = utcnow()
    return commit_until_done(lambda: services.expire_coupons(db.session, now))
