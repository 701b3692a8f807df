"""Background jobs: RQ queues when `REDIS_URL` is set, inline execution otherwise (the embedded default),
and the periodic schedule declared as data.

Jobs take ids, re-read the database and are safe to run twice. Enqueue only after the commit that
makes their input visible.
"""

import functools
from collections.abc import Callable
from dataclasses import dataclass

from flask import Flask, current_app, has_app_context
from redis import Redis
from rq import Queue, Retry

QUEUES = ("default", "maintenance", "scoring")


@dataclass(frozen=True)
class PeriodicJob:
    name: str
    func: str
    cron: str
    queue: str = "maintenance"
    timeout: int = 3600


# Minute hour day month weekday, in UTC. Each job is idempotent, so a missed or doubled run is harmless.
PERIODIC_JOBS = (
    PeriodicJob("release-holds", "loyalty.points.tasks.release_holds", "5 * * * *", timeout=600),
    PeriodicJob("expire-lots", "loyalty.points.tasks.expire_lots", "15 18 * * *"),
    PeriodicJob("evaluate-tiers", "loyalty.points.tasks.evaluate_tiers", "45 18 * * *"),
    PeriodicJob("expire-coupons", "loyalty.campaigns.tasks.expire_coupons", "25 18 * * *", timeout=1800),
    # Insights (loyalty/insights/tasks.py) after the points jobs, before the working day in UTC+8.
    PeriodicJob("score-rfm", "loyalty.insights.tasks.score_rfm", "15 19 * * *", queue="scoring"),
    PeriodicJob("score-churn", "loyalty.insights.tasks.score_churn", "30 19 * * *", queue="scoring"),
    PeriodicJob("compute-crosssell", "loyalty.insights.tasks.compute_crosssell", "45 19 * * *", queue="scoring"),
)


def redis_connection(app: Flask | None = None) -> Redis:
    app = app or current_app
    return Redis.from_url(app.config["REDIS_URL"])


def enqueue(func: Callable, *args, queue: str = "default", job_id: str | None = None, timeout: int = 600,
            retry_intervals: list[int] | None = None):
    """Run `func(*args)` on a worker, or right here when no Redis is configured. A job that fails is
    tried again after each of `retry_intervals` seconds (on a worker only)."""
    if not current_app.config["REDIS_URL"]:
        return func(*args)
    retry = Retry(max=len(retry_intervals), interval=retry_intervals) if retry_intervals else None
    return Queue(queue, connection=redis_connection()).enqueue(
        func, *args, job_id=job_id, job_timeout=timeout, result_ttl=3600, failure_ttl=7 * 24 * 3600, retry=retry
    )


def commit_until_done(step: Callable[[], int]) -> int:
    """Run a batched service step and commit, again and again until it does nothing; returns the
    total. A crash loses at most one batch, and a rerun carries on where this one stopped."""
    from loyalty.extensions import db

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
