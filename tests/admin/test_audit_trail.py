"""The audit trail: every audited change, newest first, with who, when, the subject or member and the
before → after diff; filtered by action prefix, actor and member number; a page at a time."""

import re
from datetime import timedelta

from loyalty.audit import record_audit
from loyalty.auth.audit_trail import PAGE_SIZE
from loyalty.extensions import db

ROW = re.compile(r'<tr class="audit-event" id="event-(\d+)">(.*?)</tr>', re.S)


def rows(html: str) -> list[str]:
    return [body for _id, body in ROW.findall(html)]


def test_every_change_is_listed_newest_first_with_its_diff(admin, admin_db, staff, clock, pos):
    admin.post("/admin/stores", {"code": "S002", "name": "Harbour", "timezone": "Asia/Hong_Kong"})
    clock.advance(minutes=1)
    admin.post(f"/admin/staff/{staff.cashier}/role", {"role": "marketer", "store": "S001"})
    clock.advance(minutes=1)
    gold = admin_db.tiers()["GOLD"]
    admin.post(f"/admin/program/tiers/{gold.id}", {"name": "Or", "threshold": "5000", "multiplier": "1.50",
                                                   "benefits": "", "action": "save"})
    html = admin.get("/admin/audit").get_data(as_text=True)
    listed = rows(html)
    # The fixture's key (created before the page) is the oldest.
    assert ["tier.update" in listed[0], "staff.role" in listed[1], "store.create" in listed[2],
            "api_key.create" in listed[3]] == [True] * 4
    assert "admin@example.com" in listed[0] and "tier:GOLD" in listed[0]
    assert "<del>Gold</del> → <ins>Or</ins>" in listed[0]
    assert "<del>cashier</del> → <ins>marketer</ins>" in listed[1]
    assert "staff:cashier@example.com" in listed[1]
    # A creation has no "before": only what it made.
    assert "<ins>Asia/Hong_Kong</ins>" in listed[2] and "<del>" not in listed[2]
    assert "operator (CLI)" in listed[3]


def test_filters(admin, admin_db, staff, factory, member_no, console):
    admin.post("/admin/stores", {"code": "S002", "name": "Harbour", "timezone": "Asia/Shanghai"})
    other = factory.member(name="Han Meimei")
    admin.post(f"/staff/members/{member_no}/adjust", {"points": "5", "reason": "goodwill"})
    admin.post(f"/staff/members/{other}/adjust", {"points": "7", "reason": "late parcel"})

    def listed(**args) -> list[str]:
        query = "&".join(f"{name}={value}" for name, value in args.items())
        response = admin.get(f"/admin/audit?{query}")
        assert response.status_code == 200
        return rows(response.get_data(as_text=True))

    assert [("store.create" in row) for row in listed(action="store.")] == [True]
    assert len(listed(action="points.")) == 2
    assert listed(action="nothing.") == []
    assert len(listed(actor="admin@example.com")) == 3
    assert len(listed(actor="ADMIN@example.com ")) == 3
    assert listed(actor="cashier@example.com") == []
    [adjusted] = listed(member=other)
    assert "late parcel" in adjusted and f"member {other}" in adjusted
    assert len(listed(action="points.", actor="admin@example.com", member=member_no)) == 1


def test_pages_of_fifty(admin, app, clock):
    with app.app_context():
        for number in range(PAGE_SIZE + 5):
            clock.advance(seconds=1)
            record_audit(db.session, action="test.event", subject=f"n:{number}")
        db.session.commit()
    first = admin.get("/admin/audit?action=test.").get_data(as_text=True)
    assert len(rows(first)) == PAGE_SIZE
    assert "n:54" in rows(first)[0] and "n:5" in rows(first)[-1]
    older = re.search(r'href="(/admin/audit\?[^"]*before=\d+[^"]*)" id="older"', first).group(1).replace("&amp;", "&")
    assert "action=test." in older
    second = admin.get(older).get_data(as_text=True)
    assert [re.search(r"n:(\d+)", row).group(1) for row in rows(second)] == ["4", "3", "2", "1", "0"]
    assert 'id="older"' not in second and 'id="newest"' in second
    clock.advance(seconds=-timedelta(minutes=5).total_seconds())


def test_bad_filters_are_refused(admin):
    assert admin.get("/admin/audit?action=" + "x" * 100).status_code == 422
    assert admin.get("/admin/audit?before=abc").status_code == 200
    assert admin.get("/admin/audit?before=99999999999999999999999").status_code == 200
