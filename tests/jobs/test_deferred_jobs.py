"""Losing Redis loses no job: an enqueue while Redis is away is kept in the database, the request goes
on, and the sweeper hands the job to RQ once Redis answers again (loyalty/jobs.py)."""

import time

import sqlalchemy as sa
from rq import Queue, SimpleWorker

from loyalty.campaigns import batches, services, tasks
from loyalty.campaigns.models import Coupon, CouponBatch
from loyalty.clock import utcnow
from loyalty.extensions import db
from loyalty.jobs import DeferredJob, hand_over_deferred_jobs, redis_connection
from tests.support.portal import new_portal_member, submit, use_cheap_password_hashing


def deferred(app) -> list[DeferredJob]:
    with app.app_context():
        return list(db.session.scalars(sa.select(DeferredJob).order_by(DeferredJob.id)))


def test_a_batch_started_while_redis_is_down_waits_and_then_runs_once(app, campaigns, own_redis):
    offer = campaigns.offer()
    own_redis.stop()
    with app.app_context():
        batch = batches.create_batch(db.session, services.get_offer(db.session, offer["id"]), count=7, now=utcnow())
        db.session.commit()
        batch_id = batch.id
        started = time.monotonic()
        assert tasks.enqueue_batch(batch_id) is None
        assert time.monotonic() - started < app.config["JOBS_REDIS_TIMEOUT_SECONDS"] + 1
        tasks.enqueue_batch(batch_id)  # asked twice: one job, as RQ would keep one under its id

    [job] = deferred(app)
    assert (job.func, job.args, job.queue, job.job_id) == (
        "loyalty.campaigns.tasks.issue_batch", [batch_id], "default", f"coupon-batch-{batch_id}")
    assert job.retry_intervals == app.config["COUPON_BATCH_RETRY_INTERVALS"]
    assert "ConnectionError" in job.error

    own_redis.start()
    with app.app_context():
        assert hand_over_deferred_jobs() == 1
        assert hand_over_deferred_jobs() == 0
        connection = redis_connection()
        SimpleWorker([Queue("default", connection=connection)], connection=connection).work(burst=True)
        db.session.expire_all()
        batch = db.session.get(CouponBatch, batch_id)
        assert (batch.status, batch.issued) == ("done", 7)
        assert db.session.scalar(sa.select(sa.func.count()).where(Coupon.batch_id == batch_id)) == 7
    assert deferred(app) == []


def test_a_sweeper_that_loses_redis_keeps_the_rows(app, campaigns, own_redis):
    own_redis.stop()
    with app.app_context():
        tasks.enqueue(tasks.expire_coupons, queue="maintenance")
    with app.app_context():
        try:
            hand_over_deferred_jobs()
        except Exception as error:  # noqa: BLE001  Redis is still down: the sweep fails, the row stays
            assert "Connection" in type(error).__name__
        else:
            raise AssertionError("handed over to a stopped Redis")
    assert len(deferred(app)) == 1


def test_password_reset_asked_while_redis_is_down_is_mailed_once_it_is_back(app, own_redis, monkeypatch):
    use_cheap_password_hashing(monkeypatch)
    member = new_portal_member(app, phone="+8613800138000")
    own_redis.stop()
    response = submit(app.test_client(), "/portal/password/forgot", {"email": member.email})
    assert response.status_code == 302 and response.location == "/portal/login"
    [job] = deferred(app)
    assert job.func == "loyalty.members.tasks.send_password_reset" and job.retry_intervals == [30, 120, 600]

    own_redis.start()
    with app.app_context():
        assert hand_over_deferred_jobs() == 1
        queue = Queue("default", connection=redis_connection())
        assert queue.count == 1
        assert queue.jobs[0].func_name == "loyalty.members.tasks.send_password_reset"
        assert queue.jobs[0].retries_left == 3


def test_rescore_asked_while_redis_is_down_is_kept(app, own_redis, factory):
    from loyalty.insights.tasks import request_rescore

    own_redis.stop()
    with app.app_context():
        assert request_rescore() is None
        assert request_rescore() is None
    [job] = deferred(app)
    assert (job.func, job.job_id, job.queue) == ("loyalty.insights.tasks.rescore_all", "insights-rescore", "scoring")
