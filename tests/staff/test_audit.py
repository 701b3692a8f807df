"""The audit trail: every staff action on a member, readable by admins only."""

import pytest

from tests.staff.conftest import EXTERNAL_ID_INPUT


def test_admin_reads_every_staff_action(console, staff, member_no, database):
    cashier = console.sign_in_staff(staff.cashier)
    cashier.get(f"/staff/members/{member_no}")
    cashier.post(f"/staff/members/{member_no}/notes", {"body": "Asked about GOLD"})
    page = cashier.get(f"/staff/members/{member_no}/sale").get_data(as_text=True)
    cashier.post(f"/staff/members/{member_no}/sale",
                 {"external_id": EXTERNAL_ID_INPUT.search(page).group(1), "amount": "12.00"})
    admin = console.sign_in_staff(staff.admin)
    admin.get(f"/staff/members/{member_no}")
    admin.post(f"/staff/members/{member_no}/adjust", {"points": "-2", "reason": "duplicate scan"})
    response = admin.get(f"/staff/members/{member_no}/audit")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    rows = html.split('<ul class="plain" id="audit">')[1].split("</ul>")[0].split('<li class="audit-event">')[1:]
    # Newest first: who, what, before and after.
    assert ["points.adjust" in rows[0], "sale.record" in rows[1], "note.add" in rows[2]] == [True] * 3
    assert "admin@example.com" in rows[0] and "cashier@example.com" in rows[1] and "cashier@example.com" in rows[2]
    assert "duplicate scan" in rows[0]
    assert [event.action for event in database.audit()] == ["note.add", "sale.record", "points.adjust"]


@pytest.mark.parametrize("role", ["cashier", "marketer"])
def test_others_may_not_read_it(console, staff, member_no, role):
    console.sign_in_staff(getattr(staff, role))
    assert console.get(f"/staff/members/{member_no}/audit").status_code == 403
