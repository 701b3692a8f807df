"""Two machines on one PostgreSQL and one Redis (issue 12): what one web server changes, the other
honours; limits count once for both; periodic jobs run once per period although both workers run the
scheduler."""

import time

import pytest
import sqlalchemy as sa
from redis import Redis
from rq.cron import CronScheduler

from tests.outage.conftest import API_RATE_LIMIT_COUNT, HOT_CACHE_SECONDS
from tests.support.live import Browser, Till, submit, wait_until
from tests.support.live_worker import PERIODIC_RUNS, PROBE_SECONDS

pytestmark = [pytest.mark.live, pytest.mark.slow]


def test_a_key_revoked_through_one_server_is_refused_by_the_other_within_the_cache_time(live):
    key = live.accounts["keys"]["revoked-till"]
    member = f"/api/v1/members/{live.accounts['member_no']}"
    here, there = (Till(base, key) for base in live.web)
    # Both servers now hold the key in their hot cache.
    assert here.get(member).status_code == 200
    assert there.get(member).status_code == 200

    admin = Browser()
    signed_in = submit(admin, f"{here.base}/staff/login",
                       {"email": live.accounts["admin_email"], "password": live.accounts["password"]})
    assert signed_in.status_code == 302, signed_in.text
    revoke = f"{here.base}/admin/keys/{key[:10]}/revoke"
    revoked = submit(admin, revoke, {})
    assert revoked.status_code == 302 and revoked.headers["Location"].endswith("/admin/keys")
    revoked_at = time.monotonic()

    # The server that made the change forgets the key at once; the other within HOT_CACHE_SECONDS.
    assert here.get(member).status_code == 401
    # Polled at a pace that keeps within the key's rate limit (conftest.API_RATE_LIMIT_COUNT).
    while (status := there.get(member).status_code) == 200:
        assert time.monotonic() - revoked_at < HOT_CACHE_SECONDS + 1, "the other server still takes the key"
        time.sleep(0.25)
    assert status == 401


def test_the_api_rate_limit_counts_the_calls_to_both_servers_together(live):
    key = live.accounts["keys"]["limited-till"]
    member = f"/api/v1/members/{live.accounts['member_no']}"
    tills = [Till(base, key) for base in live.web]

    answers = [tills[call % 2].get(member) for call in range(API_RATE_LIMIT_COUNT + 2)]

    # Each server alone has seen only half the calls: the 429 comes from the one count they share.
    statuses = [answer.status_code for answer in answers]
    assert statuses == [200] * API_RATE_LIMIT_COUNT + [429, 429], statuses


def test_each_period_of_a_periodic_job_runs_once_although_both_workers_schedule_it(live):
    redis = Redis.from_url(live.redis.url)
    engine = sa.create_engine(live.database_url)
    try:
        # Both workers' schedulers run (each registers in Redis).
        wait_until(lambda: len(CronScheduler.all(redis)) == 2, 10, "two cron schedulers run", interval=0.5,
                   context=live.log_tails)
        with engine.connect() as connection:
            def runs():
                found = list(connection.scalars(sa.select(PERIODIC_RUNS.c.enqueued_at)
                                                .order_by(PERIODIC_RUNS.c.enqueued_at)))
                connection.rollback()
                return found if len(found) >= 5 else None

            enqueued = wait_until(runs, 30, "the probe job ran 5 times", interval=0.5, context=live.log_tails)
    finally:
        engine.dispose()
        redis.close()
    # Both schedulers see every period come: each enqueuing its own run would double the count.
    periods = (enqueued[-1] - enqueued[0]).total_seconds() / PROBE_SECONDS + 1
    assert len(enqueued) <= periods + 1, (len(enqueued), periods, enqueued)
