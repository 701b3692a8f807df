#!/usr/bin/env python
"""Coupon benchmark (not a test): bulk issue, validation and redemption in a sale, on PostgreSQL.

One run, all on this machine:

1. starts a throwaway PostgreSQL cluster (tests/support/servers.postgres_server: fsync,
   synchronous_commit and full_page_writes off), migrates it, creates store S001, a `pos` and a
   `manage` key, and --members members (bulk INSERT: setup, not measured);
2. issue: one offer, then a personal batch of --coupons coupons (one per member) through the real
   service and job: `batches.create_batch` + commit, then `tasks.issue_batch` (chunks of 5,000 codes,
   each a multi-row INSERT committed with the batch's progress). Timed end to end;
3. validate: --calls `POST /api/v1/coupons/validate` (random member's own coupon, a 2-line basket)
   through the Flask test client, each timed on its own;
4. sale: --calls `POST /api/v1/transactions` without a coupon (the baseline), then --calls with the
   member's coupon (redeemed in the sale: checks, three conditional UPDATEs in a savepoint, the
   redemption row, earning), each timed on its own;
5. prints p50/p95/p99/max and writes bench/results/coupons-<UTC date-time>.json.

Latency on a shared 2-core machine is mostly queueing for a core. So each timed phase also reports
the CPU time this process (test client + app) spent per call, and how many cores the rest of the
machine kept busy meanwhile (from /proc/stat); --wait-quiet N waits up to N seconds before each phase
for that to drop below --quiet-threshold cores.

Floors (issue 4): 100,000 codes in <= 30 s; validate p95 <= 50 ms; redeem-in-sale p95 <= 100 ms.

    cd /work/main && . .venv/bin/activate
    python bench/coupons.py                       # 100,000 members and coupons, 1,000 calls per phase
    python bench/coupons.py --coupons 20000 --calls 300
"""

import argparse
import json
import os
import platform
import random
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import sqlalchemy as sa  # noqa: E402
from flask_migrate import upgrade  # noqa: E402

from loyalty import create_app  # noqa: E402
from loyalty.auth.models import Store  # noqa: E402
from loyalty.auth.services import create_api_client  # noqa: E402
from loyalty.campaigns import batches, codes, services, tasks  # noqa: E402
from loyalty.campaigns.models import Coupon  # noqa: E402
from loyalty.extensions import db  # noqa: E402
from loyalty.members import cards  # noqa: E402
from loyalty.members.models import Member  # noqa: E402
from loyalty.members.numbers import random_member_no  # noqa: E402
from loyalty.points.program import load_program  # noqa: E402
from tests.support.servers import postgres_server  # noqa: E402

FLOORS = {"issue_seconds": 30.0, "validate_p95_ms": 50.0, "redeem_p95_ms": 100.0}
LINES = [{"sku": "A1", "category": "shoes", "amount": 9800}, {"sku": "S9", "category": "socks", "amount": 3000}]


def build_app(database_url: str):
    return create_app({"SECRET_KEY": "bench-secret-key-not-for-production", "SQLALCHEMY_DATABASE_URI": database_url,
                       "API_RATE_LIMIT": "100000000 per minute", "ENVIRONMENT": "bench",
                       "PUBLIC_BASE_URL": "https://loyalty.bench.invalid",
                       "SQLALCHEMY_ENGINE_OPTIONS": {"pool_size": 5}})


def prepare(app, members: int) -> dict:
    """Schema, store, keys and members (members by bulk INSERT: this is setup, not what is measured)."""
    with app.app_context():
        upgrade(revision="heads")
        store = Store(code="S001", name="Store S001")
        db.session.add(store)
        db.session.flush()
        _, pos_key = create_api_client(db.session, name="till", store=store, scope="pos")
        _, manage_key = create_api_client(db.session, name="crm", store=store, scope="manage")
        entry_tier = load_program(db.session).entry_tier
        numbers: set[str] = set()
        while len(numbers) < members:
            numbers.add(random_member_no())
        now = datetime.now(UTC)
        rows = [{"member_no": number, "name": f"Member {index}", "email": f"m{index}@example.com", "status": "active",
                 "enrolled_at": now, "tier_id": entry_tier.id, "tier_since": now, "points_balance": 0,
                 "card_secret": cards.new_card_secret(), "email_marketing": False, "sms_marketing": False}
                for index, number in enumerate(sorted(numbers))]
        for start in range(0, len(rows), 10_000):
            db.session.execute(sa.insert(Member.__table__), rows[start:start + 10_000])
        db.session.commit()
        return {"pos": pos_key, "manage": manage_key}


