"""`loyalty worker`: an RQ worker for the app's queues, and the cron scheduler of PERIODIC_JOBS in a
child process (RQ's CronScheduler blocks and installs its own signal handlers).

Several workers may each run a scheduler: `OncePerPeriodCronScheduler` enqueues each period's run of a
job once among all of them. The scheduler outlives a Redis outage (it starts again once Redis answers),
and every worker queues a sweep (loyalty.jobs.sweep) when it starts, so jobs deferred while Redis was
away, and coupon batches of a dead worker, do not wait for the next minute's sweep.
"""

import importlib
import logging
import multiprocessing
import os
import time

from flask import Flask
from redis import Redis
from redis.exceptions import RedisError
from rq import Queue, Retry, Worker
from rq.cron import CronJob, CronScheduler
from rq.exceptions import StopRequested
from rq.utils import now

from loyalty.jobs import PERIODIC_JOBS, QUEUES, redis_connection, sweep

log = logging.getLogger(__name__)

# How long a period's claim is kept: far longer than two schedulers' clocks or loops can differ.
CLAIM_SECONDS = 3600
# Tries of a periodic run whose work horse died or failed, at these delays in seconds; later runs
# would catch up anyway, but a daily job should not wait a day.
PERIODIC_RETRY = Retry(max=2, interval=[60, 600])
SCHEDULER_RECONNECT_SECONDS = 5


class OncePerPeriodCronScheduler(CronScheduler):
    """RQ's CronScheduler, except that a due run is enqueued only by the scheduler that claims it first:
    RQ 3.0 has no lock between schedulers, so two workers with a scheduler each ran every job twice.
    The claim is a Redis key per job and due time, set only if absent (SET NX)."""

    def enqueue_jobs(self) -> list[CronJob]:
        enqueue_time = now()
        due = []
        for job in self._cron_jobs:
            if job.should_run():
                if self.claim(job):
                    enqueue_with_retry(job, self.connection)
                job.set_enqueue_time(enqueue_time)
                due.append(job)
        return due

    def claim(self, job: CronJob) -> bool:
        key = f"loyalty:cron-claim:{job.name}:{int(job.next_enqueue_time.timestamp())}"
        return bool(self.connection.set(key, self.name, nx=True, ex=CLAIM_SECONDS))


def build_cron_scheduler(app: Flask) -> CronScheduler:
    scheduler = OncePerPeriodCronScheduler(connection=redis_connection(app))
    for job in PERIODIC_JOBS:
        module, _, name = job.func.rpartition(".")
        scheduler.register(getattr(importlib.import_module(module), name), queue_name=job.queue, cron=job.cron,
                           job_timeout=job.timeout, ttl=job.ttl, name=job.name)
    return scheduler


def enqueue_with_retry(job: CronJob, connection: Redis) -> None:
    """Enqueue a periodic run with PERIODIC_RETRY. The Retry is in the job's options only for the
    enqueue: RQ saves the options in the scheduler's record in Redis as JSON, which a Retry is not (the
    scheduler died on it before its first run)."""
    job.job_options["retry"] = PERIODIC_RETRY
    try:
        job.enqueue(connection)
    finally:
        del job.job_options["retry"]


def _run_scheduler(redis_url: str) -> None:
    from loyalty import create_app

    # RQ reads cron expressions in the process's local time; PERIODIC_JOBS are written in UTC.
    os.environ["TZ"] = "UTC"
    time.tzset()
    app = create_app({"REDIS_URL": redis_url})
    while True:
        try:
            build_cron_scheduler(app).start()
            return
        except RedisError as error:
            log.warning("cron scheduler: Redis: %s; starting again in %s s", error, SCHEDULER_RECONNECT_SECONDS)
        try:
            time.sleep(SCHEDULER_RECONNECT_SECONDS)
        except StopRequested:  # the scheduler's signal handler, still installed
            return


def run_worker(app: Flask, queues: list[str] | None, *, burst: bool, scheduler: bool) -> None:
    connection = redis_connection(app)
    queues = [Queue(name, connection=connection) for name in (queues or QUEUES)]
    queues[0].enqueue(sweep, job_timeout=300, ttl=120, at_front=True)
    cron = None
    if scheduler and not burst:
        cron = multiprocessing.Process(target=_run_scheduler, args=(app.config["REDIS_URL"],), daemon=True)
        cron.start()
    try:
        worker = Worker(queues, connection=connection)
        worker.work(burst=burst, with_scheduler=True)
    finally:
        if cron is not None:
            cron.terminate()
