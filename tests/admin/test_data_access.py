"""The data-access log: every staff look at a member's personal data (the staff console's member, card and
audit pages; the admin audit trail of one member) is a member.view event, readable by a privacy officer
as who, whose, when and which page."""

import re

import pytest

ROW = re.compile(r'<tr class="access-event" id="event-\d+">(.*?)</tr>', re.S)


def looks(database) -> list[tuple]:
    return [(event.staff_user_id, event.member_id, event.after["page"]) for event in database.audit("member.view")]


@pytest.mark.parametrize(("role", "suffix", "page"), [
    ("cashier", "", "staff.member"),
    ("cashier", "/card", "staff.card"),
    ("admin", "", "staff.member"),
    ("admin", "/audit", "staff.audit"),
])
def test_staff_pages_record_who_looked(console, staff, member_no, factory, database, role, suffix, page):
    console.sign_in_staff(getattr(staff, role))
    assert console.get(f"/staff/members/{member_no}{suffix}").status_code == 200
    member_id = factory.member_row(member_no).id
    assert looks(database) == [(getattr(staff, role), member_id, page)]
    [event] = database.audit("member.view")
    # Nothing personal in the trail: ids and the page only.
    assert event.before is None and event.after == {"page": page} and event.subject is None


def test_pages_without_a_member_record_nothing(console, staff, member_no, database):
    console.sign_in_staff(staff.cashier)
    console.get("/staff/")
    console.get("/staff/enrol")
    console.sign_in_staff(staff.admin)
    console.get("/admin/audit")
    console.get("/admin/access")
    assert database.audit("member.view") == []


def test_a_reload_is_the_same_look_until_ten_minutes_pass(console, staff, member_no, database, clock):
    console.sign_in_staff(staff.cashier)
    console.get(f"/staff/members/{member_no}/card")
    clock.advance(minutes=9)
    console.get(f"/staff/members/{member_no}/card")
    assert len(database.audit("member.view")) == 1
    console.get(f"/staff/members/{member_no}")
    clock.advance(minutes=11)
    console.get(f"/staff/members/{member_no}")
    assert [page for _staff, _member, page in looks(database)] == ["staff.card", "staff.member", "staff.member"]


def test_the_admin_trail_of_one_member_is_a_look_too(admin, staff, member_no, factory, database):
    admin.get(f"/admin/audit?member={member_no}")
    admin.get(f"/admin/access?member={member_no}")
    member_id = factory.member_row(member_no).id
    assert looks(database) == [(staff.admin, member_id, "admin.audit"), (staff.admin, member_id, "admin.access")]


def test_the_privacy_officer_reads_who_looked_at_whom(admin, console, staff, member_no, factory, clock):
    other = factory.member(name="Han Meimei")
    cashier = console.sign_in_staff(staff.cashier)
    cashier.get(f"/staff/members/{member_no}")
    clock.advance(minutes=1)
    cashier.get(f"/staff/members/{other}/card")
    admin.sign_in_staff(staff.admin)
    clock.advance(minutes=1)
    admin.get(f"/staff/members/{member_no}/audit")
    html = admin.get("/admin/access").get_data(as_text=True)
    listed = ROW.findall(html)
    assert len(listed) == 3
    assert "admin@example.com" in listed[0] and member_no in listed[0] and "member's audit trail" in listed[0]
    assert "cashier@example.com" in listed[1] and other in listed[1] and "membership card" in listed[1]
    assert "cashier@example.com" in listed[2] and member_no in listed[2] and "Staff console: member" in listed[2]
    assert "22 Nov 2026" in listed[2]
    # Filtered to one member (itself a look at that member, listed first) or one staff user.
    by_member = ROW.findall(admin.get(f"/admin/access?member={other}").get_data(as_text=True))
    assert len(by_member) == 2 and "Admin: data access to a member" in by_member[0]
    by_staff = ROW.findall(admin.get("/admin/access?actor=cashier@example.com").get_data(as_text=True))
    assert len(by_staff) == 2
    # Nothing personal on the page: member numbers, not names or contacts.
    assert "Li Lei" not in html and "Han Meimei" not in html and "li.lei@example.com" not in html


def test_looks_are_not_changes(console, staff, member_no):
    console.sign_in_staff(staff.admin)
    console.get(f"/staff/members/{member_no}")
    staff_trail = console.get(f"/staff/members/{member_no}/audit").get_data(as_text=True)
    assert "member.view" not in staff_trail and "/admin/access?member=" in staff_trail
    assert "member.view" not in console.get("/admin/audit").get_data(as_text=True)
