#!/usr/bin/env python
"""Ingestion benchmark (not a test): single sales and batches through gunicorn on PostgreSQL.

What one run does, all on this machine (127.0.0.1 only, every loop bounded in time and in count):

1. starts a throwaway PostgreSQL cluster (same settings as tests/support/servers.py unless --durable),
   runs `loyalty db upgrade`, inserts store S001, creates an API key with `loyalty api-key create`,
   enrols --members members (the rows enrol_member writes, inserted in bulk) and optionally posts
   --history past sales each through the sales service; that database is the template of a fresh
   copy for each server configuration;
2. for each --server configuration (e.g. sync:6, gthread:2x32) starts gunicorn with the repository's
   gunicorn.conf.py (as in production; the configuration's worker class and counts override it) and
   measures, with 32 concurrent connections (--connections) from an asyncio HTTP/1.1 client in this process:
     - "no-op": GET /api/v1/members/<unknown number> -> 404 after the API-key check (rate limiter,
       SELECT of the key, SELECT of the member), the cheapest authenticated endpoint the app has;
     - "sale":  POST /api/v1/transactions, each a unique external_id, a random member, 1-3 lines;
   then POST /api/v1/transactions/batch, 1,000 sales per call, from --batch-connections connections;
   then a raw COPY (psycopg `cursor.copy()`) of the very rows that batch phase wrote, read back and
   given fresh ids/keys: once the `transactions` rows only, once every row the app inserted for those
   sales (transactions + transaction_lines + points_entries + points_lots + idempotency_records);
3. prints a summary table and writes bench/results/ingest-<UTC date-time>.json.

CPU use of the load generator (this process), the gunicorn tree, PostgreSQL and everything else on
the machine is read from /proc for each phase, so the generator's own cost and other users' load on
this 2-core machine are visible; pg_stat_activity is sampled for what the backends wait on.

    cd /work/main && . .venv/bin/activate
    python bench/ingest.py                          # defaults: gthread:2x32, 15 s phases, 10,000 members
    python bench/ingest.py --server sync:6 --server gthread:2x16 --server gthread:2x32 --server gthread:4x16
    python bench/ingest.py --history 12 --durable --py-spy
    python bench/ingest.py --no-single --no-batch --twins   # every sale sent twice at once (a retry in flight)
"""

import argparse
import asyncio
import json
import os
import platform
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.support.servers import free_port, postgres_cluster  # noqa: E402

VENV_BIN = Path(sys.executable).parent
SECRET_KEY = "bench-secret-key-not-for-production"
# Production refuses to start without it; the bench sends no mail.
PUBLIC_BASE_URL = "https://loyalty.bench.invalid"
CST = timezone(timedelta(hours=8))
CLK_TCK = os.sysconf("SC_CLK_TCK")
SKUS = [(f"SKU{n:04d}", category) for n, category in
        enumerate(["shoes", "shirts", "bags", "socks", "hats", "coats", "belts", "jeans"] * 25)]


# --- servers --------------------------------------------------------------------------------------

def postgres(durable: bool):
    """A fresh cluster with the test settings (see tests/support/servers.postgres_cluster);
    --durable keeps PostgreSQL's durable defaults."""
    return postgres_cluster(durable=durable, prefix="loyalty-bench-pg-")


def db_url(pg: dict, database: str) -> str:
    return f"postgresql+psycopg://postgres@127.0.0.1:{pg['port']}/{database}"


def db_dsn(pg: dict, database: str) -> str:
    return f"host=127.0.0.1 port={pg['port']} user=postgres dbname={database}"


def create_database(pg: dict, name: str, template: str | None = None) -> None:
    import psycopg

    with psycopg.connect(db_dsn(pg, "postgres"), autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}" + (f" TEMPLATE {template}" if template else ""))


def app_env(database_url: str) -> dict:
    env = dict(os.environ)
    env.update({
        "LOYALTY_SQLALCHEMY_DATABASE_URI": database_url,
        "LOYALTY_SECRET_KEY": SECRET_KEY,
        "LOYALTY_ENVIRONMENT": "production",
        "LOYALTY_PUBLIC_BASE_URL": PUBLIC_BASE_URL,
        # The per-key limit (default 6000/min) would cap the run at 100 req/s; lift it, keep the check.
        "LOYALTY_API_RATE_LIMIT": "100000000 per minute",
    })
    env.pop("LOYALTY_REDIS_URL", None)
    # Measure the tree this script lives in (also when it is a copy), not whatever `loyalty` the venv
    # has installed in editable mode.
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return env


