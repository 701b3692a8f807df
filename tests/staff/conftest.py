"""Fixtures for the staff console: staff of each role, a browser-like client that signs in as any of
them (or as a member), and reads the CSRF token from the page it was given, as a browser would."""

import re
from dataclasses import dataclass, field

import pytest
import sqlalchemy as sa

from loyalty.auth.models import STAFF_ROLES, AuditEvent, StaffUser, Store
from loyalty.auth.services import password_hasher
from loyalty.extensions import db
from loyalty.members.models import Member, StaffNote
from loyalty.sales.models import Transaction
from tests.support.sessions import plant_identity

STAFF_PASSWORD = "correct horse battery"
CSRF_INPUT = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')
EXTERNAL_ID_INPUT = re.compile(r'name="external_id"[^>]*value="([^"]+)"')


def csrf_from(html: str) -> str:
    found = CSRF_INPUT.search(html)
    assert found, "no CSRF token in the page"
    return found.group(1)


@dataclass
class Console:
    """A test client for /staff/ that can sign in as staff or a member by setting the Flask-Login
    session (as the login views do after checking a password)."""

    app: object
    http: object
    token_staff_id: int
    identity: str | None = None
    last_html: str = field(default="", repr=False)

    def sign_in_staff(self, staff_id: int) -> "Console":
        return self._sign_in(f"staff:{staff_id}")

    def sign_in_member(self, member_id: int) -> "Console":
        return self._sign_in(f"member:{member_id}")

    def sign_out(self) -> "Console":
        return self._sign_in(None)

    def _sign_in(self, identity: str | None) -> "Console":
        self.identity = identity
        plant_identity(self.app, self.http, identity)
        return self

    def get(self, path: str, **kwargs):
        response = self.http.get(path, **kwargs)
        if response.mimetype == "text/html":
            self.last_html = response.get_data(as_text=True)
        return response

    def post(self, path: str, data: dict | None = None, *, csrf: bool = True, **kwargs):
        data = dict(data or {})
        if csrf and "csrf_token" not in data:
            data["csrf_token"] = self.csrf_token()
        response = self.http.post(path, data=data, **kwargs)
        if response.mimetype == "text/html":
            self.last_html = response.get_data(as_text=True)
        return response

    def csrf_token(self) -> str:
        """The token from the last page this client saw; for an identity that may see no staff page
        (anonymous, member, marketer), from the scan page as a cashier in the same browser session."""
        if CSRF_INPUT.search(self.last_html):
            return csrf_from(self.last_html)
        identity = self.identity
        self._sign_in(f"staff:{self.token_staff_id}")
        page = self.http.get("/staff/")
        assert page.status_code == 200, page.status_code
        self._sign_in(identity)
        return csrf_from(page.get_data(as_text=True))


@dataclass
class Staff:
    admin: int
    marketer: int
    cashier: int


@pytest.fixture(scope="session")
def staff_password_hash() -> str:
    # One real Argon2 hash for the whole run: hashing is deliberately slow (~0.2-1 s), and these tests
    # sign in by session, not by password.
    return password_hasher.hash(STAFF_PASSWORD)


@pytest.fixture
def staff(app, factory, staff_password_hash) -> Staff:
    """An admin, a marketer and a cashier of store S001."""
    factory.store("S001")
    with app.app_context():
        store = db.session.scalar(sa.select(Store).where(Store.code == "S001"))
        users = {role: StaffUser(email=f"{role}@example.com", role=role, password_hash=staff_password_hash,
                                 store=store) for role in STAFF_ROLES}
        db.session.add_all(users.values())
        db.session.commit()
        return Staff(**{role: user.id for role, user in users.items()})


@pytest.fixture
def console(app, staff) -> Console:
    return Console(app=app, http=app.test_client(), token_staff_id=staff.cashier)


@pytest.fixture
def member_no(factory) -> str:
    return factory.member(name="Li Lei", email="li.lei@example.com", phone="+8613800138000")


@dataclass
class Db:
    """Fresh reads of the database, each in its own app context (never the request's session)."""

    app: object

    def scalar(self, statement):
        with self.app.app_context():
            return db.session.scalar(statement)

    def scalars(self, statement) -> list:
        with self.app.app_context():
            rows = db.session.scalars(statement).all()
            for row in rows:
                db.session.expunge(row)
            return rows

    def member(self, member_no: str) -> Member:
        with self.app.app_context():
            member = db.session.scalar(sa.select(Member).where(Member.member_no == member_no))
            db.session.expunge(member)
            return member

    def count(self, model, *where) -> int:
        return self.scalar(sa.select(sa.func.count()).select_from(model).where(*where))

    def sales(self) -> list[Transaction]:
        return self.scalars(sa.select(Transaction).where(Transaction.kind == "sale").order_by(Transaction.id))

    def audit(self, action: str | None = None) -> list[AuditEvent]:
        """The audited changes (or those of one action). Looks at a member's page (member.view, the
        data-access log) are not changes: they are listed only when asked for by name."""
        statement = sa.select(AuditEvent).order_by(AuditEvent.id)
        if action:
            statement = statement.where(AuditEvent.action == action)
        else:
            statement = statement.where(AuditEvent.action != "member.view")
        return self.scalars(statement)

    def notes(self) -> list[StaffNote]:
        return self.scalars(sa.select(StaffNote).order_by(StaffNote.id))


@pytest.fixture
def database(app) -> Db:
    return Db(app)
