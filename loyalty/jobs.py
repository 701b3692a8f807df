"""Background jobs: RQ queues when `REDIS_URL` is set, inline execution otherwise (the embedded default),
and the periodic schedule declared as data.

Jobs take ids, re-read the database and are safe to run twice. Enqueue only after the commit that
makes their input visible.

Losing Redis loses no job. When Redis does not answer an enqueue (within JOBS_REDIS_TIMEOUT_SECONDS),
the job is written to the `deferred_jobs` table instead and the caller carries on as if it had been
queued. The sweeper (`sweep`, every minute in PERIODIC_JOBS, and first thing whenever a worker starts)
hands those rows to RQ once Redis answers again, and resumes coupon batches whose worker died
(loyalty.campaigns.tasks.resume_stalled_batches).
"""

import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from flask import Flask, current_app, has_app_context
from redis import Redis
from redis.exceptions import RedisError
from rq import Queue, Retry
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Mapped, mapped_column

from loyalty.clock import utcnow
from loyalty.db import created_at_column, id_column
from loyalty.extensions import db

QUEUES = ("default", "maintenance", "scoring")

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PeriodicJob:
    name: str
    func: str
    cron: str
    queue: str = "maintenance"
    timeout: int = 3600
    # Seconds a run may wait in its queue before RQ drops it (None: no limit).
    ttl: int | None = None


# Minute hour day month weekday, in UTC. Each job is idempotent, so a missed or doubled run is harmless;
# still, loyalty.worker enqueues each period's run once however many schedulers run.
PERIODIC_JOBS = (
    # A sweep waiting behind a long job is dropped after two minutes: the next one does the same work.
    PeriodicJob("sweep", "loyalty.jobs.sweep", "* * * * *", timeout=300, ttl=120),
    PeriodicJob("release-holds", "loyalty.points.tasks.release_holds", "5 * * * *", timeout=600),
    PeriodicJob("expire-lots", "loyalty.points.tasks.expire_lots", "15 18 * * *"),
    PeriodicJob("evaluate-tiers", "loyalty.points.tasks.evaluate_tiers", "45 18 * * *"),
    PeriodicJob("expire-coupons", "loyalty.campaigns.tasks.expire_coupons", "25 18 * * *", timeout=1800),
    # Insights (loyalty/insights/tasks.py) after the points jobs, before the working day in UTC+8.
    PeriodicJob("score-rfm", "loyalty.insights.tasks.score_rfm", "15 19 * * *", queue="scoring"),
    PeriodicJob("score-churn", "loyalty.insights.tasks.score_churn", "30 19 * * *", queue="scoring"),
    PeriodicJob("compute-crosssell", "loyalty.insights.tasks.compute_crosssell", "45 19 * * *", queue="scoring"),
    # Segments after the night's scores, on the same queue so a long rescore finishes before they read it.
    PeriodicJob("evaluate-segments", "loyalty.campaigns.segment_tasks.evaluate_segments", "55 19 * * *",
                queue="scoring"),
)


class DeferredJob(db.Model):
    """A job that could not be queued because Redis did not answer; the sweeper queues it later."""

    __tablename__ = "deferred_jobs"

    id: Mapped[int] = id_column()
    func: Mapped[str] = mapped_column(sa.String(200))
    args: Mapped[list] = mapped_column(sa.JSON)
    queue: Mapped[str] = mapped_column(sa.String(40))
    # The job's fixed RQ id, if it has one: asking again while deferred keeps one row, as RQ keeps one job.
    job_id: Mapped[str | None] = mapped_column(sa.String(200), unique=True)
    timeout: Mapped[int] = mapped_column()
    retry_intervals: Mapped[list | None] = mapped_column(sa.JSON)
    error: Mapped[str] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = created_at_column()


def redis_connection(app: Flask | None = None) -> Redis:
    app = app or current_app
    return Redis.from_url(app.config["REDIS_URL"])


def _enqueue_connection() -> Redis:
    """A connection that gives up quickly: a request waits this long at most for a dead Redis."""
    seconds = current_app.config["JOBS_REDIS_TIMEOUT_SECONDS"]
    return Redis.from_url(current_app.config["REDIS_URL"], socket_connect_timeout=seconds, socket_timeout=seconds)


def _retry(retry_intervals: list[int] | None) -> Retry | None:
    return Retry(max=len(retry_intervals), interval=retry_intervals) if retry_intervals else None