def run_cli(args: list[str], env: dict) -> str:
    done = subprocess.run([str(VENV_BIN / "loyalty"), *args], env=env, capture_output=True, text=True, cwd=REPO)
    if done.returncode:
        raise RuntimeError(f"loyalty {' '.join(args)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return done.stdout


def prepare_database(database_url: str, members: int, history: int = 0) -> tuple[str, list[str], float]:
    """Migrate, add store S001, create the key (CLI), enrol members (bulk), and optionally give each
    member `history` past sales (through the sales service, spread over the last 300 days, so members
    hold open lots and a tier window as after months of use). Returns key, member numbers, seconds."""
    env = app_env(database_url)
    run_cli(["db", "upgrade"], env)

    import sqlalchemy as sa

    from loyalty import create_app
    from loyalty.auth.models import Store
    from loyalty.extensions import db
    from loyalty.members import cards
    from loyalty.members.models import Member
    from loyalty.members.numbers import random_member_no
    from loyalty.points.models import TierChange
    from loyalty.points.program import load_program

    app = create_app({"SQLALCHEMY_DATABASE_URI": database_url, "SECRET_KEY": SECRET_KEY,
                      "ENVIRONMENT": "production", "PUBLIC_BASE_URL": PUBLIC_BASE_URL})
    started = time.perf_counter()
    with app.app_context():
        db.session.add(Store(code="S001", name="Bench store"))
        db.session.commit()
    key = run_cli(["api-key", "create", "--name", "bench", "--store", "S001"], env).strip().splitlines()[-1]
    with app.app_context():
        program = load_program(db.session)
        store = db.session.scalar(sa.select(Store).where(Store.code == "S001"))
        now = datetime.now(UTC)
        # The rows loyalty.members.services.enrol_member writes (member in the entry tier + its
        # enrolment TierChange), in bulk: its per-member duplicate checks would take minutes here.
        taken: set[str] = set()
        while len(taken) < members:
            taken.add(random_member_no())
        numbers = sorted(taken, key=lambda _: random.random())
        for start in range(0, members, 2000):
            chunk = [Member(member_no=number, name=f"Bench Member {start + i}", email=f"bench{start + i}@example.com",
                            home_store_id=store.id, status="active", enrolled_at=now, tier_id=program.entry_tier.id,
                            tier_since=now, points_balance=0, card_secret=cards.new_card_secret())
                     for i, number in enumerate(numbers[start:start + 2000])]
            db.session.add_all(chunk)
            db.session.flush()
            db.session.add_all([TierChange(member_id=member.id, to_tier_id=program.entry_tier.id,
                                           reason="enrolment", created_at=now) for member in chunk])
            db.session.commit()
        if history:
            post_history(db.session, numbers, history)
        db.session.remove()
        db.engine.dispose()
    return key, numbers, time.perf_counter() - started


def post_history(session, numbers: list[str], per_member: int, chunk: int = 1000) -> None:
    import sqlalchemy as sa

    from loyalty.auth.models import ApiClient
    from loyalty.points.program import load_program
    from loyalty.sales.services import record_sales
    from loyalty.sales.values import BasketLine, Sale

    client = session.scalar(sa.select(ApiClient).order_by(ApiClient.id))
    rnd = random.Random(1)
    now = datetime.now(UTC)
    pending = []
    total = len(numbers) * per_member
    for n in range(total):
        sku, category = rnd.choice(SKUS)
        amount = rnd.randrange(990, 39900, 100)
        pending.append(Sale(external_id=f"H-{n:09d}", member_code=numbers[n % len(numbers)], channel="pos",
                            occurred_at=now - timedelta(days=300 * (total - n) / total, minutes=1),
                            currency="CNY", amount=amount,
                            lines=(BasketLine(sku=sku, category=category, unit_price=amount, amount=amount),)))
        if len(pending) == chunk or n == total - 1:
            results = record_sales(session, load_program(session), client, pending, now)
            bad = [r for r in results if isinstance(r, Exception)]
            if bad:
                raise RuntimeError(f"history sale refused: {bad[0]!r}")
            session.commit()
            pending = []


class Gunicorn:
    def __init__(self, spec: str, database_url: str, port: int):
        kind, _, size = spec.partition(":")
        workers, _, threads = size.partition("x")
        self.spec, self.kind, self.workers, self.threads = spec, kind, int(workers), int(threads or 1)
        self.port = port
        command = [str(VENV_BIN / "gunicorn"), "-w", str(self.workers), "-k", kind, "-b", f"127.0.0.1:{port}",
                   "--backlog", "2048", "--log-level", "warning", "--timeout", "120"]
        # Always given: gunicorn.conf.py sets 32 threads, and a sync worker with threads becomes gthread.
        command += ["--threads", str(self.threads)]
        command.append("loyalty:create_app()")
        self.log = tempfile.NamedTemporaryFile(prefix="bench-gunicorn-", suffix=".log", delete=False)
        self.process = subprocess.Popen(command, env=app_env(database_url), cwd=REPO, stdout=self.log,
                                        stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                return
            except OSError:
                if self.process.poll() is not None:
                    break
                time.sleep(0.1)
        self.stop(keep_log=True)
        raise RuntimeError(f"gunicorn {spec} did not start; log: {self.log.name}")

    def stop(self, keep_log: bool = False):
        if not keep_log:
            Path(self.log.name).unlink(missing_ok=True)
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def log_tail(self, lines: int = 20) -> str:
        return "\n".join(Path(self.log.name).read_text(errors="replace").splitlines()[-lines:])


# --- CPU accounting from /proc -----------------------------------------------------------------------

def _proc_stat(pid: int) -> tuple[int, int] | None:
    """(parent pid, CPU ticks) of a live process: its own (utime + stime) and that of its children
    that have exited and been waited for (cutime + cstime), so a PostgreSQL backend that started and
    ended within a phase still counts as PostgreSQL's."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2:].split()
    return int(fields[1]), sum(int(value) for value in fields[11:15])


def _tree_ticks(root_pid: int) -> int:
    stats = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (stat := _proc_stat(int(entry))) is not None:
            stats[int(entry)] = stat
    children: dict[int, list[int]] = {}
    for pid, (parent, _) in stats.items():
        children.setdefault(parent, []).append(pid)
    total, todo = 0, [root_pid]
    while todo:
        pid = todo.pop()
        if pid in stats:
            total += stats[pid][1]
        todo.extend(children.get(pid, []))
    return total


def _system_ticks() -> tuple[int, int]:
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return sum(values[:8]), values[3] + values[4]  # all, idle + iowait


def machine_busy_cores(seconds: float = 1.0) -> float:
    all0, idle0 = _system_ticks()
    time.sleep(seconds)
    all1, idle1 = _system_ticks()
    return os.cpu_count() * ((all1 - all0) - (idle1 - idle0)) / max(1, all1 - all0)


QUIET = {"max_wait": 0.0, "threshold": 0.3}


def wait_for_quiet() -> dict:
    """This machine may be shared: before a phase, wait (bounded by --wait-quiet) until the CPU used by
    others, while our servers idle, is below --quiet-threshold cores. Returns what was seen."""
    started = time.monotonic()
    busy = machine_busy_cores()
    while busy > QUIET["threshold"] and time.monotonic() - started < QUIET["max_wait"]:
        time.sleep(2)
        busy = machine_busy_cores()
    return {"busy_cores_before": round(busy, 2), "waited_s": round(time.monotonic() - started, 1)}


class CpuMeter:
    """Cores used by the load generator (this process), gunicorn and PostgreSQL over a phase."""

    def __init__(self, gunicorn_pid: int, postmaster_pid: int):
        self.pids = {"gunicorn": gunicorn_pid, "postgres": postmaster_pid}

    def __enter__(self):
        self.t0 = time.perf_counter()
        self.self0 = time.process_time()
        self.trees0 = {name: _tree_ticks(pid) for name, pid in self.pids.items()}
        self.sys0 = _system_ticks()
        return self

    def __exit__(self, *exc):
        wall = time.perf_counter() - self.t0
        sys1 = _system_ticks()
        all_ticks, idle_ticks = sys1[0] - self.sys0[0], sys1[1] - self.sys0[1]
        self.cores = {
            "load_generator": round((time.process_time() - self.self0) / wall, 2),
            **{name: round((_tree_ticks(pid) - self.trees0[name]) / CLK_TCK / wall, 2)
               for name, pid in self.pids.items()},
            "machine_busy": round(os.cpu_count() * (all_ticks - idle_ticks) / all_ticks, 2) if all_ticks else 0,
        }
        # Everything else on the machine (other users' jobs, kernel threads) during the phase.
        self.cores["other"] = round(max(0.0, self.cores["machine_busy"] - self.cores["load_generator"]
                                        - self.cores["gunicorn"] - self.cores["postgres"]), 2)
        return False


class WaitSampler:
    """What the bench database's backends are doing, sampled every 0.25 s from pg_stat_activity: running,
    waiting for a row lock or I/O, or idle in a transaction (waiting for the app). Shows whether
    concurrent batches queue behind each other's member locks."""

    def __init__(self, dsn: str | None):
        self.dsn, self.counts, self.samples = dsn, {}, 0
        self.stop = threading.Event()

    def __enter__(self):
        if self.dsn:
            self.thread = threading.Thread(target=self._run, daemon=True)
            self.thread.start()
        return self

    def _run(self):
        import psycopg

        with psycopg.connect(self.dsn, autocommit=True) as conn:
            while not self.stop.wait(0.25):
                rows = conn.execute(
                    "SELECT CASE WHEN state = 'active' "
                    "THEN coalesce('waiting ' || wait_event_type || ':' || wait_event, "
                    "'active on CPU') ELSE state END FROM pg_stat_activity WHERE datname = current_database() "
                    "AND state IN ('active', 'idle in transaction') AND pid <> pg_backend_pid()").fetchall()
                self.samples += 1
                for (what,) in rows:
                    self.counts[what] = self.counts.get(what, 0) + 1

    def __exit__(self, *exc):
        self.stop.set()
        if self.dsn:
            self.thread.join()
        return False

    def summary(self) -> dict:
        """Mean number of backends in each state."""
        ranked = sorted(self.counts.items(), key=lambda kv: -kv[1])
        return {what: round(n / max(1, self.samples), 2) for what, n in ranked}


# --- HTTP/1.1 load generator ----------------------------------------------------------------------

class Connection:
    """Minimal HTTP/1.1 client over asyncio streams: keep-alive when the server allows it (gthread),
    a new TCP connection per request when it answers `Connection: close` (gunicorn sync workers).
    Latency therefore includes the connect where the server forces one."""

    def __init__(self, port: int):
        self.port = port
        self.reader = self.writer = None

    async def request(self, raw: bytes) -> tuple[int, bytes]:
        for attempt in range(2):
            reused = self.writer is not None
            if not reused:
                self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
            try:
                self.writer.write(raw)
                head = await self.reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, ConnectionError):
                self.close()
                if reused and attempt == 0:
                    continue  # an idle keep-alive connection the server had closed; the request is idempotent
                raise
            status = int(head[9:12])
            length, close = 0, False
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                name = name.strip().lower()
                if name == b"content-length":
                    length = int(value)
                elif name == b"connection" and value.strip().lower() == b"close":
                    close = True
            body = await self.reader.readexactly(length) if length else b""
            if close:
                self.close()
            return status, body
        raise RuntimeError("unreachable")

    def close(self):
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


def http_request(method: str, path: str, key: str, port: int, body: bytes | None = None) -> bytes:
    head = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", f"Authorization: Bearer {key}"]
    if body is not None:
        head += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + (body or b"")


async def drive(port: int, connections: int, duration: float, max_requests: int, make_request, check) -> dict:
    """`connections` loops, each sending its next request when the previous answer arrived, until
    `duration` seconds passed or `max_requests` were sent. `check(status, body)` -> True if success."""
    issued = 0
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    errors: list[str] = []
    failures = 0
    deadline = time.perf_counter() + duration

    async def loop():
        nonlocal issued, failures
        connection = Connection(port)
        try:
            while time.perf_counter() < deadline and issued < max_requests:
                issued += 1
                raw = make_request()
                started = time.perf_counter()
                try:
                    status, body = await connection.request(raw)
                except (OSError, asyncio.IncompleteReadError) as error:
                    failures += 1
                    if len(errors) < 5:
                        errors.append(repr(error))
                    connection.close()
                    continue
                latencies.append(time.perf_counter() - started)
                statuses[status] = statuses.get(status, 0) + 1
                if not check(status, body):
                    failures += 1
                    if len(errors) < 5:
                        errors.append(f"{status}: {body[:300]!r}")
        finally:
            connection.close()

    started = time.perf_counter()
    await asyncio.gather(*(loop() for _ in range(connections)))
    wall = time.perf_counter() - started
    return {"wall": wall, "latencies": latencies, "statuses": statuses, "failures": failures, "errors": errors}


def latency_summary(latencies: list[float]) -> dict:
    if not latencies:
        return {}
    ordered = sorted(latencies)

    def pct(p):
        return round(1000 * ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))], 2)

    return {"p50_ms": pct(50), "p95_ms": pct(95), "p99_ms": pct(99), "max_ms": round(1000 * ordered[-1], 2),
            "mean_ms": round(1000 * statistics.fmean(ordered), 2)}


