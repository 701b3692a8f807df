"""`loyalty demo`: demo data posted through the real services leaves a clean ledger and plausible people,
is the same for the same seed, and is never loaded twice into one database."""

from datetime import timedelta

import phonenumbers
import sqlalchemy as sa

from loyalty.auth.models import ApiClient, StaffUser, Store
from loyalty.auth.services import authenticate_api_key, check_password
from loyalty.demo.loading import DEMO_PASSWORD
from loyalty.demo.planning import plan_demo
from loyalty.members.models import Member
from loyalty.points.services import verify_ledger
from loyalty.sales.models import Transaction
from tests.support.clock import DEFAULT_NOW


def _count(session, query):
    return session.scalar(sa.select(sa.func.count()).select_from(query))


def test_demo_loads_stores_staff_members_and_sales_with_a_clean_ledger(runner, session, client):
    result = runner.invoke(args=["demo", "--members", "120", "--days", "90"])
    assert result.exit_code == 0, result.output

    stores = session.scalars(sa.select(Store).order_by(Store.code)).all()
    assert [store.code for store in stores] == ["S001", "S002", "S003"]
    assert {store.timezone for store in stores} == {"Asia/Shanghai"}
    assert _count(session, ApiClient) == 3
    staff = {user.email: user for user in session.scalars(sa.select(StaffUser))}
    assert {email: user.role for email, user in staff.items()} == {
        "admin@demo.loyalty": "admin", "marketer@demo.loyalty": "marketer", "cashier@demo.loyalty": "cashier"}
    assert check_password(staff["admin@demo.loyalty"].password_hash, DEMO_PASSWORD)

    members = session.scalars(sa.select(Member)).all()
    assert len(members) == 120
    for member in members:
        assert member.email or member.phone
        if member.phone:
            assert member.phone.startswith("+861")
            assert phonenumbers.is_valid_number(phonenumbers.parse(member.phone))
        assert DEFAULT_NOW - timedelta(days=90) < member.enrolled_at <= DEFAULT_NOW

    sales = session.scalars(sa.select(Transaction).where(Transaction.kind == "sale")).all()
    anonymous = [sale for sale in sales if sale.member_id is None]
    assert len(sales) > 100
    assert 0 < len(anonymous) < len(sales) * 0.1
    assert all(DEFAULT_NOW - timedelta(days=90) < sale.occurred_at <= DEFAULT_NOW for sale in sales)
    enrolled = {member.id: member.enrolled_at for member in members}
    assert all(sale.occurred_at > enrolled[sale.member_id] for sale in sales if sale.member_id)
    assert any(sale.points_redeemed for sale in sales)
    assert sum(sale.points_earned for sale in sales) > 0
    refunds = _count(session, sa.select(Transaction).where(Transaction.kind == "refund").subquery())
    assert refunds > 0
    assert any(0 < sale.refunded_amount < sale.amount for sale in sales)
    assert any(sale.refunded_amount == sale.amount for sale in sales)

    assert verify_ledger(session).ok

    lines = result.output.splitlines()
    assert "members: 120 (" in result.output
    assert f"sales: {len(sales)} " in result.output
    assert f"refunds: {refunds} " in result.output
    assert f"password: {DEMO_PASSWORD}" in result.output
    key = next(line for line in lines if line.startswith("POS API key for S001: ")).rsplit(" ", 1)[1]
    assert authenticate_api_key(session, key).store.code == "S001"
    some_member = members[0].member_no
    response = client.get(f"/api/v1/members/{some_member}", headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 200, response.get_json()


def test_demo_refuses_a_database_that_holds_data(runner, session):
    first = runner.invoke(args=["demo", "--members", "5", "--days", "10"])
    assert first.exit_code == 0, first.output
    sales = _count(session, sa.select(Transaction).subquery())

    second = runner.invoke(args=["demo", "--members", "5", "--days", "10"])

    assert second.exit_code == 1
    assert "already holds data" in second.output
    assert _count(session, Member) == 5
    assert _count(session, sa.select(Transaction).subquery()) == sales


def test_demo_plan_is_the_same_for_the_same_seed():
    first = plan_demo(DEFAULT_NOW, members=40, days=90, seed=11)

    assert plan_demo(DEFAULT_NOW, members=40, days=90, seed=11) == first
    assert plan_demo(DEFAULT_NOW, members=40, days=90, seed=12) != first
    assert len(first.members) == 40 and first.sales
    assert all(sale.occurred_at <= DEFAULT_NOW for sale in first.sales)


def test_demo_plan_rerun_later_the_same_day_adds_only_the_hours_in_between():
    morning = plan_demo(DEFAULT_NOW, members=200, days=30, seed=5)
    evening = plan_demo(DEFAULT_NOW + timedelta(hours=10), members=200, days=30, seed=5)

    def receipts(plan):
        return [(sale.external_id, sale.occurred_at, sale.member, sale.lines) for sale in plan.sales]

    assert len(evening.sales) > len(morning.sales)
    assert receipts(evening)[:len(morning.sales)] == receipts(morning)
    assert [person.email for person in evening.members] == [person.email for person in morning.members]
