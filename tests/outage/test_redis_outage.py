"""Redis dies under the running service (issue 12): sales, refunds, lookups, sign-ins and the portal
keep working on PostgreSQL alone; limits count in each process instead (the log and /readyz say so,
the probe still 200); the jobs asked for meanwhile (a password-reset email, a coupon batch started in
the marketing console) run once Redis is back, once, although two workers and their sweepers run.

Runs after test_multi_node.py (file order), which needs Redis; Redis is up again when this ends."""

import re
import time
from datetime import UTC, datetime

import pytest
import requests
import sqlalchemy as sa

from tests.outage.conftest import API_RATE_LIMIT_COUNT
from tests.support.live import REQUEST_TIMEOUT, Browser, Till, submit, wait_until
from tests.support.live_worker import SWEEP_SECONDS

pytestmark = [pytest.mark.live, pytest.mark.slow]

RESET_LINK = re.compile(r"https://loyalty\.example\.com(/portal/password/reset/\S+)")
# The sweeper runs every SWEEP_SECONDS here (every minute in production); an RQ worker that lost Redis
# tries it again after 1, 2, 4, 8 ... s.
CATCH_UP_SECONDS = 60


def readiness(base: str) -> requests.Response:
    return requests.get(f"{base}/readyz", timeout=REQUEST_TIMEOUT)


def test_without_redis_the_service_works_and_the_jobs_asked_for_meanwhile_run_once_it_is_back(live):
    base = live.web[0]
    accounts = live.accounts
    member_no, email, password = accounts["member_no"], accounts["member_email"], accounts["password"]
    till, crm = Till(base, accounts["keys"]["till"]), Till(base, accounts["keys"]["crm"])
    offer = crm.post("/api/v1/offers", {"name": "Ten off", "kind": "amount_off", "value": 1000})
    assert offer.status_code == 201, offer.text
    generic = crm.post(f"/api/v1/offers/{offer.json()['id']}/coupons", {"code": "OUTAGE10", "limit": 100})
    assert generic.status_code == 201, generic.text
    before = readiness(base)
    assert (before.status_code, before.json()["status"]) == (200, "ok"), before.text

    live.redis.kill()

    answers = {
        "sale": till.post("/api/v1/transactions", {
            "external_id": "S001-outage-1", "member": member_no, "occurred_at": datetime.now(UTC).isoformat(),
            "currency": "CNY", "amount": 12850}),
        "refund": till.post("/api/v1/transactions/S001-outage-1/refunds",
                            {"external_id": "S001-outage-1-R1", "amount": 2850}),
        "member": till.get(f"/api/v1/members/{member_no}"),
        "coupon": till.post("/api/v1/coupons/validate", {"code": "OUTAGE10", "member": member_no, "amount": 5000}),
    }
    staff = Browser()
    answers["staff sign-in"] = submit(staff, f"{base}/staff/login",
                                      {"email": accounts["admin_email"], "password": password})
    answers["staff page"] = staff.get(f"{base}/admin/keys", timeout=REQUEST_TIMEOUT)
    offer_page = f"{base}/marketing/offers/{offer.json()['id']}"
    answers["coupon batch"] = submit(staff, f"{offer_page}/batches", {"target": "codes", "count": "50"},
                                     form_page=offer_page)
    member = Browser()
    answers["portal sign-in"] = submit(member, f"{base}/portal/login", {"email": email, "password": password})
    answers["portal page"] = member.get(f"{base}/portal/history", timeout=REQUEST_TIMEOUT)
    answers["password reset"] = submit(Browser(), f"{base}/portal/password/forgot", {"email": email})
    answers["readiness"] = readiness(base)

    statuses = {name: answer.status_code for name, answer in answers.items()}
    bodies = {name: answer.text[:300] for name, answer in answers.items()}
    assert statuses == {"sale": 201, "refund": 201, "member": 200, "coupon": 200, "staff sign-in": 302,
                        "staff page": 200, "coupon batch": 302, "portal sign-in": 302, "portal page": 200,
                        "password reset": 302, "readiness": 200}, bodies
    sale, refund = answers["sale"].json(), answers["refund"].json()
    assert sale["points_earned"] == 128 and refund["points_reversed"] > 0
    assert answers["member"].json()["points"]["balance"] == 128 - refund["points_reversed"]
    assert answers["coupon"].json() == {"code": "OUTAGE10", "valid": True, "reason": None, "discount": 1000}
    assert "S001-outage-1" in answers["portal page"].text
    assert answers["password reset"].headers["Location"] == "/portal/login"
    ready = answers["readiness"].json()
    assert ready["status"] == "degraded" and ready["checks"]["database"] == "ok", ready
    assert ready["checks"]["redis"].startswith("unreachable"), ready
    # Limits count in each process meanwhile: a key spent on one server starts afresh on the other.
    spent, fresh = (Till(server, accounts["keys"]["outage-till"]) for server in live.web)
    lookups = [spent.get(f"/api/v1/members/{member_no}").status_code for _ in range(API_RATE_LIMIT_COUNT + 1)]
    assert lookups == [200] * API_RATE_LIMIT_COUNT + [429]
    assert fresh.get(f"/api/v1/members/{member_no}").status_code == 200
    fell_back = [record for record in live.process("web-a").log_records()
                 if "falling back to in-memory" in record["message"]]
    assert fell_back and fell_back[0]["level"] == "WARNING", live.process("web-a").log.read_text()[-3000:]
    # Stored, as the other server (which never saw these requests) reads it.
    stored = Till(live.web[1], accounts["keys"]["till"]).get("/api/v1/transactions/S001-outage-1")
    assert (stored.status_code, stored.json()["refunded_amount"]) == (200, 2850), stored.text

    live.redis.start()

    def reset_mails():
        return [message for message in live.inbox.messages if message["To"] == email]

    [mail] = wait_until(reset_mails, CATCH_UP_SECONDS, "the password-reset email asked for without Redis is sent",
                        interval=0.5, context=live.log_tails)
    assert mail["Subject"] == "Set a new password"
    link = RESET_LINK.search(mail.get_content()).group(1)
    assert requests.get(base + link, timeout=REQUEST_TIMEOUT).status_code == 200
    wait_until(lambda: readiness(base).json()["status"] == "ok", CATCH_UP_SECONDS, "/readyz says ok again",
               interval=0.5, context=live.log_tails)
    progress = f"{base}{answers['coupon batch'].headers['Location']}/progress.json"

    def batch_done():
        found = staff.get(progress, timeout=REQUEST_TIMEOUT).json()
        return found if found["status"] == "done" else None

    done = wait_until(batch_done, CATCH_UP_SECONDS, "the coupon batch started without Redis is issued",
                      interval=0.5, context=live.log_tails)
    assert (done["issued"], done["requested"]) == (50, 50)
    # Sent once, although both workers' sweepers look for deferred jobs every few seconds.
    time.sleep(2 * SWEEP_SECONDS)
    assert len(reset_mails()) == 1
    engine = sa.create_engine(live.database_url)
    try:
        with engine.connect() as connection:
            assert connection.scalar(sa.text("SELECT count(*) FROM deferred_jobs")) == 0
    finally:
        engine.dispose()
