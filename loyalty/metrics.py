"""Prometheus metrics (docs/api.md "Operations endpoints"): the metric objects, the request hooks that feed
the HTTP ones, the counters the POS API bumps after each commit, and the exposition `/metrics` serves.

Under gunicorn every worker process counts on its own. With `PROMETHEUS_MULTIPROC_DIR` set in the
environment before the process starts (gunicorn.conf.py sets it up, and wipes it when gunicorn starts)
prometheus-client keeps each process's values in files there, and a scrape, whichever worker answers
it, adds up the files of all of them. Without it (development server, tests) the values live in this
process's registry, which also carries its process_* and python_* metrics.

Requests are labelled by Flask endpoint name, never by raw path, so the number of series stays that
of the routes, whatever URLs clients make up.
"""

import os
from collections.abc import Iterator
from time import perf_counter

from flask import Flask, g, request
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.multiprocess import MultiProcessCollector

# Read once, as prometheus-client itself decides when it is imported where to keep values.
MULTIPROCESS = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))

KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# The endpoint label of a request that matched no route (a 404, a 405).
UNMATCHED = "unmatched"

HTTP_REQUESTS = Counter("loyalty_http_requests", "HTTP requests answered, by Flask endpoint, method and status",
                        ["endpoint", "method", "status"])
HTTP_DURATION = Histogram("loyalty_http_request_duration_seconds",
                          "Time from the first request hook to the last, by Flask endpoint and method",
                          ["endpoint", "method"],
                          buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0))
SALES_POSTED = Counter("loyalty_sales_posted", "Sales posted through the POS API, single and batch (replays not)")
REFUNDS_POSTED = Counter("loyalty_refunds_posted", "Refunds posted through the POS API (replays not)")
POINTS_ISSUED = Counter("loyalty_points_issued", "Points earned by sales posted through the POS API")
POINTS_REDEEMED = Counter("loyalty_points_redeemed", "Points redeemed by sales posted through the POS API")
POINTS_REVERSED = Counter("loyalty_points_reversed", "Earned points taken back by refunds through the POS API")
POINTS_RESTORED = Counter("loyalty_points_restored", "Redeemed points given back by refunds through the POS API")


def register_metrics(app: Flask) -> None:
    """Count and time every request. Registered after `register_logging`, whose first hook sets
    `g.request_started`, so this hook runs just before the access line is written."""
    app.after_request(observe_request)


# (endpoint, method, status) -> its counter and histogram series: `labels()` checks and locks on every
# call, a dict lookup does not (bench/request_hooks.py). As bounded as the series themselves.
_series: dict[tuple[str, str, int], tuple] = {}


def observe_request(response):
    started = g.get("request_started")
    method = request.method
    key = (request.endpoint or UNMATCHED, method if method in KNOWN_METHODS else "other", response.status_code)
    series = _series.get(key)
    if series is None:
        endpoint, method, status = key
        series = _series.setdefault(key, (HTTP_REQUESTS.labels(endpoint, method, str(status)),
                                          HTTP_DURATION.labels(endpoint, method)))
    series[0].inc()
    if started is not None:
        series[1].observe(perf_counter() - started)
    return response


def count_sales(sales: int, points_issued: int, points_redeemed: int) -> None:
    """Sales just committed (the caller has committed: a rolled-back sale is never counted)."""
    if sales:
        SALES_POSTED.inc(sales)
        POINTS_ISSUED.inc(points_issued)
        POINTS_REDEEMED.inc(points_redeemed)


def count_refund(points_reversed: int, points_restored: int) -> None:
    """A refund just committed."""
    REFUNDS_POSTED.inc()
    POINTS_REVERSED.inc(points_reversed)
    POINTS_RESTORED.inc(points_restored)


def exposition(accept: str | None, extra_collectors=()) -> tuple[bytes, str]:
    """(body, content type) of a scrape, in the format the scraper's Accept header asks for (the
    classic text format by default): every process's metrics (one process's without multiprocess
    mode), then what `extra_collectors` read at this moment (queue lengths)."""
    registry = CollectorRegistry()
    if MULTIPROCESS:
        MultiProcessCollector(registry)
    else:
        registry.register(_ProcessRegistry())
    for collector in extra_collectors:
        registry.register(collector)
    encode, content_type = choose_encoder(accept)
    return encode(registry), content_type


class _ProcessRegistry:
    """This process's default registry, as one collector of the scrape's registry."""

    def collect(self) -> Iterator[Metric]:
        return REGISTRY.collect()


class JobQueues:
    """Jobs waiting and failed in each RQ queue, read from Redis at scrape time (one round trip). When
    Redis does not answer, the scrape goes on without them: /readyz names that failure."""

    def __init__(self, redis_url: str, queues: tuple[str, ...], timeout: float) -> None:
        self.redis_url, self.queues, self.timeout = redis_url, queues, timeout

    def collect(self) -> Iterator[Metric]:
        from redis import Redis, RedisError
        from rq import Queue

        connection = Redis.from_url(self.redis_url, socket_connect_timeout=self.timeout, socket_timeout=self.timeout)
        try:
            queues = [Queue(name, connection=connection) for name in self.queues]
            pipeline = connection.pipeline(transaction=False)
            for queue in queues:
                pipeline.llen(queue.key)
                pipeline.zcard(queue.failed_job_registry.key)
            counts = pipeline.execute()
        except RedisError:
            return iter(())
        finally:
            connection.close()
        queued = GaugeMetricFamily("loyalty_jobs_queued", "Jobs waiting in each RQ queue", labels=["queue"])
        failed = GaugeMetricFamily("loyalty_jobs_failed", "Jobs in each RQ queue's failed-job registry",
                                   labels=["queue"])
        for index, name in enumerate(self.queues):
            queued.add_metric([name], counts[2 * index])
            failed.add_metric([name], counts[2 * index + 1])
        return iter((queued, failed))