# --- workloads ----------------------------------------------------------------------------------

class Sales:
    """Realistic sale bodies: a unique external_id, a random member, 1-3 lines summing to the amount."""

    def __init__(self, run_id: str, members: list[str], seed: int):
        self.run_id, self.members, self.random, self.count = run_id, members, random.Random(seed), 0

    def body(self, prefix: str) -> dict:
        self.count += 1
        rnd = self.random
        lines = []
        for _ in range(rnd.randint(1, 3)):
            sku, category = rnd.choice(SKUS)
            quantity = rnd.randint(1, 3)
            unit_price = rnd.randrange(990, 39900, 100)
            lines.append({"sku": sku, "category": category, "quantity": quantity, "unit_price": unit_price,
                          "amount": quantity * unit_price})
        amount = sum(line["amount"] for line in lines)
        return {"external_id": f"{prefix}-{self.run_id}-{self.count:08d}", "member": rnd.choice(self.members),
                "store_code": "S001", "channel": "pos",
                "occurred_at": datetime.now(CST).isoformat(timespec="seconds"),
                "currency": "CNY", "amount": amount, "lines": lines}


def sale_post(key: str, port: int, sales: Sales, prefix: str):
    """A request maker: POST /transactions with a fresh sale each call."""
    return lambda: http_request("POST", "/api/v1/transactions", key, port,
                                json.dumps(sales.body(prefix), separators=(",", ":")).encode())


