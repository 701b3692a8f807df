#!/usr/bin/env python
"""What the operations hooks cost every request (not a test): the request id, the metrics and the
access line of loyalty/logs.py and loyalty/metrics.py, in-process, without a database.

A Flask app of the operations parts only (tests/operations/ops_only_app.py shape) answers
`GET /healthz` through the test client, --requests times per variant, in --rounds alternating
rounds; the figure is this thread's CPU time per request (`time.thread_time`), whose differences
between variants are the hooks' cost. On a busy machine CPU time per request grows with the
contention (caches, shared cores): compare the minimum over rounds, the least disturbed.

- bare: no hooks at all;
- id: request id and X-Request-Id only;
- id+metrics: request id and X-Request-Id, the request counter and histogram (LOG_LEVEL WARNING: no
  access line);
- id+metrics+json / id+metrics+text: and the access line, written to /dev/null in either format.

Prints the minimum and median per variant and writes bench/results/request_hooks-<UTC date-time>.json.

    cd /work/main && . .venv/bin/activate
    python bench/request_hooks.py                  # 15 rounds of 2,000 requests per variant
"""

import argparse
import json
import logging
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from flask import Flask

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from loyalty.config import DefaultConfig  # noqa: E402
from loyalty.logs import register_logging  # noqa: E402
from loyalty.metrics import register_metrics  # noqa: E402
from loyalty.operations import operations  # noqa: E402

VARIANTS = {
    "bare": {},
    "id": {"logs": True, "LOG_LEVEL": "WARNING"},
    "id+metrics": {"logs": True, "metrics": True, "LOG_LEVEL": "WARNING"},
    "id+metrics+json": {"logs": True, "metrics": True, "LOG_FORMAT": "json"},
    "id+metrics+text": {"logs": True, "metrics": True, "LOG_FORMAT": "text"},
}


def build(logs: bool = False, metrics: bool = False, **config) -> Flask:
    app = Flask("bench")
    app.config.from_object(DefaultConfig)
    app.config.update(config)
    logging.getLogger().handlers[:] = []
    if logs:
        register_logging(app)
    if metrics:
        register_metrics(app)
    app.register_blueprint(operations)
    return app


def cpu_per_request(app: Flask, requests: int) -> float:
    client = app.test_client()
    for _ in range(200):
        client.get("/healthz")
    started = time.thread_time()
    for _ in range(requests):
        client.get("/healthz")
    return (time.thread_time() - started) / requests * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    runs: dict[str, list[float]] = {name: [] for name in VARIANTS}
    stderr, sys.stderr = sys.stderr, open("/dev/null", "w")  # the access lines
    try:
        for _ in range(args.rounds):
            for name, options in VARIANTS.items():
                runs[name].append(round(cpu_per_request(build(**options), args.requests), 1))
    finally:
        sys.stderr.close()
        sys.stderr = stderr
    bare = min(runs["bare"])
    for name, values in runs.items():
        print(f"{name:16} min {min(values):6.1f} µs CPU per request (+{min(values) - bare:5.1f}), "
              f"median {statistics.median(values):6.1f}")
    out = REPO / "bench" / "results" / f"request_hooks-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"requests": args.requests, "runs_us": runs}, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
