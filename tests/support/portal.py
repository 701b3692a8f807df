"""Driving the HTML side like a browser does: read the CSRF token from the form page, post the form,
keep the session cookie. Used by the portal and auth tests."""

import email
import email.policy
import re
from dataclasses import dataclass, field

import sqlalchemy as sa
from argon2 import PasswordHasher

from loyalty.extensions import db
from loyalty.members.models import Member


def use_cheap_password_hashing(monkeypatch) -> None:
    """Argon2id with the smallest cost: the production cost (about half a second of CPU here) is the
    point in production and only slowness in a test that signs in dozens of times. Same algorithm,
    same code paths; the parameters travel inside each hash, so verification follows them."""
    from loyalty.auth import services

    monkeypatch.setattr(services, "password_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))


CSRF_INPUT = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')
DEFAULT_PASSWORD = "correct horse battery"


def csrf_token(client, path: str) -> str:
    """The token the form at `path` carries for this client's session."""
    response = client.get(path)
    assert response.status_code == 200, (path, response.status_code)
    found = CSRF_INPUT.search(response.get_data(as_text=True))
    assert found, f"no csrf_token on {path}"
    return found.group(1)


def submit(client, path: str, data: dict, *, form_page: str | None = None, **kwargs):
    """POST `data` to `path` with the CSRF token of `form_page` (default: `path` itself)."""
    token = csrf_token(client, form_page or path)
    return client.post(path, data={"csrf_token": token, **data}, **kwargs)


def sign_up(client, *, name="Wang Fang", email="wang.fang@example.com", phone=None, password=DEFAULT_PASSWORD,
            **extra):
    data = {"name": name, "email": email, "password": password, **extra}
    if phone:
        data["phone"] = phone
    return submit(client, "/portal/signup", data)


def log_in(client, email, password=DEFAULT_PASSWORD, **kwargs):
    return submit(client, "/portal/login", {"email": email, "password": password}, **kwargs)


def staff_log_in(client, email, password=DEFAULT_PASSWORD, **kwargs):
    return submit(client, "/staff/login", {"email": email, "password": password}, **kwargs)


@dataclass
class PortalMember:
    """A member signed up through the portal, with a test client signed in as them."""

    client: object
    member_no: str
    member_id: int
    email: str
    name: str
    phone: str | None
    password: str = DEFAULT_PASSWORD
    extra: dict = field(default_factory=dict)


def new_portal_member(app, *, name="Wang Fang", email="wang.fang@example.com", phone=None,
                      password=DEFAULT_PASSWORD) -> PortalMember:
    client = app.test_client()
    response = sign_up(client, name=name, email=email, phone=phone, password=password)
    assert response.status_code == 302, response.get_data(as_text=True)
    with app.app_context():
        member = db.session.scalar(sa.select(Member).where(Member.email == email))
        return PortalMember(client=client, member_no=member.member_no, member_id=member.id, email=email,
                            name=name, phone=member.phone, password=password)


class Inbox:
    """An aiosmtpd handler that keeps what it receives, parsed."""

    def __init__(self):
        self.messages: list[email.message.EmailMessage] = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(email.message_from_bytes(envelope.content, policy=email.policy.default))
        return "250 Message accepted for delivery"

    def body(self, index: int = -1) -> str:
        return self.messages[index].get_content()
