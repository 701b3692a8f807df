"""A retried sale whose first attempt is still in flight in another transaction (issue 12, finding 12;
docs/architecture.md invariant 5): the retry gets the first answer replayed, and the other sales of its group
commit post as if it were not there. On PostgreSQL only: SQLite lets one transaction write at a time
(loyalty/db.py), so first attempts cannot be held open side by side there, and twins never overlap.

The first attempts are posted by another "process" (a batch request, which does not go through this
process's group commit) and held open just before their commit; the retries and two new sales then
arrive together and are posted as one group, which must wait for those transactions. The test lets
each first attempt commit only once the group is seen waiting for it, one after another, so the
group meets a newly committed twin on every try.
"""

import threading
import time
from collections import Counter

import pytest
import sqlalchemy as sa

from loyalty.extensions import db
from loyalty.points.services import verify_ledger
from loyalty.pos_api.sale_posting import EXTENSION
from loyalty.sales.models import Transaction

pytestmark = pytest.mark.postgres_only

OCCURRED_AT = "2026-11-22T10:00:00+08:00"
UNKNOWN_MEMBER = "1000000000"  # fails the check digit: no member ever has it


def sale_body(external_id: str, amount: int, member_no: str | None = None) -> dict:
    body = {"external_id": external_id, "occurred_at": OCCURRED_AT, "currency": "CNY", "amount": amount,
            "lines": [{"sku": "A1", "category": "shoes", "quantity": 1, "unit_price": amount, "amount": amount}]}
    if member_no:
        body["member"] = member_no
    return body


class CommitGate:
    """Holds the first commit of each named thread until `release(name)`, and says which backend
    each held thread's transaction runs on: what a second web process does mid-request."""

    def __init__(self, engine, names):
        self.engine = engine
        self.gates = {name: threading.Event() for name in names}
        self.backends: dict[int, str] = {}
        self.holding = threading.Semaphore(0)
        self.done: set[str] = set()

    def __enter__(self):
        sa.event.listen(self.engine, "commit", self._commit)
        return self

    def __exit__(self, *exc):
        for gate in self.gates.values():
            gate.set()
        sa.event.remove(self.engine, "commit", self._commit)

    def _commit(self, connection):
        name = threading.current_thread().name
        if name not in self.gates or name in self.done:
            return
        self.done.add(name)
        self.backends[connection.connection.dbapi_connection.info.backend_pid] = name
        self.holding.release()
        assert self.gates[name].wait(timeout=60)

    def release(self, name):
        self.gates[name].set()


def run(name: str, answers: dict, send) -> threading.Thread:
    def work():
        try:
            answers[name] = send()
        except BaseException as error:  # reported by the test
            answers[name] = error
    thread = threading.Thread(target=work, name=name)
    thread.start()
    return thread


def blockers(connection) -> set[int]:
    """Backends some other backend of this database is waiting for (a row or key lock)."""
    found = set(connection.exec_driver_sql(
        "SELECT unnest(pg_blocking_pids(pid)) FROM pg_stat_activity WHERE datname = current_database()"
    ).scalars())
    connection.rollback()  # pg_stat_activity is read once per transaction
    return found


def wait_until_queued(app, count: int) -> None:
    group = app.extensions[EXTENSION]
    for _ in range(2000):
        with group._lock:
            if len(group._queue) >= count:
                return
        time.sleep(0.005)
    raise AssertionError(f"{count} sales never queued")


