"""Recording a sale by hand: the same post_sales path as the POS API, amounts typed in yuan and kept
as exact fen, and a form that records one sale however often it is submitted."""

import re
import threading
from collections import Counter

import pytest
import sqlalchemy as sa

from loyalty.auth.models import ApiClient
from loyalty.errors import ValidationFailed
from loyalty.money import fen_to_yuan, yuan_to_fen
from tests.staff.conftest import EXTERNAL_ID_INPUT


@pytest.fixture
def cashier(console, staff):
    return console.sign_in_staff(staff.cashier)


def open_sale_form(console, member_no) -> dict:
    page = console.get(f"/staff/members/{member_no}/sale")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    return {"external_id": EXTERNAL_ID_INPUT.search(html).group(1), "csrf_token": console.csrf_token()}


@pytest.mark.parametrize(("typed", "fen"), [
    ("128", 12800), ("128.5", 12850), ("128.50", 12850), ("0.29", 29), ("0.07", 7), ("1.10", 110),
    ("¥ 99.99", 9999), (" 0 ", 0), ("999999999.99", 99999999999),
])
def test_yuan_become_exact_fen(typed, fen):
    assert yuan_to_fen(typed) == fen


@pytest.mark.parametrize("typed", ["", "abc", "-1", "+1", "1.234", "1e3", "1,280.00", "12.", ".5", "NaN",
                                   "Infinity", "1 000", "1000000000"])
def test_anything_else_is_refused_not_rounded(typed):
    with pytest.raises(ValidationFailed):
        yuan_to_fen(typed)


def test_fen_shown_as_yuan():
    assert [fen_to_yuan(v) for v in (0, 7, 12850, 123456789, -250)] == \
        ["0.00", "0.07", "128.50", "1,234,567.89", "-2.50"]


def test_form_carries_a_fresh_one_time_id(cashier, member_no):
    first = open_sale_form(cashier, member_no)["external_id"]
    second = open_sale_form(cashier, member_no)["external_id"]
    assert re.fullmatch(r"console-S001-[0-9a-f]{32}", first)
    assert first != second


def test_hand_sale_goes_through_post_sales(cashier, member_no, database, staff):
    form = open_sale_form(cashier, member_no)
    response = cashier.post(f"/staff/members/{member_no}/sale", {**form, "amount": "128.50", "points_redeemed": "0"})
    assert response.status_code == 302
    assert response.location == f"/staff/members/{member_no}"
    [sale] = database.sales()
    assert (sale.external_id, sale.amount, sale.currency, sale.points_earned) == \
        (form["external_id"], 12850, "CNY", 128)
    client = database.scalar(sa.select(ApiClient).where(ApiClient.id == sale.client_id))
    assert client.name == "staff-console:S001"
    member = database.member(member_no)
    assert member.points_balance == 128
    [event] = database.audit("sale.record")
    assert event.staff_user_id == staff.cashier and event.member_id == member.id
    assert event.before == {"points_balance": 0}
    assert event.after["points_balance"] == 128 and event.after["amount"] == 12850
    page = cashier.get(response.location).get_data(as_text=True)
    assert "128 points earned" in page
    assert form["external_id"] in page


def test_double_submit_records_one_sale(cashier, member_no, database):
    form = {**open_sale_form(cashier, member_no), "amount": "88.00", "points_redeemed": "0"}
    first = cashier.post(f"/staff/members/{member_no}/sale", form)
    second = cashier.post(f"/staff/members/{member_no}/sale", form)
    assert first.status_code == second.status_code == 302
    assert len(database.sales()) == 1
    assert database.member(member_no).points_balance == 88
    assert len(database.audit("sale.record")) == 1
    assert "already recorded" in cashier.get(second.location).get_data(as_text=True)


def test_same_form_with_a_different_amount_is_refused(cashier, member_no, database):
    form = {**open_sale_form(cashier, member_no), "points_redeemed": "0"}
    cashier.post(f"/staff/members/{member_no}/sale", {**form, "amount": "88.00"})
    response = cashier.post(f"/staff/members/{member_no}/sale", {**form, "amount": "99.00"})
    assert response.status_code == 409
    assert "already used for a different sale" in response.get_data(as_text=True)
    assert [sale.amount for sale in database.sales()] == [8800]


def test_bad_amount_records_nothing(cashier, member_no, database):
    form = open_sale_form(cashier, member_no)
    for typed in ("12.345", "-5", "1e3", ""):
        response = cashier.post(f"/staff/members/{member_no}/sale", {**form, "amount": typed})
        assert response.status_code == 422, typed
    assert database.sales() == []
    assert database.audit() == []


def test_redeem_points_in_a_hand_sale(cashier, member_no, database, factory):
    pos = factory.api_client()
    assert pos.sale(member_no, 50000).status_code == 201
    form = open_sale_form(cashier, member_no)
    response = cashier.post(f"/staff/members/{member_no}/sale",
                            {**form, "amount": "100.00", "points_redeemed": "300"})
    assert response.status_code == 302
    console_sale = database.sales()[-1]
    assert (console_sale.points_redeemed, console_sale.points_earned) == (300, 100)
    assert database.member(member_no).points_balance == 500 - 300 + 100


