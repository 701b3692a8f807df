#!/usr/bin/env python
"""Where a sale's time goes (companion of bench/ingest.py; not a test).

In one process, against a throwaway PostgreSQL, through Flask's test client (no HTTP server, so
this is the app's own cost): counts the SQL statements per request with a SQLAlchemy event
listener, times them, and profiles the Python with cProfile.

    python bench/profile_sale.py                       # no-op, single sale, batch of 1,000
    python bench/profile_sale.py --requests 300 --top 40 --pstats /tmp/sale.pstats
"""

import argparse
import cProfile
import io
import pstats
import re
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ingest import SECRET_KEY, Sales, db_url, postgres, prepare_database  # noqa: E402


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
    ("  batch: per-item parse (_parse_sale)", "loyalty/pos_api/api.py", "_parse_sale"),
    ("  request fingerprint", "loyalty/pos_api/idempotency.py", "fingerprint"),
    ("  idempotency lookup", "loyalty/pos_api/idempotency.py", "find_stored"),
    ("  load_program (settings, tiers, rules)", "loyalty/points/program.py", "load_program"),
    ("  post_sales (service)", "loyalty/sales/services.py", "post_sales"),
    ("    resolve member codes", "loyalty/members/services.py", "resolve_member_codes"),
    ("    lock wallets (FOR UPDATE + lots)", "loyalty/points/ledger.py", "lock_wallets"),
    ("    qualifying points (SUM)", "loyalty/points/tiers.py", "qualifying_points"),
    ("    _post_sale (build rows, earn)", "loyalty/sales/services.py", "_post_sale"),
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
    args = parser.parse_args()

    with postgres(durable=False) as pg:
        url = db_url(pg, "postgres")
        key, members, _ = prepare_database(url, args.members, args.history)
        from loyalty import create_app
        from loyalty.extensions import db

        app = create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": SECRET_KEY,
                          "ENVIRONMENT": "production", "API_RATE_LIMIT": "100000000 per minute"})
        http = app.test_client()
        headers = {"Authorization": f"Bearer {key}"}
        sales = Sales("prof", members, 11)
        with app.app_context():
            counter = SqlCounter(db.engine)

        kinds = {
            "no-op GET /members/<unknown>": (args.requests, lambda: http.get("/api/v1/members/1000000000",
                                                                              headers=headers), 404, 1),
            "sale POST /transactions": (args.requests, lambda: http.post("/api/v1/transactions",
                                                                         json=sales.body("P"), headers=headers), 201, 1),
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
