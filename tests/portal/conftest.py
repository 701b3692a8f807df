"""Portal fixtures: members signed in through the portal, and a real SMTP server for reset emails."""

import pytest
from aiosmtpd.controller import Controller

from tests.support.portal import Inbox, new_portal_member, use_cheap_password_hashing
from tests.support.servers import free_port


@pytest.fixture(autouse=True)
def _cheap_password_hashing(monkeypatch):
    use_cheap_password_hashing(monkeypatch)


@pytest.fixture
def member(app):
    """Wang Fang, signed up through the portal and signed in (`member.client`)."""
    return new_portal_member(app, phone="+8613800138000")


@pytest.fixture
def other_member(app):
    return new_portal_member(app, name="Li Lei", email="li.lei@example.com", phone="+8613900139000")


@pytest.fixture
def smtp(app, monkeypatch):
    """A local SMTP server (aiosmtpd) the app sends to; yields its inbox."""
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    monkeypatch.setitem(app.config, "SMTP_HOST", "127.0.0.1")
    monkeypatch.setitem(app.config, "SMTP_PORT", controller.port)
    try:
        yield inbox
    finally:
        controller.stop()
