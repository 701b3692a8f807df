"""Throwaway PostgreSQL and Redis servers for the test run, started from the machine's own binaries.

PostgreSQL refuses to run as root, so when the tests run as root the cluster is owned by and started
as the `postgres` system user.
"""

import os
import shutil
import socket
import subprocess
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

PG_BIN_CANDIDATES = ("/usr/lib/postgresql/15/bin", "/usr/lib/postgresql/16/bin", "/usr/local/bin", "/usr/bin")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _pg_bin(name: str) -> str:
    for folder in PG_BIN_CANDIDATES:
        path = Path(folder) / name
        if path.exists():
            return str(path)
    raise RuntimeError(f"PostgreSQL server program {name} not found")


def _as_owner(command: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


@contextmanager
def postgres_cluster(*, durable: bool = False, prefix: str = "loyalty-pg-"):
    """Yield {"port", "pid", "url"} of a fresh, empty PostgreSQL cluster; remove it afterwards.
    Not durable by default (fsync, synchronous_commit and full_page_writes off): tests and benchmarks
    need speed, not crash safety."""
    root = Path(tempfile.mkdtemp(prefix=prefix))
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
    data, port = root / "data", free_port()
    subprocess.run(_as_owner([_pg_bin("initdb"), "-D", str(data), "-A", "trust", "-U", "postgres",
                              "--no-sync", "-E", "UTF8"]), check=True, capture_output=True)
    options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c max_connections=200"
    if not durable:
        options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    try:
        subprocess.run(_as_owner([_pg_bin("pg_ctl"), "-D", str(data), "-o", options, "-w", "-l",
                                  str(root / "log"), "start"]), check=True, capture_output=True)
        postmaster = int((data / "postmaster.pid").read_text().split()[0])
        yield {"port": port, "pid": postmaster,
               "url": f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres",
               "data": str(data), "options": options, "log": str(root / "log")}
    finally:
        subprocess.run(_as_owner([_pg_bin("pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]),
                       capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


def stop_cluster(cluster: dict, mode: str = "fast") -> None:
    """Stop a cluster of `postgres_cluster` and wait until it is down (it can be started again)."""
    subprocess.run(_as_owner([_pg_bin("pg_ctl"), "-D", cluster["data"], "-m", mode, "-w", "stop"]),
                   check=True, capture_output=True)


def start_cluster(cluster: dict) -> None:
    """Start a stopped cluster of `postgres_cluster` again, on its port, and wait until it accepts
    connections."""
    subprocess.run(_as_owner([_pg_bin("pg_ctl"), "-D", cluster["data"], "-o", cluster["options"], "-w", "-l",
                              cluster["log"], "start"]), check=True, capture_output=True)


@contextmanager
def postgres_server():
    """Yield the URL of a fresh, empty PostgreSQL cluster; remove it afterwards."""
    with postgres_cluster() as cluster:
        yield cluster["url"]


@contextmanager
def redis_server(port: int | None = None):
    """Yield the URL of a private redis-server on `port` (to start one again where another was), or on
    a free port."""
    executable = shutil.which("redis-server")
    if executable is None:
        raise RuntimeError("redis-server is not installed (apt-get install -y redis-server)")
    port = port or free_port()
    process = subprocess.Popen([executable, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(timeout=10)