def test_retries_in_flight_in_other_transactions_replay_and_spare_their_group(app, factory, pos):
    """Five retries, each meeting its first attempt in flight, in one group with two new sales: every
    retry answers as its first attempt did, the others post once, nothing fails (see module doc)."""
    member_no, other_member_no = factory.member(), factory.member("Li Lei")
    firsts = {  # first attempts, each posted and held open by "another process"
        "TWIN-A": sale_body("TWIN-A", 1_000),
        "TWIN-B": sale_body("TWIN-B", 2_000),
        "TWIN-C": sale_body("TWIN-C", 3_000),
        "TWIN-D": sale_body("TWIN-D", 4_000, member_no),
        "TWIN-E": sale_body("TWIN-E", 5_000, UNKNOWN_MEMBER),  # refused: its retry is refused alike
    }
    news = {"NEW-1": sale_body("NEW-1", 6_000, other_member_no), "NEW-2": sale_body("NEW-2", 7_000)}
    leader = sale_body("LEADER", 8_000)
    http = app.test_client()
    # The key's first use is recorded in a short commit of its own: done here, not in a held thread.
    assert http.get("/api/v1/members/1000000000", headers=pos.headers).status_code == 404
    with app.app_context():
        engine = db.engine
    answers: dict = {}
    threads = []
    with CommitGate(engine, [*firsts, "LEADER"]) as gate, engine.connect() as watcher:
        for external_id, body in firsts.items():
            threads.append(run(external_id, answers, lambda body=body: app.test_client().post(
                "/api/v1/transactions/batch", json={"sales": [body]}, headers=pos.headers)))
        for _ in firsts:
            assert gate.holding.acquire(timeout=30), "a first attempt never reached its commit"
        # This process's group commit: a lone sale leads (and is held), the retries and new sales
        # queue behind it and are then posted together as one group, in one transaction.
        threads.append(run("LEADER", answers, lambda: app.test_client().post(
            "/api/v1/transactions", json=leader, headers=pos.headers)))
        assert gate.holding.acquire(timeout=30)
        for external_id, body in [*firsts.items(), *news.items()]:
            threads.append(run("retry " + external_id if external_id in firsts else external_id, answers,
                               lambda body=body: app.test_client().post("/api/v1/transactions", json=body,
                                                                         headers=pos.headers)))
        wait_until_queued(app, len(firsts) + len(news))
        gate.release("LEADER")
        # Each first attempt commits only once the group waits for it.
        held, released_once_waited_for = set(firsts), set()
        deadline = time.monotonic() + 60
        while held and time.monotonic() < deadline:
            waited_for = {gate.backends.get(pid) for pid in blockers(watcher)} & held
            for name in waited_for:
                gate.release(name)
                held.discard(name)
                released_once_waited_for.add(name)
            if not waited_for and all(not thread.is_alive() for thread in threads
                                      if thread.name.startswith(("retry", "NEW"))):
                break  # the group finished without waiting for the rest
            time.sleep(0.01)
        for name in held:
            gate.release(name)
        for thread in threads:
            thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads), "a request hung"
    failures = {name: answer for name, answer in answers.items() if isinstance(answer, BaseException)}
    assert not failures, sorted(f"{name}: {type(error).__name__}" for name, error in failures.items())

    statuses = {name: answer.status_code for name, answer in answers.items()}
    assert 500 not in statuses.values(), {name: answers[name].get_json() for name, s in statuses.items() if s == 500}
    first_items = {name: answers[name].get_json()["results"][0] for name in firsts}
    for external_id in firsts:
        first, retry = first_items[external_id], answers["retry " + external_id]
        if external_id == "TWIN-E":
            assert first["status"] == retry.status_code == 422, (first, retry.get_json())
            assert retry.get_json()["type"].endswith("/unknown-member")
            continue
        assert first["status"] == 201 and not first["replayed"], first
        assert retry.status_code == 201, (external_id, retry.get_json())
        assert retry.headers.get("Idempotent-Replayed") == "true", external_id
        assert retry.get_json() == first["transaction"], external_id
    for external_id in [*news, "LEADER"]:
        answer = answers[external_id]
        assert answer.status_code == 201, (external_id, answer.get_json())
        assert answer.headers.get("Idempotent-Replayed") is None
        assert answer.get_json()["external_id"] == external_id
    with app.app_context():
        posted = Counter(db.session.scalars(sa.select(Transaction.external_id)))
        report = verify_ledger(db.session)
        db.session.remove()
    assert posted == Counter([*firsts, *news, "LEADER"]) - Counter(["TWIN-E"]), posted
    assert report.ok, report.problems
    assert pos.get(f"/members/{member_no}").get_json()["points"]["balance"] == 40
    assert pos.get(f"/members/{other_member_no}").get_json()["points"]["balance"] == 60
    # The test did what it says: the group waited for every first attempt, the refused one too (its
    # key stays taken until its transaction ends).
    assert released_once_waited_for == set(firsts)
