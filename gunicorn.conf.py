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
"""

import gc
import multiprocessing

worker_class = "gthread"
workers = multiprocessing.cpu_count()
threads = 32


def post_worker_init(worker):
    gc.freeze()
