"""The scan page: a scanner (or a cashier) types a card token, member number or phone and presses
Enter; the console opens that member, or says clearly why it cannot."""

import re

import pytest

from loyalty.members.models import Member
from loyalty.members.services import current_card_token


@pytest.fixture
def cashier(console, staff):
    return console.sign_in_staff(staff.cashier)


def card_token(app, clock, member_no: str) -> str:
    with app.app_context():
        from loyalty.extensions import db

        member = db.session.query(Member).filter_by(member_no=member_no).one()
        return current_card_token(member, clock()).token


def scan(console, code: str):
    page = console.get("/staff/")
    assert page.status_code == 200
    return console.post("/staff/scan", {"code": code})


def test_scan_page_focuses_the_input_and_hides_the_camera_button(cashier):
    html = cashier.get("/staff/").get_data(as_text=True)
    assert 'name="code"' in html
    code_input = re.search(r'<input[^>]*name="code"[^>]*>', html).group(0)
    assert "autofocus" in code_input
    assert '<form method="post" action="/staff/scan"' in html
    # Shown by scan.js only where BarcodeDetector can read QR codes.
    assert 'id="camera-scan" hidden' in html
    assert '/static/js/scan.js' in html


def test_scan_script_is_served_by_the_app(cashier):
    with cashier.http.get("/static/js/scan.js") as script:
        assert script.status_code == 200
        body = script.get_data(as_text=True)
    assert "BarcodeDetector" in body and "getSupportedFormats" in body
    assert "http://" not in body and "https://" not in body


def test_scan_by_member_number(cashier, member_no):
    response = scan(cashier, member_no)
    assert response.status_code == 302
    assert response.location == f"/staff/members/{member_no}"


def test_scan_with_the_scanners_trailing_whitespace(cashier, member_no):
    assert scan(cashier, f"  {member_no}\r\n").location == f"/staff/members/{member_no}"


def test_scan_by_card_token(cashier, member_no, app, clock):
    token = card_token(app, clock, member_no)
    response = scan(cashier, token)
    assert response.status_code == 302
    assert response.location == f"/staff/members/{member_no}"
    # Scanners configured for upper case type the same token.
    assert scan(cashier, token.upper()).location == f"/staff/members/{member_no}"


def test_scan_by_phone_as_typed(cashier, member_no):
    for typed in ("+8613800138000", "13800138000", "138 0013 8000"):
        response = scan(cashier, typed)
        assert response.status_code == 302, typed
        assert response.location == f"/staff/members/{member_no}"


def test_expired_card_token_says_so(cashier, member_no, app, clock):
    token = card_token(app, clock, member_no)
    clock.advance(seconds=181)
    response = scan(cashier, token)
    assert response.status_code == 410
    html = response.get_data(as_text=True)
    assert "Card code expired — ask the member to refresh their card." in html
    # Ready for the next scan: the field is empty and still there.
    assert 'name="code"' in html and 'value="LY' not in html


def test_unknown_code_finds_no_member(cashier, member_no, app, clock):
    token = card_token(app, clock, member_no)
    tampered = token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB")
    for code in ("1000000000", "+8613911112222", "hello", tampered):
        response = scan(cashier, code)
        assert response.status_code == 404, code
        assert "No member found." in response.get_data(as_text=True)


def test_erased_member_is_not_found_by_any_code(cashier, member_no, app, clock):
    token = card_token(app, clock, member_no)
    with app.app_context():
        from loyalty.extensions import db

        member = db.session.query(Member).filter_by(member_no=member_no).one()
        member.status, member.card_secret = "erased", None
        db.session.commit()
    for code in (member_no, token):
        assert scan(cashier, code).status_code == 404


def test_empty_scan_is_refused(cashier):
    response = scan(cashier, "   ")
    assert response.status_code == 422
    assert 'name="code"' in response.get_data(as_text=True)


def test_token_from_a_minute_ago_still_works(cashier, member_no, app, clock):
    token = card_token(app, clock, member_no)
    clock.advance(seconds=59)
    assert scan(cashier, token).status_code == 302
