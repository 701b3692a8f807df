"""Bulk issue as a background job with progress, CSV export of a batch, expiry by job, and the coupons
a member can use now (`GET /members/{no}/coupons`)."""

import csv
import io

import sqlalchemy as sa

from loyalty.campaigns import batches, codes, services, tasks
from loyalty.campaigns.models import Coupon, CouponBatch
from loyalty.clock import utcnow
from loyalty.extensions import db
from loyalty.jobs import PERIODIC_JOBS
from loyalty.members.models import Member


def run_queued_jobs(app):
    """With Redis, jobs wait on a queue: work it off here. Without, they already ran inline."""
    if not app.config["REDIS_URL"]:
        return
    from rq import Queue, SimpleWorker

    from loyalty.jobs import redis_connection

    queue = Queue("default", connection=redis_connection())
    SimpleWorker([queue], connection=redis_connection()).work(burst=True)


def member_ids(app, member_numbers):
    with app.app_context():
        return list(db.session.scalars(sa.select(Member.id).where(Member.member_no.in_(member_numbers))))


def test_bulk_issue_runs_as_a_job_and_exports_as_csv(app, campaigns):
    offer = campaigns.offer(valid_days=10)
    with app.app_context():
        batch = batches.create_batch(db.session, services.get_offer(db.session, offer["id"]), count=12_345,
                                     now=utcnow())
        db.session.commit()
        batch_id = batch.id
        tasks.enqueue_batch(batch_id)
        run_queued_jobs(app)
        db.session.expire_all()

        batch = db.session.get(CouponBatch, batch_id)
        assert (batch.status, batch.issued, batch.requested) == ("done", 12_345, 12_345)
        exported = "".join(batches.export_batch_csv(db.session, batch))

    rows = list(csv.DictReader(io.StringIO(exported)))
    assert len(rows) == 12_345
    assert list(rows[0]) == ["code", "member_no", "status", "expires_at", "uses_left"]
    assert len({row["code"] for row in rows}) == 12_345
    assert all(codes.has_valid_check(codes.normalize(row["code"])) and row["code"][4] == "-" for row in rows)
    assert {(row["member_no"], row["status"], row["expires_at"], row["uses_left"]) for row in rows} == {
        ("", "issued", "2026-12-02T02:00:00Z", "1")}
    assert campaigns.get_offer(offer["id"])["issued_count"] == 12_345


def test_progress_is_committed_chunk_by_chunk_and_a_rerun_carries_on(app, campaigns):
    offer = campaigns.offer()
    with app.app_context():
        batch = batches.create_batch(db.session, services.get_offer(db.session, offer["id"]), count=10, now=utcnow())
        db.session.commit()
        assert batches.issue_next_chunk(db.session, batch.id, utcnow(), chunk_size=4) == 4
        db.session.commit()
        # The worker died here. What it committed is visible, and a rerun issues only the rest.
        assert (batch.status, batch.issued) == ("running", 4)
        assert tasks.issue_batch(batch.id) == 6
        assert tasks.issue_batch(batch.id) == 0
        assert db.session.scalar(sa.select(sa.func.count()).where(Coupon.batch_id == batch.id)) == 10


def test_personal_batch_puts_one_coupon_in_each_wallet(app, campaigns, factory, pos):
    numbers = [factory.member() for _ in range(3)]
    offer = campaigns.offer(value=800)
    with app.app_context():
        batch = batches.create_batch(db.session, services.get_offer(db.session, offer["id"]),
                                     member_ids=member_ids(app, numbers), now=utcnow())
        db.session.commit()
        tasks.enqueue_batch(batch.id)
        run_queued_jobs(app)

    for member_no in numbers:
        wallet = pos.get(f"/members/{member_no}/coupons").get_json()
        assert [(coupon["member_no"], coupon["offer_id"]) for coupon in wallet["data"]] == [(member_no, offer["id"])]
        code = wallet["data"][0]["code"]
        assert pos.sale(member_no, 12000, subtotal=12800, coupons=[code]).get_json()["coupons"][0]["discount"] == 800


def test_expiry_job_marks_expired_coupons_and_is_idempotent(app, campaigns, factory, clock):
    member_no = factory.member()
    short = campaigns.personal(campaigns.offer(valid_days=1)["id"], member_no)
    long = campaigns.personal(campaigns.offer(valid_days=30)["id"], member_no)
    ended_offer = campaigns.generic(campaigns.offer(valid_until="2026-11-23T00:00:00Z")["id"], limit=3)
    clock.advance(days=2)

    with app.app_context():
        assert tasks.expire_coupons() == 2
        assert tasks.expire_coupons() == 0

    assert [campaigns.coupon(code)["status"] for code in (short, long, ended_offer)] == ["expired", "issued", "expired"]
    assert "loyalty.campaigns.tasks.expire_coupons" in {job.func for job in PERIODIC_JOBS}


def test_wallet_lists_only_what_the_member_can_use_now(campaigns, factory, pos):
    member_no, other_no = factory.member(), factory.member()
    usable = campaigns.personal(campaigns.offer()["id"], member_no)
    min_spend = campaigns.personal(campaigns.offer(min_spend=50000)["id"], member_no)  # basket's business
    used = campaigns.personal(campaigns.offer()["id"], member_no)
    pos.sale(member_no, 11800, subtotal=12800, coupons=[used])
    voided = campaigns.personal(campaigns.offer()["id"], member_no)
    campaigns.manage.post(f"/coupons/{voided}/void")
    campaigns.personal(campaigns.offer(valid_from="2027-01-01T00:00:00Z")["id"], member_no)
    campaigns.personal(campaigns.offer(tiers=["GOLD"])["id"], member_no)
    spent = campaigns.offer(budget_count=1)
    campaigns.personal(spent["id"], member_no)
    pos.sale(other_no, 11800, subtotal=12800, coupons=[campaigns.personal(spent["id"], other_no)])
    limited = campaigns.offer(per_member_limit=1)
    campaigns.personal(limited["id"], member_no)
    pos.sale(member_no, 11800, subtotal=12800, coupons=[campaigns.personal(limited["id"], member_no)])
    campaigns.generic(campaigns.offer()["id"], limit=100)
    campaigns.personal(campaigns.offer()["id"], other_no)

    listed = pos.get(f"/members/{member_no}/coupons").get_json()

    assert [coupon["code"] for coupon in listed["data"]] == [usable, min_spend]
    assert listed["next_cursor"] is None


def test_wallet_pages_with_a_cursor(campaigns, factory, pos):
    member_no = factory.member()
    offer = campaigns.offer()
    issued = [campaigns.personal(offer["id"], member_no) for _ in range(5)]

    seen, cursor = [], None
    while True:
        query = "?limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = pos.get(f"/members/{member_no}/coupons{query}").get_json()
        seen.extend(coupon["code"] for coupon in page["data"])
        cursor = page["next_cursor"]
        if cursor is None:
            break

    assert seen == issued
    assert pos.get("/members/1000000018/coupons").status_code == 404
