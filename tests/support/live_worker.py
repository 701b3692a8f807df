"""`loyalty worker` as tests/support/live.py runs it (`main`): the production command with a schedule of seconds
instead of minutes, so that a test sees several periods. The sweeper (loyalty.jobs.sweep) runs every
SWEEP_SECONDS instead of every minute, and a probe job, `record_run`, every PROBE_SECONDS writes a row
to the `live_periodic_runs` table (made by tests/support/live_setup.py): how many times the schedulers
of all workers together ran it."""

import sys
from dataclasses import replace

import sqlalchemy as sa
from rq import get_current_job

from loyalty.extensions import db
from loyalty.jobs import PeriodicJob, task

SWEEP_SECONDS = 3
PROBE_SECONDS = 2
PERIODIC_RUNS = sa.table("live_periodic_runs", sa.column("enqueued_at"))


@task
def record_run() -> None:
    db.session.execute(sa.insert(PERIODIC_RUNS).values(enqueued_at=get_current_job().enqueued_at))
    db.session.commit()


def main() -> None:
    import loyalty.worker
    from loyalty.cli import main as run_cli

    # croniter reads a sixth field as seconds.
    loyalty.worker.PERIODIC_JOBS = (
        *(replace(job, cron=f"* * * * * */{SWEEP_SECONDS}") if job.name == "sweep" else job
          for job in loyalty.worker.PERIODIC_JOBS),
        PeriodicJob("live-probe", "tests.support.live_worker.record_run", f"* * * * * */{PROBE_SECONDS}",
                    queue="default", timeout=60),
    )
    sys.argv = ["loyalty", "worker"]
    run_cli()
