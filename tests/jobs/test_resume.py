"""Every long job resumes by itself: a coupon batch whose work horse is killed (as the OOM killer
would), or whose whole worker dies (a machine crash), is finished by a worker without anyone running
it again, with exactly the requested number of coupons (loyalty/campaigns/tasks.py)."""

import os
import signal
import time

import sqlalchemy as sa

from loyalty.campaigns import batches, services, tasks
from loyalty.campaigns.models import Coupon, CouponBatch
from loyalty.clock import utcnow
from loyalty.extensions import db
from tests.jobs.conftest import children, started_at

COUNT = 600
# Small chunks, so that a kill lands mid-way; no wait before RQ's retry; a batch still for a second
# has stalled.
CONFIG = {"COUPON_BATCH_CHUNK_SIZE": 10, "COUPON_BATCH_RETRY_INTERVALS": [0], "COUPON_BATCH_STALL_SECONDS": 1}


def queued_batch(app, campaigns, monkeypatch) -> int:
    for key, value in CONFIG.items():
        monkeypatch.setitem(app.config, key, value)
    offer = campaigns.offer()
    with app.app_context():
        batch = batches.create_batch(db.session, services.get_offer(db.session, offer["id"]), count=COUNT,
                                     now=utcnow())
        db.session.commit()
        tasks.enqueue_batch(batch.id)
        return batch.id


def progress(app, batch_id) -> tuple[str, int]:
    with app.app_context():
        return tuple(db.session.execute(
            sa.select(CouponBatch.status, CouponBatch.issued).where(CouponBatch.id == batch_id)).one())


def wait_for(app, batch_id, done, timeout=120) -> tuple[str, int]:
    deadline = time.monotonic() + timeout
    while not done(state := progress(app, batch_id)):
        assert time.monotonic() < deadline, f"batch stuck at {state}"
        time.sleep(0.01)
    return state


def coupons(app, batch_id) -> int:
    with app.app_context():
        return db.session.scalar(sa.select(sa.func.count()).where(Coupon.batch_id == batch_id))


def test_a_batch_whose_work_horse_is_killed_finishes_by_itself(app, campaigns, workers, monkeypatch):
    batch_id = queued_batch(app, campaigns, monkeypatch)
    worker = workers.start("--no-scheduler", **CONFIG)
    wait_for(app, batch_id, lambda state: state[1] >= 50)
    horse = max(children(worker.pid), key=started_at)
    os.kill(horse, signal.SIGKILL)
    _, issued_at_kill = progress(app, batch_id)

    assert wait_for(app, batch_id, lambda state: state[0] == "done") == ("done", COUNT)
    assert issued_at_kill < COUNT
    assert coupons(app, batch_id) == COUNT


def test_a_batch_whose_worker_died_is_finished_by_a_fresh_worker(app, campaigns, workers, monkeypatch):
    batch_id = queued_batch(app, campaigns, monkeypatch)
    worker = workers.start("--no-scheduler", **CONFIG)
    wait_for(app, batch_id, lambda state: state[1] >= 50)
    workers.kill(worker)
    state = progress(app, batch_id)
    assert state[0] == "running" and state[1] < COUNT
    time.sleep(CONFIG["COUPON_BATCH_STALL_SECONDS"] + 0.5)

    workers.run(**CONFIG)  # a fresh worker, which sweeps first; nobody starts the batch again
    assert progress(app, batch_id) == ("done", COUNT)
    assert coupons(app, batch_id) == COUNT