def enqueue(func: Callable, *args, queue: str = "default", job_id: str | None = None, timeout: int = 600,
            retry_intervals: list[int] | None = None):
    """Run `func(*args)` on a worker, or right here when no Redis is configured. A job that fails is
    tried again after each of `retry_intervals` seconds (on a worker only). Returns the RQ job, or None
    when Redis did not answer and the job waits in `deferred_jobs` for the sweeper; never raises a
    Redis error."""
    if not current_app.config["REDIS_URL"]:
        return func(*args)
    try:
        return Queue(queue, connection=_enqueue_connection()).enqueue(
            func, *args, job_id=job_id, job_timeout=timeout, result_ttl=3600, failure_ttl=7 * 24 * 3600,
            retry=_retry(retry_intervals))
    except RedisError as error:
        name = f"{func.__module__}.{func.__qualname__}"
        log.warning("job %s not queued, Redis: %s; kept in deferred_jobs for the sweeper", name, error)
        _defer(name, list(args), queue=queue, job_id=job_id, timeout=timeout, retry_intervals=retry_intervals,
               error=f"{type(error).__name__}: {error}")
        return None


def _defer(func: str, args: list, *, queue: str, job_id: str | None, timeout: int,
           retry_intervals: list[int] | None, error: str) -> None:
    """Commit the job's row on a connection of its own: the caller's session has committed already
    (enqueue comes after the commit) and is left as it is."""
    with db.engine.begin() as connection:
        insert = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}[connection.dialect.name]
        connection.execute(insert(DeferredJob.__table__).values(
            func=func, args=args, queue=queue, job_id=job_id, timeout=timeout, retry_intervals=retry_intervals,
            error=error[:2000], created_at=utcnow()).on_conflict_do_nothing())


def hand_over_deferred_jobs(limit: int = 1000) -> int:
    """Queue up to `limit` deferred jobs in RQ, oldest first; returns how many. Each row is deleted in
    the transaction that is committed only after RQ took its job, so a Redis failure keeps the row, and
    two sweepers never queue one row twice (the second one's DELETE finds it gone). A crash between RQ
    taking a job and the commit queues it once more later, which a job can stand."""
    ids = list(db.session.scalars(sa.select(DeferredJob.id).order_by(DeferredJob.id).limit(limit)))
    db.session.commit()
    table = DeferredJob.__table__
    connection = redis_connection()
    handed_over = 0
    for row_id in ids:
        row = db.session.execute(sa.delete(table).where(table.c.id == row_id).returning(*table.c)).first()
        if row is None:
            db.session.rollback()
            continue
        try:
            Queue(row.queue, connection=connection).enqueue(
                row.func, *row.args, job_id=row.job_id, job_timeout=row.timeout, result_ttl=3600,
                failure_ttl=7 * 24 * 3600, retry=_retry(row.retry_intervals))
        except RedisError:
            db.session.rollback()
            raise
        db.session.commit()
        handed_over += 1
    if handed_over:
        log.info("%s deferred jobs handed to RQ", handed_over)
    return handed_over


def commit_until_done(step: Callable[[], int]) -> int:
    """Run a batched service step and commit, again and again until it does nothing; returns the
    total. A crash loses at most one batch, and a rerun carries on where this one stopped."""
    total = 0
    while done := step():
        db.session.commit()
        total += done
    db.session.commit()
    return total


_worker_app: Flask | None = None


def task(func: Callable) -> Callable:
    """Run a job function inside an application context: the caller's when inline, otherwise one app
    built once per worker process."""

    @functools.wraps(func)
    def run(*args, **kwargs):
        if has_app_context():
            return func(*args, **kwargs)
        global _worker_app
        if _worker_app is None:
            from loyalty import create_app

            _worker_app = create_app()
        with _worker_app.app_context():
            return func(*args, **kwargs)

    return run


@task
def sweep() -> dict:
    """Queue the jobs deferred while Redis was away, and resume coupon batches and campaign launches
    that stopped moving."""
    from loyalty.campaigns.campaign_tasks import resume_stalled_launches
    from loyalty.campaigns.tasks import resume_stalled_batches

    return {"handed_over": hand_over_deferred_jobs(), "resumed_batches": resume_stalled_batches(),
            "resumed_launches": resume_stalled_launches()}
