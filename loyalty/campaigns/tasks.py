"""Coupon jobs. Thin: each commits what one service call did, so a crash loses at most one chunk and a
rerun carries on from there.

A batch resumes by itself after its run died (see loyalty.campaigns.batches): RQ tries a failed or
killed run again, and the sweeper (loyalty.jobs.sweep) calls `resume_stalled_batches`.
"""

from datetime import timedelta

from flask import current_app
from redis.exceptions import RedisError
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus
from rq.timeouts import JobTimeoutException
from sqlalchemy.exc import InterfaceError, OperationalError

from loyalty.campaigns import batches, services
from loyalty.clock import utcnow
from loyalty.extensions import db
from loyalty.jobs import commit_until_done, enqueue, redis_connection, task

# Errors of the moment, not of the batch: the database or Redis unreachable, or the run out of time.
# The batch stays queued or running and is resumed, instead of being marked failed.
OUTAGE_ERRORS = (OperationalError, InterfaceError, RedisError, OSError, JobTimeoutException)


def _job_id(batch_id: int) -> str:
    return f"coupon-batch-{batch_id}"


@task
def issue_batch(batch_id: int) -> int:
    """Issue a coupon batch chunk by chunk; returns how many coupons this run issued."""
    chunk_size = current_app.config["COUPON_BATCH_CHUNK_SIZE"]
    issued = 0
    try:
        while chunk := batches.issue_next_chunk(db.session, batch_id, utcnow(), chunk_size=chunk_size):
            db.session.commit()
            issued += chunk
        db.session.commit()
    except OUTAGE_ERRORS:
        db.session.rollback()
        raise
    except Exception as error:
        db.session.rollback()
        batches.mark_failed(db.session, batch_id, f"{type(error).__name__}: {error}", utcnow())
        db.session.commit()
        raise
    return issued


def enqueue_batch(batch_id: int):
    """Start a committed batch on a worker (inline without Redis). Starting it twice is harmless:
    chunks are taken under a lock on the batch row, each run carrying on from the committed progress."""
    return enqueue(issue_batch, batch_id, queue="default", job_id=_job_id(batch_id), timeout=3600,
                   retry_intervals=current_app.config["COUPON_BATCH_RETRY_INTERVALS"])


def resume_stalled_batches() -> int:
    """Queue again every batch that has stood still for COUPON_BATCH_STALL_SECONDS (its worker died:
    machine crash, or RQ's retries used up) and is not already waiting in RQ; returns how many."""
    still_since = utcnow() - timedelta(seconds=current_app.config["COUPON_BATCH_STALL_SECONDS"])
    batch_ids = batches.stalled_batch_ids(db.session, still_since)
    db.session.commit()
    connection = redis_connection()
    resumed = 0
    for batch_id in batch_ids:
        try:
            status = Job.fetch(_job_id(batch_id), connection=connection).get_status(refresh=False)
        except NoSuchJobError:
            status = None
        if status in (JobStatus.QUEUED, JobStatus.SCHEDULED, JobStatus.DEFERRED):
            continue
        current_app.logger.warning("coupon batch %s stood still since before %s: started again", batch_id,
                                   still_since.isoformat())
        enqueue_batch(batch_id)
        resumed += 1
    return resumed


@task
def expire_coupons() -> int:
    now = utcnow()
    return commit_until_done(lambda: services.expire_coupons(db.session, now))
