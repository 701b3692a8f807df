"""Fixtures for the admin console: the staff console's signed-in test client and staff of each role
(tests/staff/conftest.py), an admin already signed in, and fresh reads of what the console changed."""

import pytest
import sqlalchemy as sa

from loyalty.auth.models import ApiClient, AuditEvent, StaffUser, Store
from loyalty.extensions import db
from loyalty.points.models import ProgramSettings, Tier
from tests.staff.conftest import (  # noqa: F401  (fixtures)
    Console,
    Db,
    console,
    csrf_from,
    database,
    member_no,
    staff,
    staff_password_hash,
)
from tests.support.portal import use_cheap_password_hashing


@pytest.fixture(autouse=True)
def _cheap_password_hashing(monkeypatch):
    use_cheap_password_hashing(monkeypatch)


@pytest.fixture
def admin(console, staff) -> Console:  # noqa: F811  (the fixtures imported above)
    """The console signed in as the admin, having opened /admin/ (so it holds a CSRF token)."""
    console.sign_in_staff(staff.admin)
    console.token_staff_id = staff.admin  # a CSRF token from an admin page when the last page had none
    assert console.get("/admin/").status_code == 200
    return console


class AdminDb(Db):
    def stores(self) -> list[Store]:
        return self.scalars(sa.select(Store).order_by(Store.code))

    def staff_users(self) -> list[StaffUser]:
        return self.scalars(sa.select(StaffUser).order_by(StaffUser.id))

    def api_clients(self) -> list[ApiClient]:
        return self.scalars(sa.select(ApiClient).order_by(ApiClient.id))

    def tiers(self) -> dict[str, Tier]:
        return {tier.code: tier for tier in self.scalars(sa.select(Tier).order_by(Tier.rank))}

    def settings(self) -> ProgramSettings:
        return self.scalars(sa.select(ProgramSettings))[0]

    def events(self, prefix: str = "") -> list[AuditEvent]:
        """Every audit row whose action starts with `prefix`, oldest first."""
        return self.scalars(sa.select(AuditEvent).where(AuditEvent.action.startswith(prefix)).order_by(AuditEvent.id))

    def row_counts(self) -> dict:
        """How many rows the console's tables hold: a refused form must leave them all as they were."""
        with self.app.app_context():
            return {model.__tablename__: db.session.scalar(sa.select(sa.func.count()).select_from(model))
                    for model in (Store, StaffUser, ApiClient, AuditEvent, Tier)}


@pytest.fixture
def admin_db(app) -> AdminDb:
    return AdminDb(app)