def twin_sale_post(key: str, port: int, sales: Sales, prefix: str):
    """A request maker: POST /transactions, each fresh sale sent twice, by the next two connections
    that ask (a till retrying while its first attempt is still in flight). Every answer should be
    201, one of each pair a replay."""
    pending: list[bytes] = []

    def make() -> bytes:
        if pending:
            return pending.pop()
        raw = http_request("POST", "/api/v1/transactions", key, port,
                           json.dumps(sales.body(prefix), separators=(",", ":")).encode())
        pending.append(raw)
        return raw
    return make


def batch_post(key: str, port: int, sales: Sales, prefix: str, size: int):
    """A request maker: POST /transactions/batch with `size` fresh sales each call."""
    return lambda: http_request("POST", "/api/v1/transactions/batch", key, port, json.dumps(
        {"sales": [sales.body(prefix) for _ in range(size)]}, separators=(",", ":")).encode())


def batch_check(item_statuses: dict[int, int]):
    """A check of batch answers that tallies the items' statuses into `item_statuses`: True when every
    item was posted (201)."""
    def check(status, body):
        if status != 200:
            return False
        statuses = [item["status"] for item in json.loads(body)["results"]]
        for item_status in statuses:
            item_statuses[item_status] = item_statuses.get(item_status, 0) + 1
        return all(item_status == 201 for item_status in statuses)
    return check


def run_phase(name, port, connections, duration, max_requests, make_request, check, gunicorn_pid, postmaster_pid,
              items_per_request: int = 1, warmup: float = 2.0, before_measure=None, dsn: str | None = None) -> dict:
    quiet = wait_for_quiet()
    if warmup:
        asyncio.run(drive(port, connections, warmup, 10**6, make_request, check))
    if before_measure is not None:
        before_measure()
    with CpuMeter(gunicorn_pid, postmaster_pid) as cpu, WaitSampler(dsn) as waits:
        raw = asyncio.run(drive(port, connections, duration, max_requests, make_request, check))
    ok_requests = sum(n for status, n in raw["statuses"].items()) - raw["failures"]
    result = {
        "phase": name, "connections": connections, "seconds": round(raw["wall"], 2),
        "requests": len(raw["latencies"]), "failed_requests": raw["failures"],
        "statuses": {str(k): v for k, v in sorted(raw["statuses"].items())},
        "requests_per_s": round(len(raw["latencies"]) / raw["wall"], 1),
        "items_per_s": round(max(ok_requests, 0) * items_per_request / raw["wall"], 1),
        **latency_summary(raw["latencies"]),
        "cpu_cores": cpu.cores, "machine_before_phase": quiet, "first_errors": raw["errors"],
        "pg_active_backends": waits.summary(),
    }
    add_cpu_per_item(result, max(ok_requests, 0) * items_per_request)
    return result


