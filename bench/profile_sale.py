#!/usr/bin/env python
"""Where a sale's time goes (companion of bench/ingest.py; not a test).

In one process, against a throwaway PostgreSQL, through Flask's test client (no HTTP server, so
this is the app's own cost): counts the SQL statements per request with a SQLAlchemy event
listener, times them, and profiles the Python with cProfile.

    python bench/profile_sale.py                       # no-op, single sale, batch of 1,000
    python bench/profile_sale.py --requests 300 --top 40 --pstats /tmp/sale.pstats
    python bench/profile_sale.py --steps --batches 10  # CPU of the app and of PostgreSQL, step by step

With --steps nothing is profiled: each step of a batch (the service functions below) is timed by a
wrapper with this thread's CPU clock, and PostgreSQL's share by the CPU time of its client backends
(/proc/PID/schedstat, nanoseconds) over the same call. The steps nest (record_sales holds the steps
marked with two spaces).
"""

import argparse
import cProfile
import functools
import io
import json
import pstats
import re
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ingest import PUBLIC_BASE_URL, SECRET_KEY, Sales, db_url, postgres, prepare_database  # noqa: E402


class SqlCounter:
    def __init__(self, engine):
        import sqlalchemy as sa

        self.statements: Counter = Counter()
        self.seconds = 0.0
        self.executes = 0
        self.on = False
        sa.event.listen(engine, "before_cursor_execute", self.before)
        sa.event.listen(engine, "after_cursor_execute", self.after)

    def before(self, conn, cursor, statement, parameters, context, executemany):
        conn.info["bench_t0"] = time.perf_counter()

    def after(self, conn, cursor, statement, parameters, context, executemany):
        if not self.on:
            return
        self.seconds += time.perf_counter() - conn.info.pop("bench_t0", time.perf_counter())
        self.executes += 1
        self.statements[normalise(statement) + (" [executemany]" if executemany else "")] += 1

    def reset(self):
        self.statements.clear()
        self.seconds, self.executes = 0.0, 0

    def count_copies(self):
        """loyalty.bulk sends COPY on the driver's own cursor, which SQLAlchemy's events do not see."""
        import psycopg

        original, counter = psycopg.Cursor.copy, self

        def copy(cursor, statement, *args, **kwargs):
            if counter.on:
                counter.executes += 1
                counter.statements[" ".join(str(statement).split()[:2]) + " FROM STDIN"] += 1
            return original(cursor, statement, *args, **kwargs)

        psycopg.Cursor.copy = copy


def normalise(statement: str) -> str:
    text = " ".join(statement.split())
    verb = text.split(" ", 1)[0].upper()
    if verb == "SELECT":
        table = re.search(r"\bFROM (\w+)", text)
        extra = " FOR UPDATE" if "FOR UPDATE" in text else ""
        what = "sum(...)" if "sum(" in text else ""
        return f"SELECT {what}FROM {table.group(1) if table else '?'}{extra}"
    if verb == "INSERT":
        table = re.search(r"INSERT INTO (\w+)", text)
        rows = text.count("VALUES (") + text.count("), (")  # insertmanyvalues batches
        return f"INSERT INTO {table.group(1) if table else '?'}" + (" (multi-row)" if rows > 1 else "")
    if verb == "UPDATE":
        table = re.search(r"UPDATE (\w+) SET (.*?) WHERE", text)
        columns = ", ".join(re.findall(r"(\w+)=", table.group(2))) if table else "?"
        return f"UPDATE {table.group(1) if table else '?'} SET {columns}"
    return text[:60]


# Where a request's time goes, by the app's own steps (cumulative time, so nested steps overlap).
BREAKDOWN = [
    ("whole request (Flask wsgi_app)", "flask/app.py", "wsgi_app"),
    ("  rate limiter check", "flask_limiter/", "_check_request_limit"),
    ("  API-key auth (before_request)", "loyalty/pos_api/auth.py", "authenticate_request"),
    ("  webargs parse (body JSON + schema load)", "webargs/core.py", "parse"),
    ("  marshmallow Schema.load (all validation)", "marshmallow/schema.py", "load"),
    ("  batch: per-item parse (SaleSubmission.parse)", "loyalty/pos_api/sale_posting.py", "parse"),
    ("  request fingerprint", "loyalty/answer_once.py", "fingerprint"),
    ("  idempotency lookup", "loyalty/answer_once.py", "find_stored"),
    ("  load_program (settings, tiers, rules)", "loyalty/points/program.py", "load_program"),
    ("  record_sales (service)", "loyalty/sales/services.py", "record_sales"),
    ("    resolve member codes", "loyalty/members/services.py", "resolve_member_codes"),
    ("    lock wallets (FOR UPDATE + lots)", "loyalty/points/ledger.py", "lock_wallets"),
    ("    qualifying points (SUM)", "loyalty/points/tiers.py", "qualifying_points"),
    ("    _record_sale (build rows, earn)", "loyalty/sales/services.py", "_record_sale"),
    ("  marshmallow Schema.dump (responses)", "marshmallow/schema.py", "dump"),
    ("  remember (idempotency record objects)", "loyalty/pos_api/idempotency.py", "remember"),
    ("  session.flush (ORM unit of work)", "sqlalchemy/orm/session.py", "_flush"),
    ("  session.commit", "sqlalchemy/orm/session.py", "commit"),
    ("  psycopg cursor.execute (all SQL)", "psycopg/cursor.py", "execute"),
    ("  psycopg cursor.executemany", "psycopg/cursor.py", "executemany"),
    ("  member snapshot / load_wallet (GET)", "loyalty/points/ledger.py", "load_wallet"),
    ("  stdlib json.dumps", "json/__init__.py", "dumps"),
]


