"""Sign-in throttling, per account and per address, with a clear message (Flask-Limiter; Redis-backed
under --redis, the database without Redis). Only failed attempts count."""

import os
import subprocess
import sys

import pytest

from loyalty import PROJECT_ROOT
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


# A web process of its own on the test database, without Redis: its in-process counters are its own.
# It starts (which takes seconds) at once, and signs in when the file argv[3] exists.
SIGN_IN_PROCESS = """
import sys
import time
from pathlib import Path
from argon2 import PasswordHasher
from loyalty import create_app
from loyalty.auth import services
from tests.support.portal import log_in

services.password_hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)  # as in the tests
app = create_app({"TESTING": True, "SECRET_KEY": "test-secret-key", "SQLALCHEMY_DATABASE_URI": sys.argv[1],
                  "REDIS_URL": None, "LOG_LEVEL": "WARNING"})
client = app.test_client()
while not Path(sys.argv[3]).exists():
    time.sleep(0.05)
statuses = [log_in(client, f"victim{number}@example.com", "guess", environ_base={"REMOTE_ADDR": "203.0.113.7"}
                   ).status_code for number in range(int(sys.argv[2]))]
print(" ".join(map(str, statuses)))
"""


def test_the_address_limit_holds_across_processes_without_redis(servers, tmp_path):
    """Two web processes, one after the other, each with its own memory: together they let through no
    more failed sign-ins from one address than LOGIN_LIMIT_PER_ADDRESS (30 per 5 minutes); with the
    counters in each process's memory they let through 30 each."""
    environment = {name: value for name, value in os.environ.items() if not name.startswith("LOYALTY_")}
    processes = [subprocess.Popen([sys.executable, "-c", SIGN_IN_PROCESS, servers["database_url"], "20",
                                   str(tmp_path / f"go-{number}")],
                                  cwd=PROJECT_ROOT, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True)
                 for number in (1, 2)]
    statuses = []
    try:
        for number, process in enumerate(processes, 1):
            (tmp_path / f"go-{number}").touch()
            output, errors = process.communicate(timeout=180)
            assert process.returncode == 0, errors
            statuses.append([int(status) for status in output.split()])
    finally:
        for process in processes:
            process.kill()
            process.wait()
    assert statuses == [[200] * 20, [200] * 10 + [429] * 10]
