"""Enrolment at the counter, then the card to scan: its QR, decoded by a real decoder, opens the member."""

import re

import pytest
import sqlalchemy as sa
import zxingcpp
from PIL import Image, ImageDraw

from loyalty.members.models import ConsentEvent, Member

CELL = re.compile(r"M(\d+),(\d+)H(\d+)V(\d+)H\d+z")


@pytest.fixture
def cashier(console, staff):
    return console.sign_in_staff(staff.cashier)


def enrol(console, **fields):
    console.get("/staff/enrol")
    return console.post("/staff/enrol", fields)


def decode_svg_qr(html: str) -> str:
    """Rasterise the card's inline SVG (unit squares in a viewBox) and read it with zxing-cpp."""
    svg = re.search(r"<svg.*?</svg>", html, re.S).group(0)
    size = int(re.search(r'viewBox="0 0 (\d+) \d+"', svg).group(1))
    scale = 8
    image = Image.new("L", (size * scale, size * scale), 255)
    draw = ImageDraw.Draw(image)
    path = re.search(r'<path d="([^"]+)"', svg).group(1)
    for x1, y1, x2, y2 in CELL.findall(path):
        draw.rectangle([int(x1) * scale, int(y1) * scale, int(x2) * scale - 1, int(y2) * scale - 1], fill=0)
    [found] = zxingcpp.read_barcodes(image)
    return found.text


def test_enrol_then_show_the_card(cashier, database, staff, factory, clock):
    response = enrol(cashier, name="Han Meimei", phone="139 0013 9000", email="", email_marketing="y")
    assert response.status_code == 302
    member = database.scalar(sa.select(Member).where(Member.name == "Han Meimei"))
    assert response.location == f"/staff/members/{member.member_no}/card"
    assert (member.phone, member.email, member.email_marketing, member.sms_marketing) == \
        ("+8613900139000", None, True, False)
    assert member.home_store_id == factory.store("S001")
    card = cashier.get(response.location)
    html = card.get_data(as_text=True)
    assert card.status_code == 200
    assert member.member_no in html and "Han Meimei" in html
    token = decode_svg_qr(html)
    assert token.startswith("LY") and f'data-token="{token}"' in html
    # The code on screen is the member's live card token: the POS API resolves it to them.
    pos = factory.api_client()
    lookup = pos.get("/members/lookup", query_string={"code": token})
    assert lookup.status_code == 200 and lookup.get_json()["member_no"] == member.member_no
    # ... and the scan page does too.
    cashier.get("/staff/")
    assert cashier.post("/staff/scan", {"code": token}).location == f"/staff/members/{member.member_no}"


def test_card_page_refreshes_before_the_token_changes(cashier, member_no, clock):
    clock.advance(seconds=45)  # DEFAULT_NOW is on a step boundary; 15 s remain of this step
    html = cashier.get(f"/staff/members/{member_no}/card").get_data(as_text=True)
    assert '<meta http-equiv="refresh" content="16">' in html


def test_enrolment_is_audited_without_personal_data(cashier, database, staff):
    enrol(cashier, name="Han Meimei", phone="13900139000", email="han@example.com", sms_marketing="y")
    member = database.scalar(sa.select(Member).where(Member.name == "Han Meimei"))
    [event] = database.audit("member.enrol")
    assert (event.staff_user_id, event.member_id, event.before) == (staff.cashier, member.id, None)
    assert event.after == {"member_no": member.member_no, "store": "S001", "has_email": True, "has_phone": True,
                           "email_marketing": False, "sms_marketing": True, "channel": "staff-console"}
    text = repr(event.after)
    assert "Han" not in text and "han@example.com" not in text and "13900139000" not in text


def test_consents_given_at_the_counter_are_recorded(cashier, database, staff):
    enrol(cashier, name="Han Meimei", phone="13900139000", sms_marketing="y")
    member = database.scalar(sa.select(Member).where(Member.name == "Han Meimei"))
    events = database.scalars(sa.select(ConsentEvent).where(ConsentEvent.member_id == member.id)
                              .order_by(ConsentEvent.consent))
    # Only what was given is a change: the member starts with no marketing consent.
    assert [(e.consent, e.granted, e.channel, e.staff_user_id) for e in events] == [
        ("sms_marketing", True, "staff", staff.cashier)]


def test_contact_already_taken_is_refused(cashier, member_no, database):
    response = enrol(cashier, name="Someone Else", phone="13800138000")
    assert response.status_code == 409
    assert "already exists" in response.get_data(as_text=True)
    assert database.count(Member) == 1
    assert database.audit() == []


@pytest.mark.parametrize(("fields", "status"), [
    ({"name": "No Contact"}, 422),
    ({"name": "", "phone": "13900139000"}, 422),
    ({"name": "Bad Phone", "phone": "12345"}, 422),
    ({"name": "Bad Email", "email": "not-an-email"}, 422),
])
def test_incomplete_enrolment_is_refused(cashier, database, fields, status):
    response = enrol(cashier, **fields)
    assert response.status_code == status
    assert 'name="name"' in response.get_data(as_text=True)
    assert database.count(Member) == 0
    assert database.audit() == []
