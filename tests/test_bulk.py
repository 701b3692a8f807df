"""loyalty/bulk.py: rows written in bulk come out as the ORM would have written them, on SQLite and
on PostgreSQL (where two rows and more go by COPY and by UPDATE ... FROM unnest)."""

from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from loyalty.bulk import update_rows
from loyalty.extensions import db
from loyalty.members.models import Member

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

