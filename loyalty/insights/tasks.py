"""Insights jobs: RFM scoring, churn scoring, cross-sell rules. Thin: each reads the settings, calls
one service, commits once, and records the run (start, duration, outcome) in insight_job_runs for the
dashboard. Each is idempotent: a second run on the same day replaces the first one's results.

Nightly on the "scoring" queue (loyalty.jobs.PERIODIC_JOBS); `rescore_all` is the dashboard's
"rescore now", one job that runs the three in turn so their progress shows run by run.
"""

import time
from collections.abc import Callable
from dataclasses import asdict
from datetime import datetime, timedelta

import sqlalchemy as sa
from flask import current_app
from redis.exceptions import RedisError
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus

from loyalty.clock import utcnow
from loyalty.extensions import db
from loyalty.insights import churn, crosssell, rfm
from loyalty.insights.models import JobRun
from loyalty.insights.services import InsightsSettings
from loyalty.jobs import enqueue, redis_connection, task

QUEUE = "scoring"
TIMEOUT_SECONDS = 3600
RESCORE_JOB_ID = "insights-rescore"


def _settings() -> InsightsSettings:
    return InsightsSettings.from_config(current_app.config)


def _recorded(job: str, work: Callable[[datetime], dict]) -> dict:
    """Run `work(now)` and commit it, with a JobRun row committed first as 'running' (so a dashboard
    sees it start) and then marked 'succeeded' in the same commit as the work, or 'failed'."""
    started_at = utcnow()
    # A run still 'running' long past the job timeout died with its worker; say so.
    db.session.execute(
        sa.update(JobRun)
        .where(JobRun.job == job, JobRun.status == "running",
               JobRun.started_at < started_at - timedelta(seconds=TIMEOUT_SECONDS))
        .values(status="failed", error="abandoned: the worker stopped before the run finished")
    )
    run = JobRun(job=job, status="running", started_at=started_at, detail={})
    db.session.add(run)
    db.session.commit()
    run_id, clock = run.id, time.perf_counter()
    try:
        detail = work(started_at)
        _finish(run_id, started_at, clock, "succeeded", detail=detail)
        db.session.commit()
        return detail
    except Exception as error:
        db.session.rollback()
        _finish(run_id, started_at, clock, "failed", error=f"{type(error).__name__}: {error}")
        db.session.commit()
        raise


def _finish(run_id: int, started_at: datetime, clock: float, status: str, *, detail: dict | None = None,
            error: str | None = None) -> None:
    elapsed = time.perf_counter() - clock
    run = db.session.get(JobRun, run_id)
    run.status = status
    # Measured, not read from the program clock: tests freeze that clock, and durations are real.
    run.duration_ms = round(elapsed * 1000)
    run.finished_at = started_at + timedelta(seconds=elapsed)
    run.detail = detail or {}
    run.error = error


@task
def score_rfm() -> dict:
    settings = _settings()

    def work(now):
        result = rfm.score_rfm(db.session, now, settings.rfm_window_days, settings.rfm_snapshot_keep_days)
        return {**asdict(result), "taken_on": result.taken_on.isoformat()}

    return _recorded("rfm", work)


@task
def score_churn() -> dict:
    settings = _settings()

    def work(now):
        return asdict(churn.score_churn(db.session, now, settings.churn_horizon_days, settings.churn_risk_cuts))

    return _recorded("churn", work)


@task
def compute_crosssell() -> dict:
    settings = _settings()

    def work(now):
        rules = crosssell.compute_rules(db.session, now, settings.crosssell_window_days,
                                        settings.crosssell_min_together)
        return {"rules": rules}

    return _recorded("crosssell", work)


@task
def rescore_all() -> dict:
    """RFM, churn and cross-sell one after another (each its own run and commit)."""
    return {"rfm": score_rfm(), "churn": score_churn(), "crosssell": compute_crosssell()}


def request_rescore():
    """Queue `rescore_all` (or run it right here when no Redis is configured). While one is queued or
    running, asking again returns that one: impatient clicks do not pile up runs."""
    if current_app.config["REDIS_URL"]:
        try:
            pending = Job.fetch(RESCORE_JOB_ID, connection=redis_connection())
        except (NoSuchJobError, RedisError):  # Redis away: `enqueue` keeps the job for the sweeper
            pending = None
        if pending is not None and pending.get_status(refresh=False) in (
                JobStatus.QUEUED, JobStatus.STARTED, JobStatus.DEFERRED, JobStatus.SCHEDULED):
            return pending
    return enqueue(rescore_all, queue=QUEUE, job_id=RESCORE_JOB_ID, timeout=3 * TIMEOUT_SECONDS)
