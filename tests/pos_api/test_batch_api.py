"""POST /transactions/batch (docs/api.md): up to 1,000 sales, each on its own. A bad item fails alone and
records nothing; a good one is recorded and answered as a single POST would have been."""

import pytest
import sqlalchemy as sa

from loyalty.extensions import db
from loyalty.pos_api import sale_posting
from loyalty.sales.models import Transaction

UNKNOWN_MEMBER_NO = "1000000018"


def sale(external_id: str, amount: int, member: str | None = None, **fields) -> dict:
    body = {"external_id": external_id, "occurred_at": "2026-11-22T10:00:00+08:00", "currency": "CNY",
            "amount": amount, **fields}
    if member:
        body["member"] = member
    return body


def sale_ids(app) -> list[str]:
    with app.app_context():
        return sorted(db.session.scalars(sa.select(Transaction.external_id).where(Transaction.kind == "sale")))


def slug(item: dict) -> str:
    return item["error"]["type"].rsplit("/", 1)[-1]


@pytest.fixture(params=["one part", "parts of 2"])
def batch_parts(request, monkeypatch):
    """Batches are committed in parts of sale_posting.BATCH_PART sales: the answers must not depend
    on where the parts fall."""
    if request.param == "parts of 2":
        monkeypatch.setattr(sale_posting, "BATCH_PART", 2)


@pytest.mark.usefixtures("batch_parts")
def test_each_item_stands_on_its_own(pos, factory, app):
    member_no = factory.member()
    earlier = pos.post("/transactions", json=sale("S-old", 12800, member_no)).get_json()
    items = [
        sale("S-b1", 10000, member_no),                          # 0 good
        sale("S-b2", 5000),                                      # 1 good, anonymous
        sale("S-b3", 100.5, member_no),                          # 2 invalid: float money
        sale("S-b4", 10000, UNKNOWN_MEMBER_NO),                  # 3 unknown member
        sale("S-old", 12800, member_no),                         # 4 replay of an earlier POST
        sale("S-b1", 10000, member_no),                          # 5 twin of item 0
        sale("S-b2", 6000),                                      # 6 item 1's id with another body
        sale("S-old", 1, member_no),                             # 7 the earlier POST's id with another body
        sale("S-b5", 10000, member_no, points_redeemed=10000),   # 8 insufficient points
        {"occurred_at": "2026-11-22T10:00:00+08:00", "currency": "CNY", "amount": 1},  # 9 no external_id
        sale("S-b6", 10000, member_no, currency="USD"),          # 10 currency mismatch
    ]

    response = pos.post("/transactions/batch", json={"sales": items})

    assert response.status_code == 200, response.get_json()
    results = response.get_json()["results"]
    assert [(r["external_id"], r["status"]) for r in results] == [
        ("S-b1", 201), ("S-b2", 201), ("S-b3", 422), ("S-b4", 422), ("S-old", 201), ("S-b1", 201),
        ("S-b2", 409), ("S-old", 409), ("S-b5", 422), (None, 422), ("S-b6", 422),
    ]
    assert [slug(results[i]) for i in (2, 3, 6, 7, 8, 9, 10)] == [
        "validation-error", "unknown-member", "idempotency-conflict", "idempotency-conflict",
        "insufficient-points", "validation-error", "currency-mismatch",
    ]
    assert "amount" in results[2]["error"]["errors"]
    assert "external_id" in results[9]["error"]["errors"]
    assert all("transaction" not in r for r in results if r["status"] >= 400)
    assert all("error" not in r for r in results if r["status"] < 400)
    assert results[0]["transaction"]["points_earned"] == 100
    assert results[0]["transaction"]["member"]["points"]["balance"] == 228
    assert results[1]["transaction"]["member"] is None
    assert results[4]["transaction"] == earlier
    assert results[5]["transaction"] == results[0]["transaction"]
    assert [r.get("replayed") for r in results[:2]] == [False, False]
    assert results[4]["replayed"] is True and results[5]["replayed"] is True
    # The good ones are recorded, the bad ones are not.
    assert sale_ids(app) == ["S-b1", "S-b2", "S-old"]
    assert pos.get("/transactions/S-b2").get_json()["amount"] == 5000
    assert pos.get(f"/members/{member_no}").get_json()["points"]["balance"] == 228


@pytest.mark.usefixtures("batch_parts")
def test_an_item_naming_another_store_fails_alone(pos, factory, app):
    """Issue 12, finding 11: a key is bound to one store; a batch item naming another is forbidden,
    and the items around it are posted."""
    factory.store("S002")
    member_no = factory.member()
    items = [sale("S-own", 10000, member_no), sale("S-theirs", 10000, member_no, store_code="S002"),
             sale("S-named", 10000, member_no, store_code="S001")]

    results = pos.post("/transactions/batch", json={"sales": items}).get_json()["results"]

    assert [(r["external_id"], r["status"]) for r in results] == [("S-own", 201), ("S-theirs", 403), ("S-named", 201)]
    assert slug(results[1]) == "forbidden"
    assert sale_ids(app) == ["S-named", "S-own"]
    assert {pos.get(f"/transactions/{external_id}").get_json()["store_code"] for external_id in ("S-own", "S-named")} \
        == {"S001"}