def create_offer(app, manage_key: str) -> int:
    response = app.test_client().post("/api/v1/offers", headers={"Authorization": f"Bearer {manage_key}"}, json={
        "name": "Bench 10% off", "kind": "percent_off", "value": 10, "max_discount": 5000, "min_spend": 5000,
        "valid_days": 30})
    assert response.status_code == 201, response.get_json()
    return response.get_json()["id"]


def issue(app, offer_id: int) -> dict:
    """Time the bulk issue: batch creation and commit, then the job (inline: no Redis here)."""
    with app.app_context():
        member_ids = list(db.session.scalars(sa.select(Member.id).order_by(Member.id)))
        started = time.perf_counter()
        batch = batches.create_batch(db.session, services.get_offer(db.session, offer_id), member_ids=member_ids,
                                     now=datetime.now(UTC))
        db.session.commit()
        issued = tasks.issue_batch(batch.id)
        seconds = time.perf_counter() - started
        pairs = db.session.execute(
            sa.select(Member.member_no, Coupon.code).join(Coupon, Coupon.member_id == Member.id)
            .where(Coupon.batch_id == batch.id)
        ).all()
        assert issued == len(member_ids) == len(pairs)
        return {"seconds": seconds, "issued": issued, "per_second": issued / seconds,
                "pairs": [(member_no, codes.display(code)) for member_no, code in pairs]}


