"""The campaign launch job. Thin: it commits each step of loyalty.campaigns.campaigns (the frozen
audience, then every chunk of actions), so a crash loses at most one chunk and a rerun carries on.

A launch resumes by itself after its run died, as coupon batches do: RQ tries a failed or killed run
again (CAMPAIGN_LAUNCH_RETRY_INTERVALS), and the sweeper (loyalty.jobs.sweep) calls
`resume_stalled_launches` for a campaign whose launch has stood still for CAMPAIGN_LAUNCH_STALL_SECONDS.
"""

from datetime import timedelta

from flask import current_app
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus

from loyalty.campaigns import campaigns
from loyalty.campaigns.tasks import OUTAGE_ERRORS
from loyalty.clock import utcnow
from loyalty.extensions import db
from loyalty.jobs import enqueue, redis_connection, task


def _job_id(campaign_id: int) -> str:
    return f"campaign-launch-{campaign_id}"


@task
def launch(campaign_id: int) -> int:
    """Freeze the audience (once), then act on treatment chunk by chunk; returns how many members this
    run acted on."""
    chunk_size = current_app.config["CAMPAIGN_LAUNCH_CHUNK_SIZE"]
    acted = 0
    try:
        campaigns.freeze_audience(db.session, campaign_id, utcnow())
        db.session.commit()
        while chunk := campaigns.act_next_chunk(db.session, campaign_id, utcnow(), chunk_size=chunk_size):
            db.session.commit()
            acted += chunk
        db.session.commit()
    except OUTAGE_ERRORS:
        db.session.rollback()
        raise
    except Exception as error:
        db.session.rollback()
        campaigns.record_launch_error(db.session, campaign_id, f"{type(error).__name__}: {error}")
        db.session.commit()
        raise
    return acted


def enqueue_launch(campaign_id: int):
    """Start (or start again) a committed launch on a worker (inline without Redis). Two runs at once
    are harmless: each step locks the campaign row and carries on from what is committed."""
    return enqueue(launch, campaign_id, queue="default", job_id=_job_id(campaign_id), timeout=3600,
                   retry_intervals=current_app.config["CAMPAIGN_LAUNCH_RETRY_INTERVALS"])


def resume_stalled_launches() -> int:
    """Queue again every launch that has stood still for CAMPAIGN_LAUNCH_STALL_SECONDS and is not
    already waiting in RQ; returns how many."""
    still_since = utcnow() - timedelta(seconds=current_app.config["CAMPAIGN_LAUNCH_STALL_SECONDS"])
    campaign_ids = campaigns.stalled_launch_ids(db.session, still_since)
    db.session.commit()
    if not campaign_ids:
        return 0
    connection = redis_connection()
    resumed = 0
    for campaign_id in campaign_ids:
        try:
            status = Job.fetch(_job_id(campaign_id), connection=connection).get_status(refresh=False)
        except NoSuchJobError:
            status = None
        if status in (JobStatus.QUEUED, JobStatus.SCHEDULED, JobStatus.DEFERRED):
            continue
        current_app.logger.warning("campaign %s launch stood still since before %s: started again", campaign_id,
                                   still_since.isoformat())
        enqueue_launch(campaign_id)
        resumed += 1
    return resumed