def test_a_batch_posted_again_replays_the_good_items_and_changes_nothing(pos, factory, app):
    member_no = factory.member()
    items = [sale("S-1", 10000, member_no), sale("S-2", 12800, UNKNOWN_MEMBER_NO), sale("S-3", 5000, member_no)]
    first = pos.post("/transactions/batch", json={"sales": items}).get_json()["results"]

    again = pos.post("/transactions/batch", json={"sales": items}).get_json()["results"]

    assert [r["status"] for r in again] == [201, 422, 201]
    assert [r["replayed"] for r in again] == [True, False, True]
    assert again[0]["transaction"] == first[0]["transaction"]
    assert again[2]["transaction"] == first[2]["transaction"]
    assert sale_ids(app) == ["S-1", "S-3"]
    assert pos.get(f"/members/{member_no}").get_json()["points"]["balance"] == 150


def test_a_sale_from_a_batch_is_replayed_by_a_single_post(pos, factory):
    member_no = factory.member()
    body = sale("S-1", 10000, member_no)
    from_batch = pos.post("/transactions/batch", json={"sales": [body]}).get_json()["results"][0]["transaction"]

    single = pos.post("/transactions", json=body)

    assert single.status_code == 201
    assert single.headers["Idempotent-Replayed"] == "true"
    assert single.get_json() == from_batch


@pytest.mark.usefixtures("batch_parts")
def test_sales_of_one_member_in_a_batch_see_each_other(pos, factory):
    member_no = factory.member()
    items = [sale("S-1", 10000, member_no), sale("S-2", 20000, member_no),
             sale("S-3", 0, member_no, points_redeemed=250)]

    results = pos.post("/transactions/batch", json={"sales": items}).get_json()["results"]

    assert [r["status"] for r in results] == [201, 201, 201]
    assert [r["transaction"]["member"]["points"]["balance"] for r in results] == [100, 300, 50]


def test_a_twin_of_a_failed_item_fails_with_the_same_problem(pos, factory, app):
    member_no = factory.member()
    bad = sale("S-1", 10000, member_no, points_redeemed=5)

    results = pos.post("/transactions/batch", json={"sales": [bad, bad]}).get_json()["results"]

    assert [r["status"] for r in results] == [422, 422]
    assert [slug(r) for r in results] == ["insufficient-points", "insufficient-points"]
    assert sale_ids(app) == []


def test_a_batch_with_an_item_that_is_not_an_object_is_refused_whole(pos, app):
    # Items are checked one by one only once each is at least an object; a malformed list is the
    # client's bug and nothing of it is posted.
    response = pos.post("/transactions/batch", json={"sales": [sale("S-1", 100), "junk", None]})

    assert response.status_code == 422
    assert response.get_json()["type"].endswith("/validation-error")
    assert set(response.get_json()["errors"]["sales"]) == {"1", "2"}
    assert sale_ids(app) == []


def test_batch_size_is_limited_to_1000(pos, app):
    too_many = [sale(f"S-{n}", 100) for n in range(1001)]

    response = pos.post("/transactions/batch", json={"sales": too_many})

    assert response.status_code == 422
    assert response.get_json()["type"].endswith("/validation-error")
    assert "sales" in response.get_json()["errors"]
    empty = pos.post("/transactions/batch", json={"sales": []})
    assert empty.status_code == 422 and "sales" in empty.get_json()["errors"]
    assert sale_ids(app) == []


def test_a_full_batch_of_1000_is_accepted(pos, factory, app):
    member_no = factory.member()
    items = [sale(f"S-{n:04d}", 100, member_no if n % 2 else None) for n in range(1000)]

    results = pos.post("/transactions/batch", json={"sales": items}).get_json()["results"]

    assert len(results) == 1000
    assert {r["status"] for r in results} == {201}
    assert pos.get(f"/members/{member_no}").get_json()["points"]["balance"] == 500
    assert len(sale_ids(app)) == 1000


@pytest.mark.usefixtures("batch_parts")
def test_each_retry_in_a_batch_is_compared_with_the_request_first_answered(pos, factory, app):
    member_no = factory.member()
    original = sale("S-1", 12800, member_no)
    first = pos.post("/transactions", json=original).get_json()

    response = pos.post("/transactions/batch", json={"sales": [{**original, "amount": 1}, original]})

    results = response.get_json()["results"]
    assert [r["status"] for r in results] == [409, 201]
    assert slug(results[0]) == "idempotency-conflict"
    assert results[1]["replayed"] is True and results[1]["transaction"] == first
    assert sale_ids(app) == ["S-1"]


