"""Password reset by emailed link, through a real SMTP server (aiosmtpd) on this machine."""

import re

from tests.campaigns.test_batches_and_wallets import run_queued_jobs
from tests.support.portal import CSRF_INPUT, log_in, submit

LINK = re.compile(r"http://localhost(/portal/password/reset/\S+)")


def _ask_for_link(client, email):
    """Ask for a link and, with Redis, let a worker send it (inline it is sent before the answer)."""
    response = submit(client, "/portal/password/forgot", {"email": email})
    with client.application.app_context():
        run_queued_jobs(client.application)
    return response


def _link(inbox) -> str:
    return LINK.search(inbox.body()).group(1)


def test_reset_link_sets_a_new_password_once(app, member, smtp):
    client = app.test_client()
    response = _ask_for_link(client, member.email)
    assert response.status_code == 302 and response.location == "/portal/login"
    assert len(smtp.messages) == 1
    message = smtp.messages[0]
    assert message["To"] == member.email
    assert message["Subject"] == "Set a new password"
    link = _link(smtp)

    assert client.get(link).status_code == 200
    done = submit(client, link, {"password": "a fresh password", "confirm": "a fresh password"})
    assert done.status_code == 302 and done.location == "/portal/"
    assert client.get("/portal/").status_code == 200

    assert log_in(app.test_client(), member.email, member.password).status_code == 200
    assert log_in(app.test_client(), member.email, "a fresh password").status_code == 302
    # Used once: the password it was made for has changed, so the link is dead.
    reused = app.test_client().get(link)
    assert reused.status_code == 404
    assert "expired or has already been used" in reused.get_data(as_text=True)


def test_unknown_email_gets_the_same_answer_and_no_mail(app, member, smtp):
    known = _ask_for_link(app.test_client(), member.email)
    unknown = _ask_for_link(app.test_client(), "nobody@example.com")
    assert (known.status_code, known.location) == (unknown.status_code, unknown.location)
    assert len(smtp.messages) == 1


def test_links_expire_after_an_hour(app, member, smtp, clock):
    _ask_for_link(app.test_client(), member.email)
    link = _link(smtp)
    clock.advance(minutes=59)
    assert app.test_client().get(link).status_code == 200
    clock.advance(minutes=2)
    assert app.test_client().get(link).status_code == 404


def test_tampered_links_are_refused(app, member, smtp):
    _ask_for_link(app.test_client(), member.email)
    link = _link(smtp)
    token = link.rsplit("/", 1)[1]
    payload, _, signature = token.partition(".")
    for forged in (payload[:-2] + "xx" + "." + signature, token[:-3] + "abc", "garbage"):
        assert app.test_client().get(f"/portal/password/reset/{forged}").status_code == 404


def test_counter_enrolled_members_can_set_a_first_password(app, factory, smtp):
    factory.member(email="counter@example.com")
    client = app.test_client()
    _ask_for_link(client, "counter@example.com")
    link = _link(smtp)
    assert submit(client, link, {"password": "my first one", "confirm": "my first one"}).status_code == 302
    assert log_in(app.test_client(), "counter@example.com", "my first one").status_code == 302


def test_links_use_the_public_base_url_not_the_host_header(app, member, smtp, monkeypatch):
    monkeypatch.setitem(app.config, "PUBLIC_BASE_URL", "https://loyalty.example.com")
    _ask_for_link(app.test_client(), member.email)
    assert "https://loyalty.example.com/portal/password/reset/" in smtp.body()
    assert "localhost" not in smtp.body()


def test_a_forged_host_header_does_not_reach_the_link(app, member, smtp, monkeypatch):
    monkeypatch.setitem(app.config, "PUBLIC_BASE_URL", "https://loyalty.example.com")
    client = app.test_client()
    forged = {"Host": "evil.example"}
    page = client.get("/portal/password/forgot", headers=forged).get_data(as_text=True)
    token = CSRF_INPUT.search(page).group(1)
    answer = client.post("/portal/password/forgot", data={"csrf_token": token, "email": member.email}, headers=forged)
    assert answer.status_code == 302
    with app.app_context():
        run_queued_jobs(app)
    assert "https://loyalty.example.com/portal/password/reset/" in smtp.body()
    assert "evil.example" not in smtp.body()


def test_mismatched_passwords_are_refused(app, member, smtp):
    client = app.test_client()
    _ask_for_link(client, member.email)
    response = submit(client, _link(smtp), {"password": "one password", "confirm": "another one"})
    assert response.status_code == 200
    assert "The passwords differ." in response.get_data(as_text=True)
    assert log_in(app.test_client(), member.email, member.password).status_code == 302


def test_reset_requests_are_throttled(app, member, smtp):
    for _ in range(3):
        assert _ask_for_link(app.test_client(), member.email).status_code == 302
    refused = _ask_for_link(app.test_client(), member.email)
    assert refused.status_code == 429
    assert "Too many password reset requests for this account" in refused.get_data(as_text=True)
    assert "Retry-After" in refused.headers
    assert len(smtp.messages) == 3


def test_a_mail_server_outage_does_not_reveal_the_account(app, member, monkeypatch, caplog):
    from tests.support.servers import free_port

    monkeypatch.setitem(app.config, "SMTP_HOST", "127.0.0.1")
    monkeypatch.setitem(app.config, "SMTP_PORT", free_port())  # nothing listens there
    known = _ask_for_link(app.test_client(), member.email)
    unknown = _ask_for_link(app.test_client(), "nobody@example.com")
    assert (known.status_code, known.location) == (unknown.status_code, unknown.location) == (302, "/portal/login")
    if app.config["REDIS_URL"]:
        # The worker's try failed; RQ tries again later (members/tasks.MAIL_RETRY_INTERVALS).
        from rq.registry import ScheduledJobRegistry

        from loyalty.jobs import redis_connection

        with app.app_context():
            assert ScheduledJobRegistry("default", connection=redis_connection()).count == 1
    else:
        assert "password reset email to member" in caplog.text


def test_a_reset_ends_the_sessions_signed_in_with_the_old_password(app, member, smtp):
    """Someone who knew the old password (the reason to reset it) must not stay signed in."""
    assert member.client.get("/portal/").status_code == 200
    client = app.test_client()
    _ask_for_link(client, member.email)
    submit(client, _link(smtp), {"password": "a fresh password", "confirm": "a fresh password"})

    assert client.get("/portal/").status_code == 200
    assert member.client.get("/portal/").status_code == 302


def test_the_reset_mail_is_in_the_language_the_member_asked_in(app, member, smtp):
    client = app.test_client()
    client.set_cookie("lang", "zh")
    _ask_for_link(client, member.email)
    assert smtp.messages[0]["Subject"] == "设置新密码"
    assert LINK.search(smtp.body())
