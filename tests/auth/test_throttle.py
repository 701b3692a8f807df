"""Sign-in throttling, per account and per address, with a clear message (Flask-Limiter; Redis-backed
under --redis). Only failed attempts count."""

import pytest

from tests.support.portal import log_in, new_portal_member, staff_log_in

ACCOUNT_LIMIT = 5  # config LOGIN_LIMIT_PER_ACCOUNT = "5 per 5 minutes"


@pytest.fixture
def member(app):
    return new_portal_member(app)


def test_an_account_is_locked_after_five_failures_even_for_the_right_password(app, member):
    for _ in range(ACCOUNT_LIMIT):
        assert log_in(app.test_client(), member.email, "guess").status_code == 200
    refused = log_in(app.test_client(), member.email, member.password)
    assert refused.status_code == 429
    text = refused.get_data(as_text=True)
    assert "Too many failed sign-in attempts for this account." in text
    assert "You can try again in 5 minutes." in text
    assert 0 < int(refused.headers["Retry-After"]) <= 300
    # The form is shown again, ready for later.
    assert 'id="login-form"' in text
    # Case and spaces do not make a new account to guess at.
    assert log_in(app.test_client(), f"  {member.email.upper()} ", member.password).status_code == 429


def test_other_accounts_from_the_same_address_are_not_locked(app, member):
    other = new_portal_member(app, name="Li Lei", email="li.lei@example.com")
    for _ in range(ACCOUNT_LIMIT):
        log_in(app.test_client(), member.email, "guess")
    assert log_in(app.test_client(), other.email, other.password).status_code == 302


def test_successful_sign_ins_do_not_count(app, member):
    for _ in range(ACCOUNT_LIMIT * 2):
        assert log_in(app.test_client(), member.email, member.password).status_code == 302


def test_an_address_is_locked_after_too_many_failures_across_accounts(app, member, monkeypatch):
    monkeypatch.setitem(app.config, "LOGIN_LIMIT_PER_ADDRESS", "4 per 5 minutes")
    attacker = {"REMOTE_ADDR": "203.0.113.9"}
    for number in range(4):
        response = log_in(app.test_client(), f"victim{number}@example.com", "guess", environ_base=attacker)
        assert response.status_code == 200
    refused = log_in(app.test_client(), member.email, member.password, environ_base=attacker)
    assert refused.status_code == 429
    assert "Too many failed sign-in attempts from your network." in refused.get_data(as_text=True)
    # The member themself, elsewhere, is not affected.
    assert log_in(app.test_client(), member.email, member.password).status_code == 302


def test_staff_sign_in_is_throttled_too(app, factory):
    factory.staff("cashier@example.com", "cashier")
    for _ in range(ACCOUNT_LIMIT):
        assert staff_log_in(app.test_client(), "cashier@example.com", "guess").status_code == 200
    refused = staff_log_in(app.test_client(), "cashier@example.com")
    assert refused.status_code == 429
    assert "Too many failed sign-in attempts for this account." in refused.get_data(as_text=True)


def test_member_and_staff_counters_are_separate(app, factory, member):
    factory.staff(member.email, "cashier")
    for _ in range(ACCOUNT_LIMIT):
        log_in(app.test_client(), member.email, "guess")
    assert staff_log_in(app.test_client(), member.email).status_code == 302


def test_the_message_is_in_chinese_for_chinese_browsers(app, member):
    for _ in range(ACCOUNT_LIMIT):
        log_in(app.test_client(), member.email, "guess")
    refused = log_in(app.test_client(), member.email, member.password, headers={"Accept-Language": "zh-CN"})
    assert refused.status_code == 429
    assert "该账户登录失败次数过多" in refused.get_data(as_text=True)
