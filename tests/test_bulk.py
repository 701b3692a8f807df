"""loyalty/bulk.py: rows written in bulk come out as the ORM would have written them, on SQLite and
on PostgreSQL (where two rows and more go by COPY and by UPDATE ... FROM unnest)."""

from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from loyalty.bulk import insert_new_rows, update_rows
from loyalty.extensions import db
from loyalty.members.models import Member
from loyalty.sales.models import IdempotencyRecord

MEMBERS = Member.__table__
SHANGHAI = timezone(timedelta(hours=8))


@pytest.mark.parametrize("count", [1, 3])
def test_update_rows_gives_each_row_its_own_values(app, factory, count):
    numbers = [factory.member() for _ in range(count + 1)]
    with app.app_context():
        ids = db.session.scalars(sa.select(Member.id).where(Member.member_no.in_(numbers)).order_by(Member.id)).all()
        untouched_before = db.session.execute(sa.select(Member.points_balance, Member.tier_since)
                                              .where(Member.id == ids[-1])).one()
        # Times in another zone are stored as the same instant (the UTCDateTime bind processor).
        wanted = {member_id: (100 * n - 50, datetime(2026, 3, n + 1, 9, 30, tzinfo=SHANGHAI))
                  for n, member_id in enumerate(ids[:-1], start=1)}

        update_rows(db.session, MEMBERS, [{"id": member_id, "points_balance": balance, "tier_since": since}
                                          for member_id, (balance, since) in wanted.items()])
        db.session.commit()

        stored = {row.id: (row.points_balance, row.tier_since) for row in db.session.execute(
            sa.select(Member.id, Member.points_balance, Member.tier_since).where(Member.id.in_(ids)))}
    assert {member_id: stored[member_id] for member_id in wanted} == wanted
    assert all(since.tzinfo is not None and since.utcoffset() == timedelta(0)
               for _, since in (stored[member_id] for member_id in wanted))
    assert stored[ids[-1]] == tuple(untouched_before)


def test_update_rows_of_nothing_sends_nothing(app):
    statements = []
    with app.app_context():
        engine = db.engine
        count = lambda *args: statements.append(args)  # noqa: E731
        sa.event.listen(engine, "before_cursor_execute", count)
        try:
            update_rows(db.session, MEMBERS, [])
        finally:
            sa.event.remove(engine, "before_cursor_execute", count)
    assert statements == []



@pytest.mark.parametrize("count", [1, 3])
def test_insert_new_rows_skips_keys_held_and_returns_the_rows_it_inserted(app, pos, clock, count):
    """The idempotency claims' statement: rows whose unique key is taken are left alone, the others
    inserted with `same` and their Python defaults (created_at from the clock), JSON included."""
    records = IdempotencyRecord.__table__

    def row(n, request_sha256=None):
        return {"client_id": pos.client_id, "key": f"sale:K{n}", "request_sha256": request_sha256 or f"h{n}",
                "response_body": {"n": n}}

    with app.app_context():
        insert_new_rows(db.session, records, [row(0)], unique=("client_id", "key"), returning=("id",),
                        same={"response_status": 0})
        db.session.commit()
        taken = insert_new_rows(db.session, records, [row(0, "again"), *(row(n) for n in range(1, count + 1))],
                                unique=("client_id", "key"), returning=("key", "id"), same={"response_status": 7})
        db.session.commit()
        stored = db.session.execute(sa.select(records.c.key, records.c.id, records.c.request_sha256,
                                              records.c.response_status, records.c.response_body,
                                              records.c.created_at)).all()
    assert sorted(key for key, _ in taken) == [f"sale:K{n}" for n in range(1, count + 1)]
    by_key = {stored_row.key: stored_row for stored_row in stored}
    assert len(stored) == count + 1
    assert all(by_key[key].id == record_id for key, record_id in taken)
    assert (by_key["sale:K0"].request_sha256, by_key["sale:K0"].response_status) == ("h0", 0)
    assert {by_key[f"sale:K{n}"].response_status for n in range(1, count + 1)} == {7}
    assert [by_key[f"sale:K{n}"].response_body for n in range(count + 1)] == [{"n": n} for n in range(count + 1)]
    assert {stored_row.created_at for stored_row in stored} == {clock()}