def test_redeeming_more_than_available_records_nothing(cashier, member_no, database):
    form = open_sale_form(cashier, member_no)
    response = cashier.post(f"/staff/members/{member_no}/sale",
                            {**form, "amount": "10.00", "points_redeemed": "1"})
    assert response.status_code == 422
    assert "Not enough points" in response.get_data(as_text=True)
    assert database.sales() == []
    # The same form can still be used once corrected: nothing was recorded under its id.
    assert cashier.post(f"/staff/members/{member_no}/sale",
                        {**form, "amount": "10.00", "points_redeemed": "0"}).status_code == 302
    assert len(database.sales()) == 1


def test_forged_external_id_is_refused(cashier, member_no, database):
    form = open_sale_form(cashier, member_no)
    response = cashier.post(f"/staff/members/{member_no}/sale",
                            {**form, "external_id": "S001-20261122-000123", "amount": "10.00"})
    assert response.status_code == 422
    assert database.sales() == []


def test_the_console_client_key_opens_nothing(cashier, member_no, database, app):
    form = open_sale_form(cashier, member_no)
    cashier.post(f"/staff/members/{member_no}/sale", {**form, "amount": "10.00"})
    client = database.scalar(sa.select(ApiClient).where(ApiClient.name == "staff-console:S001"))
    assert client.key_prefix == "console"
    # No key was ever shown for it; a bearer of its prefix or name gets nowhere.
    http = app.test_client()
    for guess in (client.key_prefix, client.name, client.key_sha256):
        assert http.get("/api/v1/members/lookup", query_string={"code": member_no},
                        headers={"Authorization": f"Bearer {guess}"}).status_code == 401


def test_each_store_has_its_own_console_client(console, factory, member_no, database):
    factory.store("S002")
    from loyalty.auth.models import StaffUser, Store
    from loyalty.extensions import db

    other = factory.staff("cashier2@example.com", "cashier")
    with console.app.app_context():
        db.session.get(StaffUser, other).store = db.session.query(Store).filter_by(code="S002").one()
        db.session.commit()
    console.sign_in_staff(other)
    form = open_sale_form(console, member_no)
    assert form["external_id"].startswith("console-S002-")
    console.post(f"/staff/members/{member_no}/sale", {**form, "amount": "10.00"})
    [sale] = database.sales()
    client = database.scalar(sa.select(ApiClient).where(ApiClient.id == sale.client_id))
    assert client.name == "staff-console:S002" and client.store_id == sale.store_id


def test_concurrent_double_submit_records_one_sale(app, staff, member_no, database):
    from tests.staff.conftest import Console

    cashier = Console(app=app, http=app.test_client(), token_staff_id=staff.cashier).sign_in_staff(staff.cashier)
    form = {**open_sale_form(cashier, member_no), "amount": "77.00", "points_redeemed": "0"}
    cookie = cashier.http.get_cookie("session").value
    barrier = threading.Barrier(4)
    statuses = []

    def submit():
        http = app.test_client()
        http.set_cookie("session", cookie)
        barrier.wait()
        statuses.append(http.post(f"/staff/members/{member_no}/sale", data=form).status_code)

    threads = [threading.Thread(target=submit) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [302] * 4
    assert len(database.sales()) == 1
    assert database.member(member_no).points_balance == 77


def test_concurrent_redemptions_at_the_counter_never_overdraw(app, staff, member_no, database):
    """Issue 12, finding 2: 10 tills redeem 20 points each at once from a member who has 100; exactly
    5 are recorded, the others refused, and the books balance (docs/architecture.md invariants 1, 2 and 7)."""
    from loyalty.extensions import db
    from loyalty.points.services import verify_ledger
    from tests.staff.conftest import Console

    cashier = Console(app=app, http=app.test_client(), token_staff_id=staff.cashier).sign_in_staff(staff.cashier)
    earning = cashier.post(f"/staff/members/{member_no}/sale", {**open_sale_form(cashier, member_no),
                                                                "amount": "100.00", "points_redeemed": "0"})
    assert earning.status_code == 302
    assert database.member(member_no).points_balance == 100
    forms = [{**open_sale_form(cashier, member_no), "amount": "0.00", "points_redeemed": "20"} for _ in range(10)]
    cookie = cashier.http.get_cookie("session").value
    barrier = threading.Barrier(len(forms))
    statuses = []

    def submit(form):
        http = app.test_client()
        http.set_cookie("session", cookie)
        barrier.wait()
        statuses.append(http.post(f"/staff/members/{member_no}/sale", data=form).status_code)

    threads = [threading.Thread(target=submit, args=(form,)) for form in forms]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert Counter(statuses) == {302: 5, 422: 5}, statuses
    assert len(database.sales()) == 1 + 5
    assert database.member(member_no).points_balance == 0
    with app.app_context():
        report = verify_ledger(db.session)
        db.session.remove()
    assert report.ok, report.problems
