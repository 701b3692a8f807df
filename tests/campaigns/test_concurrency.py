"""Limits and budgets under real concurrency, on both databases: 50 tills post their sales at the same
instant, each through its own test client and so its own connection."""

import threading

import pytest
import sqlalchemy as sa

from loyalty.campaigns import batches, codes, services, tasks
from loyalty.campaigns.models import Coupon
from loyalty.clock import utcnow
from loyalty.extensions import db
from loyalty.points.services import verify_ledger
from loyalty.sales.models import Transaction

TILLS = 50


def post_together(app, pos, bodies: list[dict]) -> list[tuple[int, dict]]:
    """POST every sale from its own thread, all released at once by a barrier."""
    barrier = threading.Barrier(len(bodies))
    results: list[tuple[int, dict] | None] = [None] * len(bodies)

    def till(index: int, body: dict) -> None:
        http = app.test_client()
        barrier.wait()
        response = http.post("/api/v1/transactions", json=body, headers=pos.headers)
        results[index] = (response.status_code, response.get_json())

    threads = [threading.Thread(target=till, args=(index, body)) for index, body in enumerate(bodies)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert all(result is not None for result in results), "a till never answered"
    return results


def sale(external_id: str, member_no: str | None, code: str, subtotal: int = 12800, discount: int = 1000) -> dict:
    body = {"external_id": external_id, "occurred_at": "2026-11-22T10:00:00+08:00", "currency": "CNY",
            "amount": subtotal - discount, "subtotal": subtotal, "coupons": [code]}
    if member_no:
        body["member"] = member_no
    return body


def reasons(results) -> list[str]:
    return sorted(body["detail"].split(":", 1)[0] for status, body in results if status != 201)


def assert_books_balance(app, successes: int) -> None:
    with app.app_context():
        report = verify_ledger(db.session)
        assert report.ok, report.problems
        assert db.session.scalar(sa.select(sa.func.count(Transaction.id))) == successes


def single_use_code(app, offer_id: int) -> str:
    """One unassigned single-use code from a batch: anyone may use it, once."""
    with app.app_context():
        batch = batches.create_batch(db.session, services.get_offer(db.session, offer_id), count=1, now=utcnow())
        db.session.commit()
        tasks.issue_batch(batch.id)
        return codes.display(db.session.scalar(sa.select(Coupon.code).where(Coupon.batch_id == batch.id)))


def test_a_single_use_code_used_by_50_members_at_once_is_redeemed_exactly_once(app, campaigns, factory, pos):
    offer = campaigns.offer(value=1000)
    code = single_use_code(app, offer["id"])
    members = [factory.member() for _ in range(TILLS)]

    results = post_together(app, pos, [sale(f"C-{i}", member_no, code) for i, member_no in enumerate(members)])

    assert sorted(status for status, _ in results) == [201] + [422] * (TILLS - 1)
    assert reasons(results) == ["used"] * (TILLS - 1)
    assert campaigns.coupon(code)["status"] == "redeemed"
    assert campaigns.get_offer(offer["id"])["redeemed_count"] == 1
    assert_books_balance(app, 1)


def test_a_personal_coupon_in_50_simultaneous_sales_of_its_member_is_redeemed_once(app, campaigns, factory, pos):
    member_no = factory.member()
    offer = campaigns.offer(value=1000)
    code = campaigns.personal(offer["id"], member_no)

    results = post_together(app, pos, [sale(f"P-{i}", member_no, code) for i in range(TILLS)])

    assert sorted(status for status, _ in results) == [201] + [422] * (TILLS - 1)
    assert reasons(results) == ["used"] * (TILLS - 1)
    assert campaigns.get_offer(offer["id"])["discount_given"] == 1000
    assert_books_balance(app, 1)


def test_a_generic_code_with_limit_10_hit_by_50_sales_is_redeemed_exactly_10_times(app, campaigns, factory, pos):
    offer = campaigns.offer(value=1000)
    code = campaigns.generic(offer["id"], limit=10)
    members = [factory.member() for _ in range(TILLS)]

    results = post_together(app, pos, [sale(f"G-{i}", member_no, code) for i, member_no in enumerate(members)])

    assert sum(status == 201 for status, _ in results) == 10
    assert reasons(results) == ["limit-reached"] * (TILLS - 10)
    coupon = campaigns.coupon(code)
    assert (coupon["status"], coupon["uses_left"]) == ("redeemed", 0)
    assert campaigns.get_offer(offer["id"])["redeemed_count"] == 10
    assert_books_balance(app, 10)


def test_a_budget_of_1000_yuan_is_never_exceeded(app, campaigns, factory, pos):
    budget = 100_000
    offer = campaigns.offer(kind="percent_off", value=10, budget_amount=budget)
    members = [factory.member() for _ in range(TILLS)]
    coupons = [campaigns.personal(offer["id"], member_no) for member_no in members]
    # Baskets of 200.00 to 445.00: discounts of 20.00 to 44.50, about 1,600.00 asked for in all.
    subtotals = [20_000 + 500 * i for i in range(TILLS)]

    results = post_together(app, pos, [
        sale(f"B-{i}", member_no, code, subtotal, subtotal // 10)
        for i, (member_no, code, subtotal) in enumerate(zip(members, coupons, subtotals, strict=True))
    ])

    given = sum(body["coupons"][0]["discount"] for status, body in results if status == 201)
    refused = [subtotal // 10 for (status, _), subtotal in zip(results, subtotals, strict=True) if status != 201]
    report = campaigns.get_offer(offer["id"])
    assert given == report["discount_given"] <= budget
    assert refused and reasons(results) == ["budget-exhausted"] * len(refused)
    # Every refusal was right: the budget could not have covered that discount on top of what was given.
    assert all(given + discount > budget for discount in refused)
    assert report["redeemed_count"] == TILLS - len(refused)
    assert_books_balance(app, TILLS - len(refused))


@pytest.mark.postgres_only  # SQLite's one write lock, taken before the first write, never deadlocks
def test_a_sale_batch_chosen_as_a_deadlock_victim_is_retried_and_answered(app, campaigns, factory, pos):
    """Two units of work claiming the same coupons in opposite orders deadlock; PostgreSQL aborts one.
    With the group commit, single sales of different processes are such units of work, so the victim
    must be retried (loyalty/pos_api/sale_posting.py), not answered 500. Here the other party is a
    plain connection that holds coupon B and then asks for coupon A while the batch holds A and waits
    for B; its deadlock_timeout is longer, so the batch is the one PostgreSQL aborts."""
    offer_a, offer_b = campaigns.offer(value=1000), campaigns.offer(value=1000)
    code_a, code_b = campaigns.generic(offer_a["id"], limit=100), campaigns.generic(offer_b["id"], limit=100)
    with app.app_context():
        coupon_a, coupon_b = (db.session.scalar(sa.select(Coupon.id).where(Coupon.offer_id == offer["id"]))
                              for offer in (offer_a, offer_b))
        db.session.remove()
    first, second = factory.member(), factory.member()
    answer: dict = {}

    def post_batch():
        response = app.test_client().post("/api/v1/transactions/batch", headers=pos.headers, json={"sales": [
            sale("DL-1", first, code_a), sale("DL-2", second, code_b)]})
        answer.update(status=response.status_code, body=response.get_json())

    touch = "UPDATE coupons SET uses_count = uses_count WHERE id = :id"
    with app.app_context():
        with db.engine.connect() as other:
            other.execute(sa.text("SET deadlock_timeout = '10s'"))
            other.execute(sa.text(touch), {"id": coupon_b})
            batch = threading.Thread(target=post_batch)
            batch.start()
            wait_for_a_lock_wait(other)
            other.execute(sa.text(touch), {"id": coupon_a})  # the cycle: returns once the batch is aborted
            deadlocks = other.scalar(
                sa.text("SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()"))
            other.commit()
        batch.join(timeout=60)
        db.session.remove()

    assert deadlocks >= 1
    assert answer["status"] == 200, answer
    assert [item["status"] for item in answer["body"]["results"]] == [201, 201]
    assert campaigns.get_offer(offer_a["id"])["redeemed_count"] == 1
    assert campaigns.get_offer(offer_b["id"])["redeemed_count"] == 1
    assert_books_balance(app, 2)


def wait_for_a_lock_wait(connection) -> None:
    """Until another backend waits for a row lock (the batch, blocked on the coupon held here)."""
    for _ in range(200):
        connection.execute(sa.text("SELECT pg_stat_clear_snapshot()"))  # else one snapshot per transaction
        waiting = connection.scalar(sa.text(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND pid <> pg_backend_pid()"))
        if waiting:
            return
        threading.Event().wait(0.05)
    raise AssertionError("the batch never waited for the coupon lock")