def add_cpu_per_item(result: dict, items: int) -> None:
    """CPU milliseconds per successful item, by process group: unlike items/s, hardly changed by other
    load on the machine. `capacity_2_cores` = items/s if gunicorn + PostgreSQL had both cores to
    themselves (an upper bound: no generator, kernel or scheduling cost)."""
    if not items:
        return
    cores, seconds = result["cpu_cores"], result["seconds"]
    per = {name: round(1000 * cores[name] * seconds / items, 3) for name in ("gunicorn", "postgres", "load_generator")}
    result["cpu_ms_per_item"] = per
    result["capacity_2_cores"] = round(2000 / (per["gunicorn"] + per["postgres"]), 1) \
        if per["gunicorn"] + per["postgres"] else None


class PySpy:
    """Optional (--py-spy): sample every gunicorn worker during a phase with py-spy (pip install py-spy),
    keep the collapsed stacks, and summarise the functions seen on CPU (idle stacks excluded)."""

    def __init__(self, pid: int, seconds: float, output: Path):
        self.output = output
        output.parent.mkdir(parents=True, exist_ok=True)
        executable = shutil.which("py-spy") or str(VENV_BIN / "py-spy")
        self.process = subprocess.Popen([executable, "record", "--pid", str(pid), "--subprocesses", "--nonblocking",
                                         "--rate", "100", "--duration", str(int(seconds)), "--format", "raw",
                                         "--output", str(output)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def summary(self, top: int = 25) -> dict:
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.terminate()
            self.process.wait()
        if not self.output.exists():
            return {"error": self.process.stderr.read().decode(errors="replace")[-500:]}
        inclusive: dict[str, int] = {}
        leaf: dict[str, int] = {}
        total = 0
        for line in self.output.read_text().splitlines():
            stack, _, count = line.rpartition(" ")
            if not count.isdigit():
                continue
            frames = [self._short(frame) for frame in stack.split(";")[1:]]  # first frame: the process
            total += int(count)
            for frame in set(frames):
                if "[app]" in frame:
                    inclusive[frame] = inclusive.get(frame, 0) + int(count)
            if frames:
                leaf[frames[-1]] = leaf.get(frames[-1], 0) + int(count)
        def ranked(table):
            ranked = sorted(table.items(), key=lambda kv: -kv[1])[:top]
            return [(round(100 * n / total, 1), frame) for frame, n in ranked]
        return {"samples": total, "file": str(self.output), "app_inclusive_pct": ranked(inclusive),
                "self_pct": ranked(leaf)}

    @staticmethod
    def _short(frame: str) -> str:
        """`func (/long/path/pkg/mod.py:12)` -> `func (pkg/mod.py:12)`, `[app]` for this project's code."""
        name, _, where = frame.partition(" (")
        if not where:
            return frame
        where = where.rstrip(")")
        app = where.startswith("loyalty/") or f"{REPO}/loyalty/" in where  # py-spy shortens sys.path entries
        return f"{name} ({'/'.join(where.split('/')[-2:])})" + (" [app]" if app else "")


def single_phases(args, server: Gunicorn, key: str, sales: Sales, pg: dict, dsn: str) -> list[dict]:
    port, results = server.port, []
    unknown = "1000000000"  # valid length, fails the Damm check digit; so no member, ever: 404 after auth
    noop_raw = http_request("GET", f"/api/v1/members/{unknown}", key, port)
    results.append(run_phase(
        "no-op: GET /members/<unknown> (404)", port, args.connections, args.duration, args.max_requests,
        lambda: noop_raw, lambda status, body: status == 404, server.process.pid, pg["pid"]))

    sale_request = sale_post(key, port, sales, "S")
    spy = None

    def start_spy():
        nonlocal spy
        if args.py_spy:
            spy = PySpy(server.process.pid, max(1, args.duration - 1),
                        Path(tempfile.gettempdir())
                        / f"bench-pyspy-sale-{server.spec.replace(':', '-')}-{sales.run_id}.txt")

    results.append(run_phase(
        "sale: POST /transactions", port, args.connections, args.duration, args.max_requests,
        sale_request, lambda status, body: status == 201, server.process.pid, pg["pid"], before_measure=start_spy,
        dsn=dsn))
    if spy is not None:
        results[-1]["py_spy"] = summary = spy.summary()
        print(f"  py-spy of the gunicorn workers during the sale phase: {summary.get('samples')} samples, "
              f"{summary.get('file', summary.get('error'))}")
        print("    the app's functions, % of samples with them on the stack:")
        for pct, frame in summary.get("app_inclusive_pct", []):
            print(f"    {pct:5.1f}%  {frame}")
        print("    innermost frames (where the samples were), %:")
        for pct, frame in summary.get("self_pct", []):
            print(f"    {pct:5.1f}%  {frame}")
    return results


def twins_phase(args, server: Gunicorn, key: str, sales: Sales, pg: dict, dsn: str) -> dict:
    """Single sales as in the sale phase, each sent twice at once (see twin_sale_post): the retry must
    get the first answer replayed, and no other sale of its group commit may fail with it."""
    return run_phase("sale twins: each POST /transactions twice", server.port, args.connections, args.duration,
                     args.max_requests, twin_sale_post(key, server.port, sales, "T"),
                     lambda status, body: status == 201, server.process.pid, pg["pid"], dsn=dsn)


def batch_phase(args, server: Gunicorn, key: str, sales: Sales, pg: dict, dsn: str) -> tuple[dict, str]:
    prefix = f"B{server.spec.replace(':', '').replace('x', 't')}"
    port = server.port
    item_statuses: dict[int, int] = {}
    result = run_phase(f"batch: POST /transactions/batch ({args.batch_size}/call)", port, args.batch_connections,
                       args.batch_duration, args.batch_max_calls, batch_post(key, port, sales, prefix, args.batch_size),
                       batch_check(item_statuses), server.process.pid,
                       pg["pid"], items_per_request=args.batch_size, warmup=0, dsn=dsn)
    result["item_statuses"] = {str(k): v for k, v in sorted(item_statuses.items())}
    result["items_per_s"] = round(item_statuses.get(201, 0) / result["seconds"], 1)
    result["sales_posted"] = item_statuses.get(201, 0)
    add_cpu_per_item(result, result["sales_posted"])
    return result, f"{prefix}-{sales.run_id}-"


def mixed_phase(args, server: Gunicorn, key: str, sales: Sales, pg: dict, dsn: str) -> dict:
    """Single sales from --connections connections while one more connection posts batches: a
    backfill during trading hours. What the tills see of it: their latency beside the batch's rate."""
    port = server.port
    item_statuses: dict[int, int] = {}
    sale_request = sale_post(key, port, sales, "M")

    async def both():
        return await asyncio.gather(
            drive(port, args.connections, args.duration, args.max_requests, sale_request,
                  lambda status, body: status == 201),
            drive(port, 1, args.duration, args.batch_max_calls, batch_post(key, port, sales, "MB", args.batch_size),
                  batch_check(item_statuses)))

    quiet = wait_for_quiet()
    asyncio.run(drive(port, args.connections, 2.0, 10**6, sale_request, lambda status, body: status == 201))
    with CpuMeter(server.process.pid, pg["pid"]) as cpu, WaitSampler(dsn) as waits:
        single, batch = asyncio.run(both())
    ok = sum(single["statuses"].values()) - single["failures"]
    result = {
        "phase": f"mixed: sales + 1 batch connection ({args.batch_size}/call)", "connections": args.connections + 1,
        "seconds": round(single["wall"], 2), "requests": len(single["latencies"]),
        "failed_requests": single["failures"] + batch["failures"],
        "statuses": {str(k): v for k, v in sorted(single["statuses"].items())},
        "requests_per_s": round(len(single["latencies"]) / single["wall"], 1),
        "items_per_s": round(max(ok, 0) / single["wall"], 1),
        **latency_summary(single["latencies"]),
        "batch_sales_per_s": round(item_statuses.get(201, 0) / batch["wall"], 1),
        "batch_latency": latency_summary(batch["latencies"]),
        "cpu_cores": cpu.cores, "machine_before_phase": quiet,
        "first_errors": single["errors"] + batch["errors"], "pg_active_backends": waits.summary(),
    }
    add_cpu_per_item(result, max(ok, 0) + item_statuses.get(201, 0))
    return result


# --- raw COPY of the same rows ------------------------------------------------------------------------

COPY_TABLES = ("transactions", "transaction_lines", "points_entries", "points_lots", "idempotency_records")


def copy_phase(dsn: str, external_prefix: str, full: bool, round_no: int) -> dict:
    """Read back every row the batch phase inserted, give them fresh ids and keys, and time writing
    them again with COPY (one connection, one transaction, commit included)."""
    import psycopg

    with psycopg.connect(dsn) as conn:
        tables = COPY_TABLES if full else COPY_TABLES[:1]
        rows, columns = {}, {}

        def fetch(table, where, params):
            cur = conn.execute(f"SELECT * FROM {table} WHERE {where} ORDER BY id", params)
            columns[table] = [d.name for d in cur.description]
            rows[table] = [list(r) for r in cur.fetchall()]

        fetch("transactions", "external_id LIKE %s", (external_prefix + "%",))
        ids = [r[0] for r in rows["transactions"]]
        if full:
            fetch("transaction_lines", "transaction_id = ANY(%s)", (ids,))
            fetch("points_entries", "transaction_id = ANY(%s)", (ids,))
            fetch("points_lots", "transaction_id = ANY(%s)", (ids,))
            fetch("idempotency_records", "key LIKE %s", ("sale:" + external_prefix + "%",))
        conn.commit()
        offset = (round_no + 1) * 10**12
        tag = f"C{round_no}-"

        def remap(table):
            cols = columns[table]
            for row in rows[table]:
                for index, name in enumerate(cols):
                    value = row[index]
                    if name in ("id", "transaction_id", "entry_id", "sale_id") and value is not None:
                        row[index] = value + offset
                    elif name == "external_id" or (table == "idempotency_records" and name == "key"):
                        row[index] = value.replace(external_prefix, tag + external_prefix, 1)
                    elif name == "response_body":
                        row[index] = json.dumps(value)
        for table in tables:
            remap(table)

        quiet = wait_for_quiet()
        started = time.perf_counter()
        with conn.cursor() as cur:
            for table in tables:
                with cur.copy(f"COPY {table} ({', '.join(columns[table])}) FROM STDIN") as copy:
                    for row in rows[table]:
                        copy.write_row(row)
        conn.commit()
        elapsed = time.perf_counter() - started
    sales = len(rows["transactions"])
    return {"phase": "COPY " + (" + ".join(tables) if full else "transactions only"),
            "sales": sales, "rows": {table: len(rows[table]) for table in tables},
            # rough size of what was copied: the text of every value
            "text_bytes_per_sale": {table: round(sum(len(str(v)) for row in rows[table] for v in row) / max(1, sales))
                                    for table in tables},
            "seconds": round(elapsed, 3),
            "items_per_s": round(sales / elapsed, 1) if elapsed else 0, "machine_before_phase": quiet}


# --- report -------------------------------------------------------------------------------------

def print_table(results: list[dict]) -> None:
    header = f"{'server':<12} {'phase':<44} {'req/s':>8} {'items/s':>9} {'p50':>7} {'p95':>7} {'p99':>7} " \
             f"{'fail':>5} {'cpu ms/item app+pg':>18} {'cap/2cores':>10}  cores gen/gunicorn/pg/other/busy"
    print(header)
    print("-" * len(header))
    for r in results:
        cores = r.get("cpu_cores", {})
        cores_text = "/".join(str(cores.get(k, "-")) for k in ("load_generator", "gunicorn", "postgres",
                                                                "other", "machine_busy")) if cores else ""
        cpu = r.get("cpu_ms_per_item")
        per_item = f"{cpu['gunicorn']:.2f}+{cpu['postgres']:.2f}" if cpu else ""
        print(f"{r.get('server', ''):<12} {r['phase'][:44]:<44} {r.get('requests_per_s', ''):>8} "
              f"{r.get('items_per_s', ''):>9} {r.get('p50_ms', ''):>7} {r.get('p95_ms', ''):>7} "
              f"{r.get('p99_ms', ''):>7} {r.get('failed_requests', ''):>5} {per_item:>18} "
              f"{r.get('capacity_2_cores') or '':>10}  {cores_text}")


def code_version() -> str:
    try:
        head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--", "loyalty", "migrations"],
                               capture_output=True, text=True, check=True).stdout.strip()
        return head + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git work tree)"


