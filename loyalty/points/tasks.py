"""Periodic points jobs. Thin: each commits what one service call did, so a crash loses at most one
batch, and a rerun picks up where it stopped."""

from loyalty.clock import utcnow
from loyalty.extensions import db
from loyalty.jobs import commit_until_done, task
from loyalty.points import services
from loyalty.points.program import load_program
from loyalty.points.tiers import evaluate_tiers as evaluate_member_tiers


@task
def expire_lots() -> int:
    now = utcnow()
    return commit_until_done(lambda: services.expire_lots(db.session, now))


@task
def release_holds() -> int:
    released = services.release_holds(db.session, utcnow())
    db.session.commit()
    return released


@task
def evaluate_tiers() -> dict[str, int]:
    counts = evaluate_member_tiers(db.session, load_program(db.session), utcnow())
    db.session.commit()
    return counts
