"""Two workers, each with its cron scheduler: every periodic job is enqueued once per period, not once
per scheduler (loyalty/worker.py). RQ 3.0's CronScheduler has no lock of its own between instances."""

from datetime import UTC, datetime, timedelta

from rq import Queue
from rq.cron import CronScheduler

from loyalty.jobs import PERIODIC_JOBS, QUEUES, redis_connection
from loyalty.worker import build_cron_scheduler


def queued(app) -> dict[str, int]:
    connection = redis_connection(app)
    return {name: Queue(name, connection=connection).count for name in QUEUES}


def test_two_schedulers_enqueue_each_period_once(app, own_redis):
    schedulers = [build_cron_scheduler(app), build_cron_scheduler(app)]
    per_queue = {name: sum(job.queue == name for job in PERIODIC_JOBS) for name in QUEUES}
    period = datetime(2026, 12, 3, 18, 0, tzinfo=UTC)
    for runs in (1, 2):
        for scheduler in schedulers:
            for job in scheduler.get_jobs():
                job.next_enqueue_time = period  # every job due, for the same period, in both
        for scheduler in schedulers:
            assert len(scheduler.enqueue_jobs()) == len(PERIODIC_JOBS)
        assert queued(app) == {name: count * runs for name, count in per_queue.items()}
        period += timedelta(hours=1)


def test_periodic_runs_are_retried_when_their_work_horse_dies(app, own_redis):
    [scheduler] = [build_cron_scheduler(app)]
    for job in scheduler.get_jobs():
        job.next_enqueue_time = datetime(2026, 12, 3, 18, 0, tzinfo=UTC)
    scheduler.enqueue_jobs()
    jobs = Queue("maintenance", connection=redis_connection(app)).jobs
    assert jobs and all(job.retries_left == 2 for job in jobs)


def test_a_scheduler_can_record_itself_in_redis(app, own_redis):
    """`start()` first writes the scheduler's record, every job's options included, as JSON: an option
    JSON cannot hold (a Retry) killed the scheduler before its first run, in every `loyalty worker`."""
    scheduler = build_cron_scheduler(app)
    scheduler.register_birth()
    assert [found.name for found in CronScheduler.all(redis_connection(app))] == [scheduler.name]