def main() -> int:
    # A plain `kill` must still stop gunicorn and remove the cluster (the `finally` blocks).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--server", action="append", default=None, metavar="KIND:WORKERS[xTHREADS]",
                        help="gunicorn worker class and count, repeatable: sync:6, gthread:2x32 "
                             "(default: gthread:2x32, the best of those tried on 2 cores)")
    parser.add_argument("--workers", type=int, default=None,
                        help="shorthand: --server sync:N, or gthread:NxT with --threads T")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--duration", type=float, default=15, help="seconds per single-request phase")
    parser.add_argument("--batch-duration", type=float, default=None,
                        help="seconds of batch phase (default: --duration)")
    parser.add_argument("--members", type=int, default=10_000)
    parser.add_argument("--history", type=int, default=0, metavar="N",
                        help="past sales per member posted before the run (open lots, tier window)")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--max-requests", type=int, default=200_000, help="cap per single-request phase")
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--batch-connections", type=int, default=2)
    parser.add_argument("--batch-max-calls", type=int, default=200)
    parser.add_argument("--durable", action="store_true", help="PostgreSQL with fsync/synchronous_commit on")
    parser.add_argument("--no-batch", action="store_true")
    parser.add_argument("--no-single", action="store_true", help="skip the no-op and single-sale phases")
    parser.add_argument("--mixed", action="store_true",
                        help="also run single sales while one connection posts batches (--duration seconds)")
    parser.add_argument("--twins", action="store_true",
                        help="also run single sales each sent twice at once, a retry in flight (--duration seconds)")
    parser.add_argument("--py-spy", action="store_true",
                        help="sample the gunicorn workers with py-spy during the sale phase (needs py-spy)")
    parser.add_argument("--wait-quiet", type=float, default=120, metavar="SECONDS",
                        help="before each phase wait at most this long for other load on the machine to drop")
    parser.add_argument("--quiet-threshold", type=float, default=0.3, metavar="CORES")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--output", type=Path, default=None,
                        help="JSON file (default: bench/results/ingest-<utc>.json)")
    args = parser.parse_args()
    if args.server:
        servers = args.server
    elif args.workers:
        servers = [f"gthread:{args.workers}x{args.threads}" if args.threads > 1 else f"sync:{args.workers}"]
    else:
        servers = ["gthread:2x32"]
    args.batch_duration = args.batch_duration or args.duration
    QUIET.update(max_wait=args.wait_quiet, threshold=args.quiet_threshold)
    run_id = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    load_before = os.getloadavg()

    results: list[dict] = []
    summary: list[dict] = []
    with postgres(args.durable) as pg:
        print(f"PostgreSQL {'durable' if args.durable else 'fsync=off synchronous_commit=off (as tests)'}; "
              f"preparing {args.members} members ...", flush=True)
        create_database(pg, "bench_template")
        key, members, prep_seconds = prepare_database(db_url(pg, "bench_template"), args.members, args.history)
        print(f"  ready in {prep_seconds:.1f} s", flush=True)
        sales = Sales(run_id, members, args.seed)
        for round_no, spec in enumerate(servers):
            # Every configuration starts from the same data: a fresh copy of the prepared database.
            database = f"bench_{round_no}"
            create_database(pg, database, template="bench_template")
            server = Gunicorn(spec, db_url(pg, database), free_port())
            print(f"\n== gunicorn {spec} (database {database}) ==", flush=True)
            try:
                phase_results, ratio = [], {"server": spec}
                noop = sale = {}
                if not args.no_single:
                    phase_results = single_phases(args, server, key, sales, pg, db_dsn(pg, database))
                    noop, sale = phase_results
                    for r in phase_results:
                        r["server"] = spec
                        print_table([r])
                        print(f"  PostgreSQL backends (mean number per state): {r['pg_active_backends']}")
                    ratio["sale_vs_noop_rps"] = round(sale["requests_per_s"] / noop["requests_per_s"], 3) \
                        if noop["requests_per_s"] else None
                if args.mixed:
                    mixed = mixed_phase(args, server, key, sales, pg, db_dsn(pg, database))
                    mixed["server"] = spec
                    print_table([mixed])
                    print(f"  batches alongside: {mixed['batch_sales_per_s']} sales/s, latency "
                          f"{mixed['batch_latency']}; PostgreSQL backends: {mixed['pg_active_backends']}")
                    phase_results.append(mixed)
                    ratio["mixed_single_per_s"] = mixed["items_per_s"]
                    ratio["mixed_single_p99_ms"] = mixed.get("p99_ms")
                    ratio["mixed_batch_sales_per_s"] = mixed["batch_sales_per_s"]
                if args.twins:
                    twins = twins_phase(args, server, key, sales, pg, db_dsn(pg, database))
                    twins["server"] = spec
                    print_table([twins])
                    print(f"  statuses: {twins['statuses']}; first errors: {twins['first_errors'][:2]}")
                    phase_results.append(twins)
                    ratio["twins_statuses"] = twins["statuses"]
                if not args.no_batch:
                    batch, prefix = batch_phase(args, server, key, sales, pg, db_dsn(pg, database))
                    batch["server"] = spec
                    print_table([batch])
                    print(f"  PostgreSQL backends (mean number per state): {batch['pg_active_backends']}")
                    phase_results.append(batch)
                    if batch["sales_posted"]:
                        for full in (False, True):
                            copied = copy_phase(db_dsn(pg, database), prefix, full, 2 * round_no + full)
                            copied["server"] = spec
                            print_table([copied])
                            phase_results.append(copied)
                        copy_tx, copy_all = phase_results[-2], phase_results[-1]
                        ratio["batch_vs_copy_transactions"] = round(batch["items_per_s"] / copy_tx["items_per_s"], 4)
                        ratio["batch_vs_copy_all_rows"] = round(batch["items_per_s"] / copy_all["items_per_s"], 4)
                ratio.update({
                    "single_sales_per_s": sale.get("items_per_s", 0), "single_p99_ms": sale.get("p99_ms"),
                    "noop_per_s": noop.get("items_per_s", 0), "noop_p99_ms": noop.get("p99_ms"),
                    "batch_sales_per_s": batch["items_per_s"] if not args.no_batch else None,
                    "single_capacity_2_cores": sale.get("capacity_2_cores"),
                    "batch_capacity_2_cores": batch.get("capacity_2_cores") if not args.no_batch else None,
                    "other_load_cores": [r["cpu_cores"]["other"] for r in phase_results if "cpu_cores" in r],
                })
                print("  ratios:", {k: v for k, v in ratio.items() if k.endswith("vs_noop_rps") or "copy" in k})
                results.extend(phase_results)
                summary.append(ratio)
                if any(r.get("failed_requests") for r in phase_results):
                    server.failed = True
                    print(f"  gunicorn log ({server.log.name}) tail:\n" + server.log_tail(), flush=True)
            finally:
                server.stop(keep_log=getattr(server, "failed", False))
        counts = {}
        for round_no in range(len(servers)):
            with __import__("psycopg").connect(db_dsn(pg, f"bench_{round_no}")) as conn:
                counts[servers[round_no]] = {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                                             for t in ("members", "transactions", "points_entries", "points_lots")}

    print("\n== summary ==")
    print_table(results)
    print()
    floor_ok = goal_ok = False
    for row in summary:
        single, p99, batch = row["single_sales_per_s"], row["single_p99_ms"] or 1e9, row["batch_sales_per_s"] or 0
        row["floor_met"] = single >= 500 and p99 <= 100 and batch >= 5000
        row["goal_met"] = single >= 1000 and p99 <= 100 and batch >= 20000
        floor_ok, goal_ok = floor_ok or row["floor_met"], goal_ok or row["goal_met"]
        print(f"{row['server']:<12} single {single:>8.1f} sales/s p99 {p99:>7.1f} ms "
              f"| no-op {row['noop_per_s']:>8.1f}/s "
              f"| sale/no-op {row.get('sale_vs_noop_rps')} | batch {batch:>8.1f} sales/s | "
              f"batch/COPY(tx) {row.get('batch_vs_copy_transactions')} "
              f"batch/COPY(all) {row.get('batch_vs_copy_all_rows')} "
              f"| floor {'MET' if row['floor_met'] else 'not met'} goal {'MET' if row['goal_met'] else 'not met'}")
        print(f"{'':<12} CPU-based capacity with 2 free cores: single {row['single_capacity_2_cores']} sales/s, "
              f"batch {row['batch_capacity_2_cores']} sales/s; other load on the machine during the phases "
              f"(cores): {row['other_load_cores']}")
    print("floor (>=500 sales/s, p99<=100 ms, >=5,000 batch sales/s):", "MET" if floor_ok else "NOT MET")
    print("goal  (>=1,000 sales/s, >=20,000 batch sales/s):", "MET" if goal_ok else "NOT MET")

    report = {
        "run_id": run_id, "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "servers": servers, "code_root": str(REPO), "code_version": code_version(),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
                    "loadavg_before": load_before, "loadavg_after": os.getloadavg()},
        "postgres": "durable defaults" if args.durable else "fsync=off synchronous_commit=off full_page_writes=off",
        "noop_endpoint": "GET /api/v1/members/1000000000 -> 404 (API-key check + rate limiter + member SELECT)",
        "copy_contains": "rows the batch phase inserted, re-keyed: (1) transactions only; (2) transactions + "
                         "transaction_lines + points_entries + points_lots + idempotency_records; one transaction, "
                         "commit included; no member balance/tier UPDATE",
        "member_seed_seconds": round(prep_seconds, 1), "final_row_counts": counts,
        "summary": summary, "phases": results,
    }
    output = args.output or REPO / "bench" / "results" / f"ingest-{run_id}.json"
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(report, indent=2, default=str) + "\n")
    print(f"\nwrote {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
