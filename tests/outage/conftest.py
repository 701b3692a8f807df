"""One installation run as in production, shared by this package's tests: two web servers (gunicorn,
gunicorn.conf.py) and two `loyalty worker` processes, as if on two machines, on one PostgreSQL cluster
and one redis-server of their own, sending mail to an SMTP server (aiosmtpd) in the test process.

The modules run in file order: test_multi_node.py needs Redis up; test_redis_outage.py kills it and
brings it back last."""

import json
import shutil
import tempfile
from contextlib import ExitStack
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller

from tests.support.live import Deployment, RedisServer
from tests.support.portal import Inbox
from tests.support.servers import free_port, postgres_cluster

# Small, so that a revocation reaches the other server within the test's patience (loyalty/cache.py).
HOT_CACHE_SECONDS = 2
# Per API key, counted in Redis and so shared by both servers; in an hour's window, so that the
# window does not end during a test.
API_RATE_LIMIT_COUNT = 20


@pytest.fixture(autouse=True)
def _fresh_state():
    """Overrides the suite's reset between tests: these tests have servers and a database of their own
    and never touch the session's."""
    yield


@pytest.fixture(scope="package")
def live():
    """The running installation: `live.web` (two base URLs), `live.redis`, `live.accounts` (keys and
    sign-ins made by tests/support/live_setup.py), `live.inbox` (the mail the workers sent)."""
    with ExitStack() as stack:
        folder = Path(tempfile.mkdtemp(prefix="loyalty-live-"))
        stack.callback(shutil.rmtree, folder, ignore_errors=True)
        inbox = Inbox()
        smtp = Controller(inbox, hostname="127.0.0.1", port=free_port())
        smtp.start()
        stack.callback(smtp.stop)
        cluster = stack.enter_context(postgres_cluster(prefix="loyalty-live-pg-"))
        redis = RedisServer(folder)
        redis.start()
        stack.callback(redis.stop)
        deployment = Deployment(cluster["url"], redis, folder, HOT_CACHE_SECONDS=HOT_CACHE_SECONDS,
                                API_RATE_LIMIT=f"{API_RATE_LIMIT_COUNT} per hour",
                                SMTP_HOST="127.0.0.1", SMTP_PORT=smtp.port)
        stack.callback(deployment.stop)
        # The web servers import the application while the setup migrates the database (they touch it
        # only when asked); the workers start after it, since a starting worker sweeps a table at once.
        for name in ("web-a", "web-b"):
            deployment.start_web(name)
        deployment.accounts = json.loads(deployment.run_python(
            "from tests.support.live_setup import main; main()").splitlines()[-1])
        for name in ("worker-a", "worker-b"):
            deployment.start_worker(name)
        deployment.database_url, deployment.inbox = cluster["url"], inbox
        deployment.wait_ready()
        deployment.wait_workers(2)
        yield deployment