def busy_cores() -> float:
    """Cores busy machine-wide (all processes), over the last second."""
    def sample():
        values = [int(value) for value in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
        return sum(values), values[3] + values[4]  # total, idle + iowait

    total, idle = sample()
    time.sleep(1)
    total2, idle2 = sample()
    return (os.cpu_count() or 1) * (1 - (idle2 - idle) / max(1, total2 - total))


def wait_quiet(seconds: float, threshold: float) -> float:
    deadline = time.monotonic() + seconds
    while True:
        busy = busy_cores()
        if busy < threshold or time.monotonic() >= deadline:
            return busy


def timed_calls(app, key: str, path: str, bodies: list[dict], expect: int) -> tuple[list[float], list[float]]:
    """Each call's wall time and this process's CPU time for it, in ms."""
    http = app.test_client()
    headers = {"Authorization": f"Bearer {key}"}
    latencies, cpu = [], []
    for body in bodies:
        started, started_cpu = time.perf_counter(), time.process_time()
        response = http.post(path, headers=headers, json=body)
        latencies.append((time.perf_counter() - started) * 1000)
        cpu.append((time.process_time() - started_cpu) * 1000)
        assert response.status_code == expect, (path, response.status_code, response.get_json())
    return latencies, cpu


def phase(app, key: str, path: str, bodies: list[dict], expect: int, args) -> dict:
    busy_before = wait_quiet(args.wait_quiet, args.quiet_threshold)
    cpu_started, wall_started = time.process_time(), time.perf_counter()
    latencies, cpu = timed_calls(app, key, path, bodies, expect)
    own_cores = (time.process_time() - cpu_started) / (time.perf_counter() - wall_started)
    figures = summary(latencies)
    figures.update(cpu_p50_ms=statistics.median(cpu), cpu_p95_ms=sorted(cpu)[int(0.95 * len(cpu))],
                   busy_cores_before=busy_before, own_cores=own_cores)
    return figures


def summary(latencies: list[float]) -> dict:
    ordered = sorted(latencies)

    def pick(share: float) -> float:
        return ordered[min(len(ordered) - 1, int(share * len(ordered)))]

    return {"calls": len(ordered), "mean_ms": statistics.fmean(ordered), "p50_ms": pick(0.50),
            "p95_ms": pick(0.95), "p99_ms": pick(0.99), "max_ms": ordered[-1]}


def sale_body(external_id: str, member_no: str, code: str | None) -> dict:
    body = {"external_id": external_id, "member": member_no, "occurred_at": datetime.now(UTC).isoformat(),
            "currency": "CNY", "amount": 12800, "subtotal": 12800, "lines": LINES}
    if code:
        body.update(amount=11520, coupons=[code])
    return body


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--coupons", type=int, default=100_000, help="members, and personal coupons (one each)")
    parser.add_argument("--calls", type=int, default=1_000, help="timed calls per phase")
    parser.add_argument("--seed", type=int, default=4)
    parser.add_argument("--wait-quiet", type=float, default=0, help="seconds to wait for a quiet machine per phase")
    parser.add_argument("--quiet-threshold", type=float, default=0.5, help="busy cores counted as quiet")
    args = parser.parse_args()
    rng = random.Random(args.seed)

    with postgres_server() as database_url:
        app = build_app(database_url)
        started = time.perf_counter()
        keys = prepare(app, args.coupons)
        print(f"setup: {args.coupons:,} members in {time.perf_counter() - started:.1f} s")
        offer_id = create_offer(app, keys["manage"])

        busy = wait_quiet(args.wait_quiet, args.quiet_threshold)
        issued = issue(app, offer_id)
        issued["busy_cores_before"] = busy
        print(f"issue: {issued['issued']:,} personal coupons in {issued['seconds']:.2f} s "
              f"({issued['per_second']:,.0f}/s)")

        pairs = rng.sample(issued["pairs"], min(len(issued["pairs"]), 3 * args.calls + 60))
        warm, validate_pairs = pairs[:60], pairs[60:60 + args.calls]
        plain_pairs, redeem_pairs = pairs[60 + args.calls:60 + 2 * args.calls], pairs[60 + 2 * args.calls:]
        timed_calls(app, keys["pos"], "/api/v1/coupons/validate",
                    [{"code": code, "member": member_no, "amount": 12800, "lines": LINES} for member_no, code in warm],
                    200)
        timed_calls(app, keys["pos"], "/api/v1/transactions",
                    [sale_body(f"W-{i}", member_no, code) for i, (member_no, code) in enumerate(warm)], 201)

        validate = phase(app, keys["pos"], "/api/v1/coupons/validate", [
            {"code": code, "member": member_no, "amount": 12800, "lines": LINES} for member_no, code in validate_pairs
        ], 200, args)
        plain = phase(app, keys["pos"], "/api/v1/transactions", [
            sale_body(f"P-{i}", member_no, None) for i, (member_no, _) in enumerate(plain_pairs)], 201, args)
        redeem = phase(app, keys["pos"], "/api/v1/transactions", [
            sale_body(f"R-{i}", member_no, code) for i, (member_no, code) in enumerate(redeem_pairs)], 201, args)

        with app.app_context():
            from loyalty.points.services import verify_ledger

            ledger_ok = verify_ledger(db.session).ok
            report = services.offer_report(db.session, services.get_offer(db.session, offer_id))
            counts = {"issued": report.issued_count, "redeemed": report.redeemed_count,
                      "discount_given": report.discount_given}

    results = {
        "when": datetime.now(UTC).isoformat(), "machine": platform.platform(), "python": platform.python_version(),
        "coupons": args.coupons, "calls": args.calls,
        "issue": {key: value for key, value in issued.items() if key != "pairs"},
        "validate": validate, "sale_without_coupon": plain, "sale_with_coupon": redeem,
        "offer_after": counts, "ledger_verify_ok": ledger_ok,
        "floors": FLOORS,
        "within_floors": {"issue": issued["seconds"] <= FLOORS["issue_seconds"],
                          "validate": validate["p95_ms"] <= FLOORS["validate_p95_ms"],
                          "redeem": redeem["p95_ms"] <= FLOORS["redeem_p95_ms"]},
    }
    print(f"{'phase':<18}{'calls':>6}{'p50 ms':>8}{'p95 ms':>8}{'p99 ms':>8}{'max ms':>8}"
          f"{'cpu p50':>9}{'cpu p95':>9}{'busy before':>12}")
    for name, figures in (("validate", validate), ("sale, no coupon", plain), ("sale + coupon", redeem)):
        print(f"{name:<18}{figures['calls']:>6}{figures['p50_ms']:>8.1f}{figures['p95_ms']:>8.1f}"
              f"{figures['p99_ms']:>8.1f}{figures['max_ms']:>8.1f}{figures['cpu_p50_ms']:>9.1f}"
              f"{figures['cpu_p95_ms']:>9.1f}{figures['busy_cores_before']:>12.2f}")
    print(f"offer after: {counts}; ledger verify ok: {ledger_ok}")
    print(f"within floors: {results['within_floors']}")
    out = REPO / "bench" / "results" / f"coupons-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(f"written: {out.relative_to(REPO)}")


if __name__ == "__main__":
    main()
