"""A request holds at most one of the pool's connections at a time. One that asked for a second while
holding its first (the "last used" stamp of an API key, on a connection of its own) deadlocked the
pool as soon as as many such requests ran at once as it has connections: each held one and waited
for another until the pool's timeout."""

import threading
import time

import sqlalchemy as sa

from loyalty.auth.models import ApiClient
from loyalty.extensions import db
from tests.support.clock import DEFAULT_NOW

POOL_SIZE = 4
POOL_TIMEOUT = 5


def test_as_many_first_uses_of_keys_as_the_pool_has_connections_never_wait_for_a_second_one(make_app, factory):
    tills = [factory.api_client(name=f"till {number}") for number in range(POOL_SIZE)]
    member_no = factory.member()
    app = make_app(SQLALCHEMY_ENGINE_OPTIONS={"pool_size": POOL_SIZE, "max_overflow": 0,
                                              "pool_timeout": POOL_TIMEOUT})
    with app.app_context():
        engine = db.engine
    # Every request takes its first connection before any goes on: the moment of the deadlock, which
    # otherwise depends on how the threads happen to be scheduled.
    connected, everyone_connected, lock = [], threading.Event(), threading.Lock()

    def wait_for_the_others(*_):
        with lock:
            if everyone_connected.is_set():
                return
            connected.append(threading.get_ident())
            if len(connected) == POOL_SIZE:
                everyone_connected.set()
        everyone_connected.wait(timeout=2 * POOL_TIMEOUT)

    sa.event.listen(engine, "checkout", wait_for_the_others)
    answers: dict[int, tuple[int, float]] = {}

    def use(till):
        started = time.monotonic()
        response = app.test_client().get(f"/api/v1/members/{member_no}", headers=till.headers)
        answers[till.client_id] = (response.status_code, time.monotonic() - started)

    threads = [threading.Thread(target=use, args=(till,)) for till in tills]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=4 * POOL_TIMEOUT)
    finally:
        sa.event.remove(engine, "checkout", wait_for_the_others)

    assert sorted(status for status, _ in answers.values()) == [200] * POOL_SIZE
    assert max(seconds for _, seconds in answers.values()) < POOL_TIMEOUT
    with app.app_context():
        stamped = dict(db.session.execute(sa.select(ApiClient.id, ApiClient.last_used_at)).all())
    assert stamped == {till.client_id: DEFAULT_NOW for till in tills}
