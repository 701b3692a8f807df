"""/metrics (docs/api.md "Operations endpoints"): Prometheus text that prometheus-client's parser reads,
counting what the POS API committed, the requests by endpoint, and, across worker processes, the sum
of all of them."""

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest
from rq import Queue

from loyalty import PROJECT_ROOT
from tests.operations.conftest import scrape, total
from tests.support.servers import free_port

SOLD = "loyalty_sales_posted_total"


def sale_body(external_id: str, member_no: str | None, amount: int, **fields) -> dict:
    body = {"external_id": external_id, "occurred_at": "2026-11-22T10:00:00+08:00", "currency": "CNY",
            "amount": amount, **fields}
    if member_no:
        body["member"] = member_no
    return body


def test_metrics_count_the_sales_refunds_and_points_the_pos_api_posted(client, pos, factory):
    member_no = factory.member()
    before = scrape(client)

    first = pos.post("/transactions", json=sale_body("M-1", member_no, 30000))
    second = pos.post("/transactions", json=sale_body("M-2", member_no, 5000, points_redeemed=100))
    replayed = pos.post("/transactions", json=sale_body("M-1", member_no, 30000))
    refused = pos.post("/transactions", json=sale_body("M-3", member_no, 100, points_redeemed=10**6))
    batch = pos.post("/transactions/batch", json={"sales": [
        sale_body("M-4", member_no, 2000), sale_body("M-5", None, 700), sale_body("M-1", member_no, 30000),
        {"external_id": "M-6"}]})
    refund = pos.post("/transactions/M-1/refunds", json={"external_id": "R-1", "amount": 15000})
    refund_again = pos.post("/transactions/M-1/refunds", json={"external_id": "R-1", "amount": 15000})

    assert [first.status_code, second.status_code, replayed.status_code, refused.status_code] == [201, 201, 201, 422]
    assert replayed.headers["Idempotent-Replayed"] == "true"
    items = batch.get_json()["results"]
    assert [(item["status"], item["replayed"]) for item in items] == [(201, False), (201, False), (201, True),
                                                                      (422, False)]
    assert refund.status_code == 201 and refund_again.headers["Idempotent-Replayed"] == "true"
    posted = [first.get_json(), second.get_json(), items[0]["transaction"], items[1]["transaction"]]
    after = scrape(client)

    def grew(name: str, **labels) -> float:
        return total(after, name, **labels) - total(before, name, **labels)

    assert grew(SOLD) == 4  # replays and refusals are not sales
    assert grew("loyalty_points_issued_total") == sum(sale["points_earned"] for sale in posted) > 0
    assert grew("loyalty_points_redeemed_total") == 100
    assert grew("loyalty_refunds_posted_total") == 1
    assert grew("loyalty_points_reversed_total") == refund.get_json()["points_reversed"] > 0
    assert grew("loyalty_points_restored_total") == refund.get_json()["points_restored"]
    assert grew("loyalty_http_requests_total", endpoint="api_transactions.post_sale", method="POST",
                status="201") == 3
    assert grew("loyalty_http_requests_total", endpoint="api_transactions.post_sale", status="422") == 1
    assert grew("loyalty_http_request_duration_seconds_count", endpoint="api_transactions.post_batch") == 1


def test_requests_are_labelled_by_endpoint_not_by_path(client, pos, factory):
    member_no = factory.member()
    assert pos.get(f"/members/{member_no}").status_code == 200
    assert client.get("/no/such/page/4711").status_code == 404
    samples = scrape(client)
    assert total(samples, "loyalty_http_requests_total", endpoint="api_members.get_member", status="200") >= 1
    assert total(samples, "loyalty_http_requests_total", endpoint="unmatched", status="404") >= 1
    label_values = {value for sample in samples for value in sample.labels.values()}
    assert not any(member_no in value or "4711" in value for value in label_values)


