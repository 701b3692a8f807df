"""Fixtures for the job tests: a redis-server of the test's own, which it can stop and start again on
the same port, and `loyalty worker` processes run against it and the test database."""

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.campaigns.conftest import campaigns, manage  # noqa: F401  (coupon batches to run)
from tests.support.servers import free_port

LOYALTY = str(Path(sys.executable).with_name("loyalty"))


class RestartableRedis:
    def __init__(self):
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process = None

    def start(self):
        self.process = subprocess.Popen(
            [shutil.which("redis-server"), "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def stop(self):
        """Killed, as a crashed or unreachable Redis: whatever it held is gone."""
        self.process.kill()
        self.process.wait(timeout=10)
        self.process = None


@pytest.fixture
def own_redis(app, monkeypatch):
    """A private Redis the app's jobs use for this test (whatever --redis says)."""
    redis = RestartableRedis()
    redis.start()
    monkeypatch.setitem(app.config, "REDIS_URL", redis.url)
    try:
        yield redis
    finally:
        if redis.process is not None:
            redis.stop()


class Workers:
    """`loyalty worker` processes, each in a process group of its own (worker, work horse, schedulers)."""

    def __init__(self, app, redis):
        self.app, self.redis, self.processes = app, redis, []

    def environment(self, **config) -> dict:
        settings = {"SQLALCHEMY_DATABASE_URI": self.app.config["SQLALCHEMY_DATABASE_URI"],
                    "REDIS_URL": self.redis.url, "LOG_LEVEL": "WARNING", **config}
        return {**os.environ, **{f"LOYALTY_{key}": str(value) for key, value in settings.items()}}

    def start(self, *args: str, **config) -> subprocess.Popen:
        process = subprocess.Popen([LOYALTY, "worker", *args], env=self.environment(**config),
                                   start_new_session=True)
        self.processes.append(process)
        return process

    def run(self, *args: str, timeout: float = 60, **config) -> None:
        """A burst worker, to the end."""
        subprocess.run([LOYALTY, "worker", "--burst", *args], env=self.environment(**config), check=True,
                       timeout=timeout)

    def kill(self, process: subprocess.Popen) -> None:
        """SIGKILL to the worker and everything it started, as when its machine goes down. RQ puts each
        work horse in a process group of its own, so the horses are killed one by one."""
        if process.poll() is None:
            for child in children(process.pid):
                os.kill(child, signal.SIGKILL)
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)

    def stop_all(self):
        for process in self.processes:
            self.kill(process)


@pytest.fixture
def workers(app, own_redis):
    workers = Workers(app, own_redis)
    try:
        yield workers
    finally:
        workers.stop_all()


def children(pid: int) -> list[int]:
    return [int(child) for task in Path(f"/proc/{pid}/task").iterdir()
            for child in (task / "children").read_text().split()]


def started_at(pid: int) -> int:
    """Clock ticks after boot at which the process started (field 22 of /proc/PID/stat)."""
    return int(Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[19])
