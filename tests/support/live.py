"""The service as it runs in production, for end-to-end tests: gunicorn web servers (gunicorn.conf.py)
and `loyalty worker` processes, configured only by LOYALTY_* environment variables, on a PostgreSQL
cluster and a redis-server of their own; driven over HTTP with `requests` as a browser or a till would.

Every process's standard error (the JSON log lines) goes to a file of its own, read back by the tests.
A process is started in a session of its own, so stopping it stops its children too (gunicorn's
workers, the worker's scheduler and work horses)."""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import requests

from loyalty import PROJECT_ROOT
from tests.support.servers import free_port

VENV_BIN = Path(sys.executable).parent
SECRET_KEY = "live-test-secret-key"
PUBLIC_BASE_URL = "https://loyalty.example.com"
CSRF_INPUT = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')
# Importing the application (scikit-learn included) takes ~10 s of CPU per process; several start
# at once on a 2-core machine.
START_TIMEOUT = 120
REQUEST_TIMEOUT = 30


def wait_until(condition: Callable[[], object], timeout: float, what: str, interval: float = 0.1,
               context: Callable[[], str] | None = None):
    """Poll `condition` until it returns something truthy (returned), else fail saying `what` and
    what `context` tells then (a log's tail, say)."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        assert time.monotonic() < deadline, f"not within {timeout} s: {what}\n{context() if context else ''}"
        time.sleep(interval)


def json_lines(path: Path) -> list[dict]:
    """The JSON objects among a log file's lines (gunicorn's own few lines are plain text)."""
    found = []
    for line in path.read_text(errors="replace").splitlines():
        if line.startswith("{"):
            try:
                found.append(json.loads(line))
            except ValueError:
                pass
    return found


class Process:
    """One started program, its standard error in `log`."""

    def __init__(self, name: str, command: list[str], env: dict, log: Path):
        self.name, self.log = name, log
        with open(log, "wb") as stream:
            self.popen = subprocess.Popen(command, env=env, cwd=PROJECT_ROOT, stdin=subprocess.DEVNULL,
                                          stdout=stream, stderr=subprocess.STDOUT, start_new_session=True)

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log_records(self) -> list[dict]:
        return json_lines(self.log)

    def terminate(self) -> None:
        """SIGTERM to the process's group: a graceful stop."""
        if self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGTERM)

    def stop(self) -> None:
        """Wait for the end of a graceful stop (`terminate`), SIGKILL to what is left after 20 s."""
        try:
            self.popen.wait(timeout=20)
        except subprocess.TimeoutExpired:
            pass
        try:
            os.killpg(self.popen.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.popen.wait(timeout=10)


class RedisServer:
    """A redis-server on a fixed port that a test can kill (SIGKILL: no goodbye to its clients) and
    start again on the same port, empty (no persistence), as after a crash and restart."""

    def __init__(self, folder: Path):
        self.port, self.folder = free_port(), folder
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen([shutil.which("redis-server"), "--port", str(self.port), "--bind", "127.0.0.1",
                                         "--save", "", "--appendonly", "no", "--dir", str(self.folder)],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(self.answers, 10, "redis-server answers", interval=0.05)

    def answers(self) -> bool:
        from redis import Redis
        from redis.exceptions import RedisError

        connection = Redis.from_url(self.url, socket_connect_timeout=0.5, socket_timeout=0.5)
        try:
            return bool(connection.ping())
        except RedisError:
            return False
        finally:
            connection.close()

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)


class Deployment:
    """Web servers and workers of one installation, on one database and one Redis."""

    def __init__(self, database_url: str, redis: RedisServer, folder: Path, **config):
        self.redis, self.folder = redis, folder
        self.env = {name: value for name, value in os.environ.items() if not name.startswith(("LOYALTY_", "FLASK_"))}
        self.env.update({
            "LOYALTY_ENVIRONMENT": "production",
            "LOYALTY_SECRET_KEY": SECRET_KEY,
            "LOYALTY_PUBLIC_BASE_URL": PUBLIC_BASE_URL,
            "LOYALTY_SQLALCHEMY_DATABASE_URI": database_url,
            "LOYALTY_REDIS_URL": redis.url,
            "LOYALTY_LOG_FORMAT": "json",
            # Threads of a web process below gunicorn.conf.py's 32: so many connections per process
            # are for throughput, which these tests do not measure.
            "LOYALTY_DB_POOL_SIZE": "8",
            **{f"LOYALTY_{key}": str(value) for key, value in config.items()},
        })
        self.env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        # Bytecode cached for the run (outside the venv): each process imports the whole application.
        self.env.pop("PYTHONDONTWRITEBYTECODE", None)
        self.env["PYTHONPYCACHEPREFIX"] = str(folder / "pycache")
        self.processes: list[Process] = []
        self.web: list[str] = []

    def start_web(self, name: str) -> str:
        """gunicorn with the repository's gunicorn.conf.py (read from the working directory), one
        worker of 8 threads; returns its base URL once the process has been started (see `wait_ready`)."""
        port = free_port()
        # A control socket of its own: by default every gunicorn of the machine binds one same path.
        command = [str(VENV_BIN / "gunicorn"), "-b", f"127.0.0.1:{port}", "-w", "1", "--threads", "8",
                   "--timeout", "120", "--control-socket", str(self.folder / f"{name}.ctl"), "loyalty:create_app()"]
        self.processes.append(Process(name, command, self.env, self.folder / f"{name}.log"))
        base = f"http://127.0.0.1:{port}"
        self.web.append(base)
        return base

    def start_worker(self, name: str) -> Process:
        """`loyalty worker`: an RQ worker of every queue with the periodic-job scheduler beside it, on a
        schedule of seconds (tests/support/live_worker.py)."""
        process = Process(name, [sys.executable, "-c", "from tests.support.live_worker import main; main()"],
                          self.env, self.folder / f"{name}.log")
        self.processes.append(process)
        return process

    def run_python(self, code: str) -> str:
        """Run `code` in a fresh interpreter with the deployment's environment; its standard output."""
        done = subprocess.run([sys.executable, "-c", code], env=self.env, cwd=PROJECT_ROOT, capture_output=True,
                              text=True, timeout=START_TIMEOUT)
        assert done.returncode == 0, f"{code}\n{done.stdout}\n{done.stderr}"
        return done.stdout

    def wait_ready(self) -> None:
        """Every web server answers /healthz and every process still runs."""
        for base in self.web:
            wait_until(lambda base=base: self._healthy(base), START_TIMEOUT, f"{base}/healthz answers", interval=0.5)

    def wait_workers(self, count: int) -> None:
        """`count` RQ workers have registered in Redis (each has imported the app and listens)."""
        from redis import Redis
        from rq import Worker

        connection = Redis.from_url(self.redis.url)
        try:
            wait_until(lambda: self._running() and Worker.count(connection=connection) >= count, START_TIMEOUT,
                       f"{count} workers listen", interval=0.5)
        finally:
            connection.close()

    def _running(self) -> bool:
        for process in self.processes:
            assert process.alive(), f"{process.name} exited:\n{process.log.read_text()[-4000:]}"
        return True

    def _healthy(self, base: str) -> bool:
        self._running()
        try:
            return requests.get(f"{base}/healthz", timeout=5).status_code == 200
        except requests.ConnectionError:
            return False

    def log_tails(self, lines: int = 15) -> str:
        """The last lines of every process's log but the access lines: what a failing test shows."""
        tails = []
        for process in self.processes:
            kept = [line for line in process.log.read_text(errors="replace").splitlines()
                    if '"logger": "loyalty.access"' not in line]
            tails.append(f"--- {process.name}\n" + "\n".join(kept[-lines:]))
        return "\n".join(tails)

    def process(self, name: str) -> Process:
        return next(process for process in self.processes if process.name == name)

    def stop(self) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            process.stop()


# --- clients -------------------------------------------------------------------------------------

class Browser(requests.Session):
    """Keeps and sends cookies as a browser does on http://localhost, which counts as a secure origin:
    the `Secure` cookies of a production configuration come back over these servers' plain HTTP
    (requests' cookie jar would keep them for https only)."""

    def request(self, *args, **kwargs) -> requests.Response:
        response = super().request(*args, **kwargs)
        for cookie in self.cookies:
            cookie.secure = False
        return response


def csrf_token(session: Browser, url: str) -> str:
    page = session.get(url, timeout=REQUEST_TIMEOUT)
    assert page.status_code == 200, (url, page.status_code, page.text[:500])
    found = CSRF_INPUT.search(page.text)
    assert found, f"no csrf_token on {url}"
    return found.group(1)


def submit(session: Browser, url: str, data: dict, *, form_page: str | None = None) -> requests.Response:
    """POST a form as a browser does: the CSRF token of the form's page, redirects not followed."""
    token = csrf_token(session, form_page or url)
    return session.post(url, data={"csrf_token": token, **data}, allow_redirects=False, timeout=REQUEST_TIMEOUT)


class Till:
    """A POS system calling /api/v1 with its key."""

    def __init__(self, base: str, key: str):
        self.base = base
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"Bearer {key}"

    def get(self, path: str) -> requests.Response:
        return self.http.get(self.base + path, timeout=REQUEST_TIMEOUT)

    def post(self, path: str, body: dict) -> requests.Response:
        return self.http.post(self.base + path, json=body, timeout=REQUEST_TIMEOUT)
