"""Who may see what in the portal: anonymous visitors and staff are sent to the member sign-in, and a
member only ever sees their own data (another member's ids answer 404, exactly like missing ones)."""

import pytest
import sqlalchemy as sa

from loyalty.extensions import db
from loyalty.sales.models import Transaction
from tests.support.portal import csrf_token, staff_log_in

MEMBER_PAGES = ["/portal/", "/portal/card", "/portal/card.json", "/portal/card.svg", "/portal/card.png",
                "/portal/history", "/portal/history?page=2", "/portal/transactions/1", "/portal/profile",
                "/portal/export.json", "/portal/erase"]
MEMBER_FORMS = ["/portal/consents", "/portal/password", "/portal/profile", "/portal/erase"]
PUBLIC_PAGES = ["/portal/login", "/portal/signup", "/portal/password/forgot"]


@pytest.mark.parametrize("path", MEMBER_PAGES)
def test_anonymous_visitors_are_sent_to_sign_in(client, path):
    response = client.get(path)
    assert response.status_code == 302
    assert response.location.startswith("/portal/login?next=")


@pytest.mark.parametrize("path", MEMBER_FORMS)
def test_anonymous_posts_with_a_valid_token_are_sent_to_sign_in(client, path):
    token = csrf_token(client, "/portal/login")
    response = client.post(path, data={"csrf_token": token, "email_marketing": "y", "password": "x"})
    assert response.status_code == 302
    assert response.location.startswith("/portal/login")


@pytest.mark.parametrize("path", PUBLIC_PAGES)
def test_account_pages_are_open(client, path):
    assert client.get(path).status_code == 200


def test_staff_are_not_members(app, factory):
    factory.staff("cashier@example.com", "cashier")
    client = app.test_client()
    assert staff_log_in(client, "cashier@example.com").status_code == 302
    for path in MEMBER_PAGES:
        response = client.get(path)
        assert response.status_code == 302, path
        assert response.location.startswith("/portal/login"), path


def test_a_member_is_not_staff(member):
    response = member.client.get("/staff/")
    assert response.status_code == 302
    assert response.location.startswith("/staff/login")


def test_signed_in_member_reaches_every_page(member):
    for path in MEMBER_PAGES:
        if "transactions" in path:
            continue
        assert member.client.get(path).status_code == 200, path


def test_portal_routes_take_no_member_identifier(app):
    """Nothing in a portal URL can name a member: pages serve current_member() only."""
    arguments = {argument for rule in app.url_map.iter_rules() if rule.endpoint.startswith("portal.")
                 for argument in rule.arguments}
    assert arguments <= {"transaction_id", "token", "filename"}


def test_another_members_transaction_is_404_without_a_leak(app, member, other_member, pos):
    sale = pos.sale(member.member_no, 12800, external_id="WANG-SALE-1",
                    lines=[{"sku": "SECRET-SKU", "quantity": 1, "unit_price": 12800, "amount": 12800}])
    assert sale.status_code == 201
    with app.app_context():
        sale_id = db.session.scalar(sa.select(Transaction.id).where(Transaction.external_id == "WANG-SALE-1"))

    own = member.client.get(f"/portal/transactions/{sale_id}")
    assert own.status_code == 200
    assert "SECRET-SKU" in own.get_data(as_text=True)

    theirs = other_member.client.get(f"/portal/transactions/{sale_id}")
    missing = other_member.client.get(f"/portal/transactions/{sale_id + 1000}")
    assert theirs.status_code == missing.status_code == 404
    assert theirs.get_data() == missing.get_data()
    for secret in ("WANG-SALE-1", "SECRET-SKU", member.name, member.member_no):
        assert secret not in theirs.get_data(as_text=True)


def test_history_card_and_export_are_the_members_own(member, other_member, pos):
    assert pos.sale(member.member_no, 50000, external_id="WANG-SALE-2").status_code == 201
    history = other_member.client.get("/portal/history").get_data(as_text=True)
    assert "WANG-SALE-2" not in history
    export = other_member.client.get("/portal/export.json").get_json()
    assert export["profile"]["member_no"] == other_member.member_no
    assert export["sales"] == [] and export["ledger_entries"] == []
    assert member.member_no not in other_member.client.get("/portal/card").get_data(as_text=True)
    # Query strings naming somebody else are ignored, not obeyed.
    assert "WANG-SALE-2" not in other_member.client.get(
        f"/portal/history?member_no={member.member_no}&member_id={member.member_id}").get_data(as_text=True)


def test_the_site_root_sends_each_visitor_home(app, factory, member):
    """http://127.0.0.1:5000/, where the README sends a first-time user, is never a 404."""
    assert app.test_client().get("/").location == "/portal/"
    assert member.client.get("/").location == "/portal/"
    factory.staff("cashier@example.com", "cashier")
    staff_client = app.test_client()
    staff_log_in(staff_client, "cashier@example.com")
    assert staff_client.get("/").location.startswith("/staff/")