def print_breakdown(stats: pstats.Stats, requests: int) -> None:
    total = None
    print("--- breakdown (cProfile cumulative, ms per request; profiler overhead inflates all of it) ---")
    for label, path, function in BREAKDOWN:
        cumulative = sum(value[3] for (filename, _, name), value in stats.stats.items()
                         if name == function and path in filename)
        calls = sum(value[1] for (filename, _, name), value in stats.stats.items()
                    if name == function and path in filename)
        if not calls:
            continue
        total = total or cumulative
        print(f"  {label:<48} {1000 * cumulative / requests:9.2f} ms  {100 * cumulative / total:5.1f}%  "
              f"({calls / requests:.1f} calls/request)")


# (label, module, attribute): the steps of a batch, timed by --steps.
STEPS = [
    ("SaleSubmission.parse (marshmallow load)", "loyalty.pos_api.sale_posting", "SaleSubmission.parse"),
    ("fingerprint (idempotency hash)", "loyalty.pos_api.sale_posting", "fingerprint"),
    ("claim_keys (INSERT ... ON CONFLICT)", "loyalty.pos_api.sale_posting", "claim_keys"),
    ("record_sales", "loyalty.pos_api.sale_posting", "record_sales"),
    ("  resolve_member_codes (lock)", "loyalty.sales.services", "resolve_member_codes"),
    ("  wallets_for (open lots)", "loyalty.sales.services", "wallets_for"),
    ("  climbers (qualifying SUM)", "loyalty.sales.services", "climbers"),
    ("  _record_sale (rules, rows)", "loyalty.sales.services", "_record_sale"),
    ("  _write_sales (COPY)", "loyalty.sales.services", "_write_sales"),
    ("  save_wallets (COPY, UPDATE)", "loyalty.sales.services", "save_wallets"),
    ("  save_tier_moves", "loyalty.sales.services", "save_tier_moves"),
    ("answer dump (marshmallow)", "loyalty.pos_api.schemas", "sale_response_schema.dump"),
    ("answer_claims (UPDATE answers)", "loyalty.pos_api.sale_posting", "answer_claims"),
    ("commit", "sqlalchemy.orm", "Session.commit"),
    ("json_response", "loyalty.pos_api.idempotency", "json_response"),
]


class StepTimer:
    """CPU of this thread and of PostgreSQL's client backends, per step (see the module doc)."""

    def __init__(self, backend_pids: list[int]):
        self.pids = backend_pids
        self.app, self.db = defaultdict(float), defaultdict(float)

    def database_cpu(self) -> float:
        total = 0
        for pid in self.pids:
            with open(f"/proc/{pid}/schedstat") as stat:
                total += int(stat.read().split()[0])
        return total / 1e9

    def install(self) -> None:
        import importlib

        for label, module_name, attribute in STEPS:
            owner = importlib.import_module(module_name)
            *path, name = attribute.split(".")
            for part in path:
                owner = getattr(owner, part)
            original = owner.__dict__[name] if isinstance(owner, type) else getattr(owner, name)
            function = original.__func__ if isinstance(original, classmethod) else original
            timed = self.timed(label, function)
            setattr(owner, name, classmethod(timed) if isinstance(original, classmethod) else timed)

    def timed(self, label, function):
        @functools.wraps(function)
        def step(*args, **kwargs):
            cpu, db = time.thread_time(), self.database_cpu()
            try:
                return function(*args, **kwargs)
            finally:
                self.app[label] += time.thread_time() - cpu
                self.db[label] += self.database_cpu() - db
        return step

    def reset(self) -> None:
        self.app.clear()
        self.db.clear()