def test_a_large_batch_written_in_bulk_matches_the_same_sales_posted_one_by_one(pos, factory, app):
    """Past loyalty.bulk.COPY_MIN_ROWS rows a batch is written with COPY on PostgreSQL: every kind of
    row (sales, lines, entries, lots, allocations of redemptions, idempotency answers) must come out
    as a single POST writes it."""
    from loyalty.bulk import COPY_MIN_ROWS
    from loyalty.points.services import verify_ledger

    members = [factory.member() for _ in range(max(COPY_MIN_ROWS, 20))]
    for member_no in members:
        assert pos.sale(member_no, 50000).status_code == 201
    lines = [{"sku": "A1", "category": "shoes", "amount": 6000}, {"sku": "B2", "amount": 4000}]
    items = [sale(f"S-r{n}", 10000, member_no, points_redeemed=100, lines=lines)
             for n, member_no in enumerate(members)]
    items += [sale(f"S-e{n}", 20000 + n, member_no) for n, member_no in enumerate(members)]

    results = pos.post("/transactions/batch", json={"sales": items}).get_json()["results"]

    assert {r["status"] for r in results} == {201}
    for member_no in members:
        # 500 + 100 - 100 redeemed + 200 (a member of the entry tier earns 1 point per 1.00)
        assert pos.get(f"/members/{member_no}").get_json()["points"]["balance"] == 700
    shown = pos.get("/transactions/S-r3").get_json()
    assert [(line["sku"], line["amount"]) for line in shown["lines"]] == [("A1", 6000), ("B2", 4000)]
    assert (shown["points_redeemed"], shown["points_earned"]) == (100, 100)
    replayed = pos.post("/transactions/batch", json={"sales": items}).get_json()["results"]
    assert [r["transaction"] for r in replayed] == [r["transaction"] for r in results]
    assert all(r["replayed"] for r in replayed)
    with app.app_context():
        assert verify_ledger(db.session).ok


def test_bulk_rows_that_break_a_unique_key_raise_integrity_error(app):
    """The COPY path must fail the way an INSERT does, so a lost race is retried and replayed."""
    import pytest
    from sqlalchemy.exc import IntegrityError

    from loyalty.auth.models import ApiClient, Store
    from loyalty.bulk import COPY_MIN_ROWS, insert_rows
    from loyalty.sales.models import IdempotencyRecord

    with app.app_context():
        store = Store(code="S9", name="bulk")
        db.session.add(store)
        db.session.flush()
        client = ApiClient(name="bulk", store_id=store.id, key_prefix="lk_x", key_sha256="0" * 64)
        db.session.add(client)
        db.session.flush()
        rows = [{"client_id": client.id, "key": f"sale:K{n}", "request_sha256": "f" * 64, "response_status": 201,
                 "response_body": {"n": n}} for n in range(max(COPY_MIN_ROWS, 10))]
        insert_rows(db.session, IdempotencyRecord.__table__, rows)
        assert db.session.scalar(sa.select(IdempotencyRecord.response_body).where(
            IdempotencyRecord.key == "sale:K7")) == {"n": 7}
        with pytest.raises(IntegrityError):
            insert_rows(db.session, IdempotencyRecord.__table__, rows)
        db.session.rollback()


def test_a_batch_is_committed_part_by_part_with_twins_kept_together(pos, factory, app, monkeypatch):
    """A backfill holds its members' locks for one part at a time; a twin joins the part of the sale
    it repeats, where it is answered as a retry of it."""
    monkeypatch.setattr(sale_posting, "BATCH_PART", 2)
    assert sale_posting._parts([sale_posting.SaleSubmission(None, item, item) for item in [
        sale("S-1", 1), sale("S-2", 1), sale("S-3", 1), sale("S-1", 1), sale("S-4", 1), sale("S-5", 1)]]) == [
        [0, 1, 3], [2, 4], [5]]
    member_no = factory.member()
    # The key's first use records its last use in a transaction of its own: done here, before counting.
    assert pos.get(f"/members/{member_no}").status_code == 200
    commits = []
    with app.app_context():
        engine = db.engine
    count_commit = commits.append  # one bound method, to remove the listener it was added as
    sa.event.listen(engine, "commit", count_commit)
    try:
        results = pos.post("/transactions/batch", json={"sales": [
            sale(f"S-p{n}", 10000, member_no) for n in range(5)]}).get_json()["results"]
    finally:
        sa.event.remove(engine, "commit", count_commit)

    assert [r["status"] for r in results] == [201] * 5
    assert len(commits) == 3
    assert [r["transaction"]["member"]["points"]["balance"] for r in results] == [100, 200, 300, 400, 500]
