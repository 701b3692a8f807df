"""Points history: the member's ledger, newest first, a page at a time, each line saying why."""

import re

import sqlalchemy as sa

from loyalty.auth.models import StaffUser
from loyalty.extensions import db
from loyalty.members.models import Member
from loyalty.points.program import load_program
from loyalty.points.services import adjust_points
from loyalty.sales.models import Transaction


def _rows(page: str) -> list[str]:
    body = page.split("<tbody>", 1)[1].split("</tbody>", 1)[0] if "<tbody>" in page else ""
    return [re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", row)).strip()
            for row in re.findall(r'<tr id="entry-\d+"[^>]*>(.*?)</tr>', body, re.S)]


def test_every_line_says_why(app, factory, member, pos, clock):
    assert pos.sale(member.member_no, 12800, external_id="S-EARN").status_code == 201
    assert pos.sale(member.member_no, 1000, subtotal=2000, points_redeemed=100,
                    external_id="S-SPEND").status_code == 201
    refund = pos.post("/transactions/S-SPEND/refunds", json={"external_id": "R-1", "amount": 1000})
    assert refund.status_code == 201, refund.get_json()
    staff_id = factory.staff("admin@example.com", "admin")
    with app.app_context():
        adjust_points(db.session, load_program(db.session), db.session.get(Member, member.member_id), 50,
                      reason="Birthday goodwill", staff_user=db.session.get(StaffUser, staff_id), now=clock())
        db.session.commit()

    rows = _rows(member.client.get("/portal/history").get_data(as_text=True))
    assert len(rows) == 6
    expected = [("Earned on purchase S-EARN", "+128"), ("Used on purchase S-SPEND", "−100"),
                ("Earned on purchase S-SPEND", "+10"), ("Taken back: refund R-1", "−10"),
                ("Given back: refund R-1", "+100"), ("Correction by our staff: Birthday goodwill", "+50")]
    for why, points in expected:
        assert any(why in row and row.endswith(points) for row in rows), (why, rows)
    # Sales at 10:00 in Shanghai (02:00 UTC) read as 10:00: the store's time zone.
    assert any(row.startswith("22 Nov 2026, 10:00") for row in rows)


def test_history_is_paginated_newest_first(member, pos, clock):
    for day in range(1, 26):
        assert pos.sale(member.member_no, 100 * day, external_id=f"S-{day:02d}",
                        occurred_at=f"2026-10-{day:02d}T12:00:00+08:00").status_code == 201
    first = member.client.get("/portal/history").get_data(as_text=True)
    rows = _rows(first)
    assert len(rows) == 20
    assert "S-25" in rows[0] and "S-06" in rows[-1]
    assert 'id="older"' in first and 'id="newer"' not in first

    second = member.client.get("/portal/history?page=2").get_data(as_text=True)
    rows = _rows(second)
    assert [re.search(r"S-\d+", row).group(0) for row in rows] == ["S-05", "S-04", "S-03", "S-02", "S-01"]
    assert 'id="newer"' in second and 'id="older"' not in second

    assert _rows(member.client.get("/portal/history?page=9").get_data(as_text=True)) == []
    assert member.client.get("/portal/history?page=nonsense").status_code == 200


def test_transaction_page_shows_lines_points_and_refunds(app, member, pos):
    lines = [{"sku": "SHOE-42", "category": "shoes", "quantity": 1, "unit_price": 9800, "amount": 9800},
             {"sku": "SOCKS", "quantity": 2, "unit_price": 1500, "amount": 3000}]
    assert pos.sale(member.member_no, 12800, external_id="S-LINES", lines=lines).status_code == 201
    assert pos.post("/transactions/S-LINES/refunds", json={"external_id": "R-SOCKS", "amount": 3000}).status_code == 201
    with app.app_context():
        ids = dict(db.session.execute(sa.select(Transaction.external_id, Transaction.id)).all())

    page = member.client.get(f"/portal/transactions/{ids['S-LINES']}").get_data(as_text=True)
    assert "Purchase S-LINES" in page and "SHOE-42" in page and "SOCKS" in page
    assert re.search(r'id="points-earned">128<', page)
    assert "R-SOCKS" in page and "128.00" in page and "30.00" in page
    refund_page = member.client.get(f"/portal/transactions/{ids['R-SOCKS']}").get_data(as_text=True)
    assert "Refund R-SOCKS" in refund_page