def run_steps(app, http, headers, sales, args) -> None:
    import sqlalchemy as sa

    from loyalty.extensions import db

    # The bodies are built before the clock starts: the load generator's work is not the app's.
    bodies = [json.dumps({"sales": [sales.body("ST") for _ in range(args.batch_size)]})
              for _ in range(args.batches + 1)]

    def post(body):
        response = http.post("/api/v1/transactions/batch", data=body, content_type="application/json",
                             headers=headers)
        assert response.status_code == 200, response.get_data(as_text=True)[:300]

    post(bodies[0])  # warm up, and open the pool's connection(s): their backends are the ones timed
    with app.app_context():
        timer = StepTimer(db.session.execute(sa.text(
            "SELECT pid FROM pg_stat_activity WHERE backend_type = 'client backend'")).scalars().all())
        db.session.remove()
    timer.install()
    timer.reset()
    cpu, db_cpu, wall = time.thread_time(), timer.database_cpu(), time.perf_counter()
    for body in bodies[1:]:
        post(body)
    items = args.batches * args.batch_size
    cpu, db_cpu, wall = (time.thread_time() - cpu, timer.database_cpu() - db_cpu, time.perf_counter() - wall)
    print(f"\n=== steps of POST /transactions/batch x{args.batch_size}: {args.batches} requests, "
          f"{len(timer.pids)} PostgreSQL backend(s) ===")
    print(f"{'per sale, microseconds':<40} {'app CPU':>8} {'PG CPU':>8}")
    print(f"{'whole request (this thread, wall ' + format(1e6 * wall / items, '.0f') + ')':<40} "
          f"{1e6 * cpu / items:8.1f} {1e6 * db_cpu / items:8.1f}")
    for label, _, _ in STEPS:
        if label in timer.app:
            print(f"  {label:<38} {1e6 * timer.app[label] / items:8.1f} {1e6 * timer.db[label] / items:8.1f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--members", type=int, default=2000)
    parser.add_argument("--history", type=int, default=0, help="past sales per member (see ingest.py)")
    parser.add_argument("--requests", type=int, default=200, help="single requests per kind")
    parser.add_argument("--batches", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--pstats", default=None, help="prefix of .pstats files to keep")
    parser.add_argument("--cpu", action="store_true",
                        help="profile CPU time (time.process_time) instead of wall time: waiting for PostgreSQL "
                             "then costs nothing, so what is left is this process's own work")
    parser.add_argument("--steps", action="store_true",
                        help="only the batch, unprofiled: app and PostgreSQL CPU per step (see the module doc)")
    args = parser.parse_args()

    with postgres(durable=False) as pg:
        url = db_url(pg, "postgres")
        key, members, _ = prepare_database(url, args.members, args.history)
        from loyalty import create_app
        from loyalty.extensions import db

        app = create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": SECRET_KEY,
                          "ENVIRONMENT": "production", "API_RATE_LIMIT": "100000000 per minute",
                          "PUBLIC_BASE_URL": PUBLIC_BASE_URL})
        http = app.test_client()
        headers = {"Authorization": f"Bearer {key}"}
        sales = Sales("prof", members, 11)
        if args.steps:
            run_steps(app, http, headers, sales, args)
            return 0
        with app.app_context():
            counter = SqlCounter(db.engine)
            counter.count_copies()

        kinds = {
            "no-op GET /members/<unknown>": (args.requests, lambda: http.get("/api/v1/members/1000000000",
                                                                              headers=headers), 404, 1),
            "sale POST /transactions": (
                args.requests, lambda: http.post("/api/v1/transactions", json=sales.body("P"), headers=headers),
                201, 1),
            f"batch POST /transactions/batch x{args.batch_size}": (
                args.batches, lambda: http.post("/api/v1/transactions/batch", headers=headers,
                                                json={"sales": [sales.body("PB") for _ in range(args.batch_size)]}),
                200, args.batch_size),
        }
        for name, (count, call, expected, items) in kinds.items():
            for _ in range(5 if items == 1 else 1):  # warm up
                assert call().status_code == expected
            per = count * items
            print(f"\n=== {name}: {count} requests, {per} items ===")
            # 1. unprofiled: honest per-request cost and the SQL it sends
            counter.reset()
            counter.on = True
            started, cpu_started = time.perf_counter(), time.process_time()
            for _ in range(count):
                response = call()
                assert response.status_code == expected, response.get_data(as_text=True)[:300]
            wall, cpu = time.perf_counter() - started, time.process_time() - cpu_started
            counter.on = False
            print(f"unprofiled: wall {1000 * wall / count:.2f} ms/request ({1000 * wall / per:.3f} ms/item), "
                  f"CPU of this process {1000 * cpu / count:.2f} ms/request ({1000 * cpu / per:.3f} ms/item)")
            print(f"SQL: {counter.executes / count:.1f} cursor executes/request ({counter.executes / per:.2f}/item), "
                  f"{1000 * counter.seconds / count:.2f} ms/request waiting in cursor.execute")
            for statement, n in counter.statements.most_common():
                print(f"  {n / count:8.2f}/request  {statement}")
            # 2. profiled (cProfile roughly doubles the time; read it for proportions)
            profiler = cProfile.Profile(time.process_time) if args.cpu else cProfile.Profile()
            profiler.enable()
            for _ in range(count):
                call()
            profiler.disable()
            print_breakdown(pstats.Stats(profiler), count)
            for order in ("cumulative", "tottime"):
                out = io.StringIO()
                stats = pstats.Stats(profiler, stream=out)
                stats.sort_stats(order).print_stats(args.top)
                print(f"--- cProfile by {order} ---")
                print("\n".join(line for line in out.getvalue().splitlines()[6:] if line.strip()))
            if args.pstats:
                stats.dump_stats(f"{args.pstats}-{name.split()[0]}.pstats")
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
