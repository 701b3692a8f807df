"""`loyalty worker`: an RQ worker for the app's queues, and the cron scheduler of PERIODIC_JOBS in a
child process (RQ's CronScheduler blocks and installs its own signal handlers)."""

import importlib
import multiprocessing

from flask import Flask
from rq import Queue, Worker
from rq.cron import CronScheduler

from loyalty.jobs import PERIODIC_JOBS, QUEUES, redis_connection


def build_cron_scheduler(app: Flask) -> CronScheduler:
    scheduler = CronScheduler(connection=redis_connection(app), name="loyalty-cron")
    for job in PERIODIC_JOBS:
        module, _, name = job.func.rpartition(".")
        scheduler.register(getattr(importlib.import_module(module), name), queue_name=job.queue, cron=job.cron,
                           job_timeout=job.timeout, name=job.name)
    return scheduler


def _run_scheduler(redis_url: str) -> None:
    from loyalty import create_app

    build_cron_scheduler(create_app({"REDIS_URL": redis_url})).start()


def run_worker(app: Flask, queues: list[str] | None, *, burst: bool, scheduler: bool) -> None:
    connection = redis_connection(app)
    cron = None
    if scheduler and not burst:
        cron = multiprocessing.Process(target=_run_scheduler, args=(app.config["REDIS_URL"],), daemon=True)
        cron.start()
    try:
        worker = Worker([Queue(name, connection=connection) for name in (queues or QUEUES)], connection=connection)
        worker.work(burst=burst, with_scheduler=True)
    finally:
        if cron is not None:
            cron.terminate()
