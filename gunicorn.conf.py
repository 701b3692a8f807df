"""gunicorn settings for production, read from the working directory: `gunicorn 'loyalty:create_app()'`
(command-line options override them: `-w`, `--threads`, `-b`, or GUNICORN_CMD_ARGS).

Chosen by bench/ingest.py on 2 cores with 32 connections (README "Benchmarks"):
- gthread workers, one process per core, and threads enough for every connection a process holds:
  single sales that wait together in one process are posted in one DB transaction (group commit,
  loyalty/pos_api/sale_posting.py), so a process should hold many of them rather than queue them.
  2 x 32 threads did 570-700 sales/s; 4 x 16 did 380; 6 sync workers (no grouping possible) 145.
  Each process keeps a PostgreSQL connection per thread (LOYALTY_DB_POOL_SIZE, loyalty/config.py).
- gc.freeze() once the app is loaded: the collector then no longer walks the tens of thousands of
  objects every worker holds from start-up (models, schemas, routes). Without it, full collections
  stopped a worker, with all its threads, for 160-180 ms a few times a minute (the p99); with it,
  at most 9 ms.
- Prometheus multiprocess mode (loyalty/metrics.py): each worker keeps its metrics in files under
  PROMETHEUS_MULTIPROC_DIR and /metrics adds up all of them, whichever worker answers. Give the
  directory in the environment (it must be writable and belong to this server alone: its *.db files
  are deleted when gunicorn starts), or leave it unset and a temporary one is made here and removed on
  exit. It is set before anything imports prometheus_client, which reads it at import.
"""

import gc
import glob
import multiprocessing
import os
import shutil
import tempfile

# Marks a directory made here, so that on_exit removes it even after a reload (HUP) re-read this file.
TEMPORARY_METRICS_DIR = "GUNICORN_LOYALTY_TEMPORARY_METRICS_DIR"
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = os.environ[TEMPORARY_METRICS_DIR] = tempfile.mkdtemp(
        prefix="loyalty-metrics-")

worker_class = "gthread"
workers = multiprocessing.cpu_count()
threads = 32


def post_worker_init(worker):
    gc.freeze()


def on_starting(server):
    """A previous run's files would be added to this run's counts: start from none."""
    for path in glob.glob(os.path.join(os.environ["PROMETHEUS_MULTIPROC_DIR"], "*.db")):
        os.remove(path)


def child_exit(server, worker):
    """A dead worker's counters stay in the sums; prometheus-client drops its live gauges."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server):
    if os.environ.get(TEMPORARY_METRICS_DIR) == os.environ["PROMETHEUS_MULTIPROC_DIR"]:
        shutil.rmtree(os.environ["PROMETHEUS_MULTIPROC_DIR"], ignore_errors=True)