def test_metrics_need_the_bearer_token_when_one_is_configured(app, client, monkeypatch):
    monkeypatch.setitem(app.config, "METRICS_TOKEN", "metrics-token-of-the-test")
    assert client.get("/metrics").status_code == 401
    wrong = client.get("/metrics", headers={"Authorization": "Bearer metrics-token-of-the-tes"})
    assert wrong.status_code == 401
    assert wrong.headers["WWW-Authenticate"].startswith("Bearer")
    assert "Set-Cookie" not in wrong.headers
    samples = scrape(client, {"Authorization": "Bearer metrics-token-of-the-test"})
    assert total(samples, "loyalty_http_requests_total", endpoint="operations.metrics", status="401") >= 2


def test_job_queues_are_exported_only_with_redis(app, client, servers):
    if servers["redis_url"]:
        from loyalty.jobs import redis_connection

        Queue("maintenance", connection=redis_connection(app)).enqueue("loyalty.points.tasks.release_holds")
    samples = scrape(client)
    if not servers["redis_url"]:
        assert not [sample for sample in samples if sample.name.startswith("loyalty_jobs_")]
        return
    assert total(samples, "loyalty_jobs_queued", queue="maintenance") == 1
    assert total(samples, "loyalty_jobs_queued", queue="default") == 0
    assert total(samples, "loyalty_jobs_failed", queue="scoring") == 0


# --- several processes -----------------------------------------------------------------------------

COUNT_HEALTHZ = """
import sys
from tests.operations.ops_only_app import create_app
client = create_app().test_client()
for _ in range(int(sys.argv[1])):
    assert client.get("/healthz").status_code == 200
if len(sys.argv) > 2:
    sys.stdout.write(client.get("/metrics").get_data(as_text=True))
"""


def process_env(metrics_dir) -> dict:
    return {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}


def healthz_count(text: str) -> float:
    from prometheus_client.parser import text_string_to_metric_families

    samples = [sample for family in text_string_to_metric_families(text) for sample in family.samples]
    return total(samples, "loyalty_http_requests_total", endpoint="operations.healthz")


def test_a_scrape_adds_up_every_process_in_multiprocess_mode(tmp_path):
    """Two processes one after the other, sharing PROMETHEUS_MULTIPROC_DIR: the second one's scrape
    counts the first one's requests too (without multiprocess mode it would see its own 2 only)."""
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    env = process_env(metrics_dir)
    subprocess.run([sys.executable, "-c", COUNT_HEALTHZ, "3"], env=env, cwd=PROJECT_ROOT, check=True)
    second = subprocess.run([sys.executable, "-c", COUNT_HEALTHZ, "2", "scrape"], env=env, cwd=PROJECT_ROOT,
                            check=True, capture_output=True, text=True)
    assert healthz_count(second.stdout) == 5


@pytest.mark.slow
def test_gunicorn_workers_report_one_sum(tmp_path):
    """gunicorn with the repository's gunicorn.conf.py and two workers (of the operations parts only,
    see ops_only_app): a scrape, whichever worker answers it, counts every worker's requests, and none
    of a previous run's (left in the directory)."""
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    env = process_env(metrics_dir)
    subprocess.run([sys.executable, "-c", COUNT_HEALTHZ, "7"], env=env, cwd=PROJECT_ROOT, check=True)
    assert list(metrics_dir.glob("*.db"))  # the previous run's files
    port, log = free_port(), tmp_path / "gunicorn.log"
    with log.open("w") as log_file:
        server = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", str(PROJECT_ROOT / "gunicorn.conf.py"), "-w", "2",
             "--threads", "2", "-b", f"127.0.0.1:{port}", "tests.operations.ops_only_app:create_app()"],
            env=env, cwd=PROJECT_ROOT, stdout=subprocess.DEVNULL, stderr=log_file)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:  # until the master listens; then this request waits for a worker (it is counted)
            try:
                urllib.request.urlopen(base + "/healthz", timeout=120).close()
                break
            except urllib.error.URLError as error:
                refused = isinstance(error.reason, ConnectionRefusedError)
                assert refused and time.monotonic() < deadline and server.poll() is None, log.read_text()
                time.sleep(0.2)
        for _ in range(11):  # a new connection each: the workers share them out
            with urllib.request.urlopen(base + "/healthz", timeout=5) as response:
                assert json.load(response) == {"status": "ok"}
        for _ in range(3):
            with urllib.request.urlopen(base + "/metrics", timeout=5) as response:
                assert healthz_count(response.read().decode()) == 12
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
