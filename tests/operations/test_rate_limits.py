"""Rate limits through a Redis outage (a real redis-server, stopped and started again on its port), and
the client address behind a trusted reverse proxy (TRUSTED_PROXY_HOPS)."""

import logging
import time

from tests.support.portal import log_in, new_portal_member, staff_log_in, submit, use_cheap_password_hashing
from tests.support.servers import free_port, redis_server

FALLING_BACK = "falling back to in-memory storage"
BACK = "rate-limit storage reachable again"


def messages(caplog, text: str) -> list[str]:
    return [record.getMessage() for record in caplog.records if text in record.getMessage()]


def timed(call):
    started = time.monotonic()
    response = call()
    return response, time.monotonic() - started


def test_a_redis_outage_leaves_the_service_up_and_the_limits_in_force(app, make_app, factory, monkeypatch, caplog):
    caplog.set_level(logging.INFO)
    use_cheap_password_hashing(monkeypatch)
    member = new_portal_member(app)
    factory.staff("cashier@example.com", "cashier")
    pos = factory.api_client()
    member_no = member.member_no
    port = free_port()
    with redis_server(port) as redis_url:
        outage = make_app(REDIS_URL=redis_url, API_RATE_LIMIT="12 per minute", READINESS_TIMEOUT_SECONDS=1)
        client = outage.test_client()

        def sale(external_id):
            return client.post("/api/v1/transactions", headers=pos.headers, json={
                "external_id": external_id, "member": member_no, "amount": 1000, "currency": "CNY",
                "occurred_at": "2026-11-22T10:00:00+08:00"})

        assert sale("before").status_code == 201
    # redis-server is stopped now.

    calls = {
        "sale": lambda: sale("during"),
        "member": lambda: client.get(f"/api/v1/members/{member_no}", headers=pos.headers),
        "validate": lambda: client.post("/api/v1/coupons/validate", headers=pos.headers,
                                        json={"code": "NOSUCHCODE", "amount": 100}),
        "portal sign-in": lambda: log_in(outage.test_client(), member.email),
        "staff sign-in": lambda: staff_log_in(outage.test_client(), "cashier@example.com"),
        "password reset": lambda: submit(outage.test_client(), "/portal/password/forgot", {"email": member.email}),
    }
    expected = {"sale": 201, "member": 200, "validate": 200, "portal sign-in": 302, "staff sign-in": 302,
                "password reset": 302}
    for name, call in calls.items():
        response, seconds = timed(call)
        assert response.status_code == expected[name], (name, response.get_data(as_text=True)[:500])
        assert seconds < 1.5, (name, seconds)
    assert len(messages(caplog, FALLING_BACK)) == 1

    status = outage.test_client().get("/readyz")
    assert status.status_code == 200
    body = status.get_json()
    assert body["status"] == "degraded"
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["redis"].startswith("unreachable: ")
    assert len(messages(caplog, "degraded: ")) == 1

    # The limits still hold, counted in this process (and the guessing limits in the database): three
    # API calls above, nine more reach the key's 12 per minute.
    statuses = [calls["member"]().status_code for _ in range(12)]
    assert statuses == [200] * 9 + [429] * 3
    for _ in range(5):
        assert log_in(outage.test_client(), member.email, "guess").status_code == 200
    assert log_in(outage.test_client(), member.email).status_code == 429

    with redis_server(port):
        # Flask-Limiter asks Redis again 1, 2, 4 ... 32 s after the last try, on a limited request.
        deadline = time.monotonic() + 70
        while not messages(caplog, BACK) and time.monotonic() < deadline:
            calls["member"]()
            time.sleep(0.25)
        assert len(messages(caplog, BACK)) == 1
        # Counting in Redis again (the restarted one is empty): the key's limit starts over.
        assert calls["member"]().status_code == 200
        status = outage.test_client().get("/readyz")
        assert (status.status_code, status.get_json()["status"]) == (200, "ok")
        assert len(messages(caplog, "no longer degraded")) == 1
    assert len(messages(caplog, FALLING_BACK)) == 1


def failed_sign_ins_until_refused(client_app, addresses: list[str]) -> list[int]:
    """Failed sign-ins through a proxy at 10.0.0.1, one per forwarded address in turn."""
    return [log_in(client_app.test_client(), "nobody@example.com", "guess",
                   environ_base={"REMOTE_ADDR": "10.0.0.1"}, headers={"X-Forwarded-For": address}).status_code
            for address in addresses]


def test_behind_a_trusted_proxy_each_client_has_its_own_address_limit(make_app, monkeypatch):
    use_cheap_password_hashing(monkeypatch)
    proxied = make_app(TRUSTED_PROXY_HOPS=1, LOGIN_LIMIT_PER_ADDRESS="2 per 5 minutes",
                       LOGIN_LIMIT_PER_ACCOUNT="100 per 5 minutes")
    assert failed_sign_ins_until_refused(proxied, ["203.0.113.1"] * 3) == [200, 200, 429]
    assert failed_sign_ins_until_refused(proxied, ["203.0.113.2"]) == [200]


def test_without_trusted_proxies_forwarded_addresses_are_ignored(make_app, monkeypatch):
    """The default: a client cannot choose its address with a header; every client behind the proxy
    shares the proxy's."""
    use_cheap_password_hashing(monkeypatch)
    direct = make_app(LOGIN_LIMIT_PER_ADDRESS="2 per 5 minutes", LOGIN_LIMIT_PER_ACCOUNT="100 per 5 minutes")
    assert failed_sign_ins_until_refused(direct, ["203.0.113.1", "203.0.113.2", "203.0.113.3"]) == [200, 200, 429]
