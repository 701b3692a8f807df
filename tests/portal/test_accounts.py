"""Sign-up, sign-in and sign-out of members (docs/api.md "Member portal routes used by scripts")."""

import sqlalchemy as sa

from loyalty.extensions import db
from loyalty.members.models import ConsentEvent, Member
from tests.support.portal import DEFAULT_PASSWORD, log_in, sign_up, submit


def _member(app, email):
    with app.app_context():
        return db.session.scalar(sa.select(Member).where(Member.email == email))


def test_sign_up_enrols_signs_in_and_shows_the_card(app, client):
    response = sign_up(client, name="Wang Fang", email="Wang.Fang@Example.com", phone="13800138000",
                       email_marketing="y")
    assert response.status_code == 302
    assert response.location == "/portal/card"

    with app.app_context():
        member = db.session.scalar(sa.select(Member).where(Member.email == "wang.fang@example.com"))
        assert member.name == "Wang Fang" and member.phone == "+8613800138000"
        assert member.status == "active" and member.tier.code == "BRONZE"
        assert member.password_hash.startswith("$argon2id$")
        assert DEFAULT_PASSWORD not in member.password_hash
        assert member.email_marketing is True and member.sms_marketing is False
        events = db.session.scalars(sa.select(ConsentEvent).where(ConsentEvent.member_id == member.id)).all()
        assert [(e.consent, e.granted, e.channel) for e in events] == [("email_marketing", True, "portal")]

    card = client.get("/portal/card")
    assert card.status_code == 200
    assert member.member_no in card.get_data(as_text=True)


def test_sign_up_refuses_a_taken_email_a_short_password_and_a_bad_phone(app, client, member):
    taken = sign_up(app.test_client(), email=member.email)
    assert taken.status_code == 200
    assert "already exists" in taken.get_data(as_text=True)

    short = sign_up(app.test_client(), email="short@example.com", password="seven77")
    assert short.status_code == 200
    assert "at least 8 characters" in short.get_data(as_text=True)

    bad_phone = sign_up(app.test_client(), email="phone@example.com", phone="12345")
    assert bad_phone.status_code == 200
    assert "Not a valid phone number." in bad_phone.get_data(as_text=True)

    for email in ("short@example.com", "phone@example.com"):
        assert _member(app, email) is None


def test_sign_in_with_the_right_password_only(app, member):
    client = app.test_client()
    wrong = log_in(client, member.email, "not the password")
    assert wrong.status_code == 200
    assert "Wrong email or password." in wrong.get_data(as_text=True)
    assert client.get("/portal/").status_code == 302

    unknown = log_in(client, "nobody@example.com", "not the password")
    assert unknown.get_data(as_text=True).count("Wrong email or password.") == 1

    right = log_in(client, member.email.upper(), member.password)
    assert right.status_code == 302 and right.location == "/portal/"
    assert client.get("/portal/").status_code == 200


def test_sign_in_returns_to_the_page_asked_for_but_never_off_site(app, member):
    client = app.test_client()
    asked = log_in(client, member.email, form_page="/portal/login", query_string={"next": "/portal/history"})
    assert asked.location == "/portal/history"
    for target in ("https://evil.example/", "//evil.example/", "/\\evil.example"):
        client = app.test_client()
        response = log_in(client, member.email, query_string={"next": target})
        assert response.location == "/portal/", target


def test_sign_out_ends_the_session(member):
    response = submit(member.client, "/portal/logout", {}, form_page="/portal/")
    assert response.status_code == 302
    assert member.client.get("/portal/").status_code == 302


def test_members_enrolled_at_the_counter_have_no_password_to_sign_in_with(app, factory):
    member_no = factory.member(email="counter@example.com")
    assert factory.member_row(member_no).password_hash is None
    assert log_in(app.test_client(), "counter@example.com", "").status_code == 200
    assert log_in(app.test_client(), "counter@example.com", "anything at all").status_code == 200


def test_suspended_members_cannot_sign_in_and_lose_their_session(app, member):
    with app.app_context():
        row = db.session.get(Member, member.member_id)
        row.status = "suspended"
        db.session.commit()
    assert member.client.get("/portal/").status_code == 302
    assert log_in(app.test_client(), member.email).status_code == 200


def test_session_cookie_is_http_only_and_same_site_lax(app):
    client = app.test_client()
    response = sign_up(client, email="cookie@example.com")
    cookie = response.headers.get("Set-Cookie")
    assert "session=" in cookie
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie


def test_sign_ups_are_limited_per_address(app, monkeypatch):
    monkeypatch.setitem(app.config, "SIGNUP_LIMIT_PER_ADDRESS", "3 per hour")
    created = [sign_up(app.test_client(), email=f"new{n}@example.com").status_code for n in range(2)]
    probe = sign_up(app.test_client(), email="new0@example.com")  # a taken email counts too
    refused = sign_up(app.test_client(), email="new9@example.com")

    assert created == [302, 302] and probe.status_code == 200
    assert refused.status_code == 429 and "Retry-After" in refused.headers
    assert "Too many sign-ups from your network." in refused.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Member)) == 2
