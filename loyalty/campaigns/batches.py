"""Bulk issue of single-use codes, and their CSV export.

A batch is created in the caller's transaction, then issued by a job (loyalty.campaigns.tasks) in
chunks: each chunk's coupons are one multi-row INSERT, committed together with the batch's progress
counter, so progress is visible while it runs and a crashed or repeated run carries on from the last
committed chunk instead of issuing twice.

A batch never waits on a dead worker: RQ tries a failed or killed run again (COUPON_BATCH_RETRY_INTERVALS),
and the sweeper (loyalty.jobs.sweep) starts again any queued or running batch whose progress has not
moved for COUPON_BATCH_STALL_SECONDS. "failed" is final and means the batch itself cannot be issued
(an error that a retry would meet again); an outage (database or Redis unreachable, a killed or timed
out run) leaves it queued or running, to be resumed.
"""

from collections.abc import Iterator, Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from loyalty.auth.models import StaffUser
from loyalty.campaigns import codes
from loyalty.campaigns.models import Coupon, CouponBatch, Offer
from loyalty.campaigns.services import coupon_expiry, refuse_ended_offer
from loyalty.csv_export import line as csv_line
from loyalty.errors import NotFound, ValidationFailed
from loyalty.members.models import Member

CHUNK = 5_000
MAX_BATCH = 1_000_000
# Well under every backend's limit on bound parameters in one statement.
LOOKUP_CHUNK = 2_000
CSV_COLUMNS = ("code", "member_no", "status", "expires_at", "uses_left")


def create_batch(session: Session, offer: Offer, *, now: datetime, count: int | None = None,
                 member_ids: Sequence[int] | None = None, staff_user: StaffUser | None = None) -> CouponBatch:
    """A batch of `count` unassigned single-use codes, or one personal coupon for each member id. Run
    it with loyalty.campaigns.tasks.enqueue_batch after committing."""
    refuse_ended_offer(offer, now)
    if (count is None) == (member_ids is None):
        raise ValidationFailed("say how many codes, or for whom", errors={"count": ["Give count or member_ids."]})
    if member_ids is not None:
        member_ids = list(dict.fromkeys(int(member_id) for member_id in member_ids))
        count = len(member_ids)
    if not 1 <= count <= MAX_BATCH:
        raise ValidationFailed("batch size out of range", errors={"count": [f"Between 1 and {MAX_BATCH}."]})
    batch = CouponBatch(offer=offer, requested=count, issued=0, status="queued", member_ids=member_ids,
                        created_by_staff_id=staff_user.id if staff_user else None, created_at=now)
    session.add(batch)
    session.flush()
    return batch


def active_member_ids_in_tier(session: Session, tier_id: int) -> list[int]:
    """Whom a "one coupon for each member of this tier" batch is for: the tier's active members, by id."""
    return list(session.scalars(
        sa.select(Member.id).where(Member.tier_id == tier_id, Member.status == "active").order_by(Member.id)))


def offer_batches(session: Session, offer: Offer, *, limit: int = 20) -> list[CouponBatch]:
    """The offer's latest batches, newest first."""
    return list(session.scalars(
        sa.select(CouponBatch).where(CouponBatch.offer_id == offer.id).order_by(CouponBatch.id.desc()).limit(limit)))


def get_batch(session: Session, batch_id: int) -> CouponBatch:
    batch = session.get(CouponBatch, batch_id)
    if batch is None:
        raise NotFound(f"no coupon batch has the id {batch_id}")
    return batch


def issue_next_chunk(session: Session, batch_id: int, now: datetime, *, chunk_size: int = CHUNK) -> int:
    """Issue the batch's next chunk; returns how many coupons, 0 once the batch is complete."""
    batch = session.scalar(sa.select(CouponBatch).where(CouponBatch.id == batch_id).with_for_update()
                           .execution_options(populate_existing=True))
    if batch is None:
        raise NotFound(f"no coupon batch has the id {batch_id}")
    if batch.status in ("done", "failed"):
        return 0
    start = batch.issued
    size = min(chunk_size, batch.requested - start)
    if size > 0:
        expires_at = coupon_expiry(batch.offer, now, single_use=True)
        members = batch.member_ids[start:start + size] if batch.member_ids is not None else [None] * size
        session.execute(sa.insert(Coupon.__table__), [
            {"code": code, "offer_id": batch.offer_id, "member_id": member_id, "batch_id": batch.id,
             "generic": False, "status": "issued", "uses_limit": 1, "uses_count": 0, "expires_at": expires_at,
             "issued_at": now}
            for code, member_id in zip(fresh_codes(session, size), members, strict=True)
        ])
    batch.issued = start + size
    batch.progress_at = now
    batch.status = "done" if batch.issued == batch.requested else "running"
    if batch.status == "done":
        batch.finished_at = now
    session.flush()
    return size


def stalled_batch_ids(session: Session, still_since: datetime) -> list[int]:
    """Batches queued or running whose last chunk (or creation) is older than `still_since`."""
    return list(session.scalars(
        sa.select(CouponBatch.id)
        .where(CouponBatch.status.in_(("queued", "running")),
               sa.func.coalesce(CouponBatch.progress_at, CouponBatch.created_at) < still_since)
        .order_by(CouponBatch.id)))


def mark_failed(session: Session, batch_id: int, error: str, now: datetime) -> None:
    batch = session.get(CouponBatch, batch_id)
    if batch is not None and batch.status != "done":
        batch.status, batch.error, batch.finished_at = "failed", error[:2000], now
        session.flush()


def fresh_codes(session: Session, count: int) -> list[str]:
    """`count` new codes no coupon has yet (a clash at 54 random bits is all but impossible; this makes
    a chunk's INSERT not fail on one anyway)."""
    found: dict[str, None] = {}
    while len(found) < count:
        candidates = [code for code in codes.generate_codes(count - len(found)) if code not in found]
        taken: set[str] = set()
        for start in range(0, len(candidates), LOOKUP_CHUNK):
            part = candidates[start:start + LOOKUP_CHUNK]
            taken.update(session.scalars(sa.select(Coupon.code).where(Coupon.code.in_(part))))
        found.update((code, None) for code in candidates if code not in taken)
    return list(found)


def export_batch_csv(session: Session, batch: CouponBatch) -> Iterator[str]:
    """The batch's coupons as CSV text, a header line and then one line per coupon, streamed."""
    yield csv_line(CSV_COLUMNS)
    rows = session.execute(
        sa.select(Coupon.code, Member.member_no, Coupon.status, Coupon.expires_at, Coupon.uses_limit,
                  Coupon.uses_count)
        .outerjoin(Member, Member.id == Coupon.member_id)
        .where(Coupon.batch_id == batch.id).order_by(Coupon.id)
        .execution_options(yield_per=CHUNK)
    )
    for code, member_no, status, expires_at, uses_limit, uses_count in rows:
        expiry = expires_at.isoformat().replace("+00:00", "Z") if expires_at else ""
        uses_left = uses_limit - uses_count if status == "issued" else 0
        yield csv_line((codes.display(code), member_no or "", status, expiry, uses_left))
