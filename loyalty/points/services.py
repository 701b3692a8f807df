"""Points verbs outside a sale: expiry, hold release, staff adjustments, and the ledger check."""

from dataclasses import dataclass, field
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from loyalty.audit import record_audit
from loyalty.auth.models import StaffUser
from loyalty.errors import ValidationFailed
from loyalty.members.models import Member
from loyalty.points.ledger import NewEntry, lock_wallet, lock_wallets, save_wallets
from loyalty.points.models import LotAllocation, PointsEntry, PointsLot
from loyalty.points.program import Program
from loyalty.sales.models import Transaction

EXPIRY_BATCH_MEMBERS = 500


def expire_lots(session: Session, now: datetime, *, max_members: int = EXPIRY_BATCH_MEMBERS) -> int:
    """Write off the remaining points of lots past their expiry, for up to `max_members` members; returns
    how many lots were expired. Idempotent: an expired lot has nothing left, so a second run finds nothing.
    Call repeatedly (committing between calls) until it returns 0."""
    member_ids = session.scalars(
        sa.select(PointsLot.member_id).where(PointsLot.remaining > 0, PointsLot.expires_at <= now)
        .group_by(PointsLot.member_id).order_by(PointsLot.member_id).limit(max_members)
    ).all()
    expired = 0
    wallets = lock_wallets(session, member_ids).values()
    for wallet in wallets:
        for lot in [lot for lot in wallet.open_lots if lot.expires_at <= now]:
            wallet.expire(lot, now=now, reason="points expired", source="job:expire-lots")
            expired += 1
    save_wallets(session, wallets)
    return expired


def release_holds(session: Session, now: datetime) -> int:
    """Mark lots whose hold has passed as released. Availability is decided by `available_at` itself, so
    a late run never delays points; the mark is what follow-ups ("your points are ready") key on."""
    result = session.execute(
        sa.update(PointsLot)
        .where(PointsLot.released_at.is_(None), PointsLot.available_at <= now, PointsLot.remaining > 0)
        .values(released_at=now)
    )
    return result.rowcount or 0


def adjust_points(session: Session, program: Program, member: Member, points: int, *, reason: str,
                  staff_user: StaffUser, now: datetime) -> NewEntry:
    """A staff correction with a reason, audited. A deduction may not take the balance below zero."""
    if points == 0:
        raise ValidationFailed("an adjustment must change the balance", errors={"points": ["Must not be zero."]})
    if not reason.strip():
        raise ValidationFailed("a reason is required", errors={"reason": ["Required."]})
    wallet = lock_wallet(session, member.id)
    before = {"points_balance": wallet.member.points_balance}
    source = {"reason": reason.strip(), "staff_user_id": staff_user.id, "source": "staff"}
    if points > 0:
        available_at, expires_at = program.lot_dates(now)
        entry = wallet.credit("adjust", points, occurred_at=now, available_at=now, expires_at=expires_at, **source)
    else:
        entry = wallet.debit("adjust", -points, occurred_at=now, allow_negative=False, **source)
    record_audit(session, action="points.adjust", actor=staff_user, member_id=member.id, at=now, before=before,
                 after={"points_balance": wallet.member.points_balance, "points": points, "reason": reason.strip()})
    save_wallets(session, [wallet])
    return entry


@dataclass
class LedgerReport:
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def verify_ledger(session: Session) -> LedgerReport:
    """Check docs/architecture.md invariants 1-4 on the live data with set-based queries; each break is reported."""
    report = LedgerReport()
    entry_sums = sa.select(PointsEntry.member_id, sa.func.sum(PointsEntry.points).label("total")) \
        .group_by(PointsEntry.member_id).subquery()
    for member_no, balance, total in session.execute(
        sa.select(Member.member_no, Member.points_balance, sa.func.coalesce(entry_sums.c.total, 0))
        .outerjoin(entry_sums, entry_sums.c.member_id == Member.id)
        .where(Member.points_balance != sa.func.coalesce(entry_sums.c.total, 0))
    ):
        report.problems.append(f"member {member_no}: cached balance {balance} != sum of entries {total}")
    _check_lots(session, report)
    _check_refunds(session, report)
    _check_append_only_guard(session, report)
    return report


def _check_append_only_guard(session: Session, report: LedgerReport) -> None:
    """Invariant 3 is enforced by triggers; a ledger whose triggers were dropped is not safe."""
    if session.get_bind().dialect.name == "postgresql":
        found = session.scalar(sa.text(
            "SELECT count(*) FROM pg_trigger WHERE tgname = 'points_entries_append_only' AND tgenabled <> 'D'"))
        expected = 1
    else:
        found = session.scalar(sa.text(
            "SELECT count(*) FROM sqlite_master WHERE type = 'trigger' AND name LIKE 'points_entries_no_%'"))
        expected = 2
    if found != expected:
        report.problems.append("points_entries has lost its append-only triggers")


def _check_lots(session: Session, report: LedgerReport) -> None:
    for lot_id, points, remaining in session.execute(
        sa.select(PointsLot.id, PointsLot.points, PointsLot.remaining)
        .where(sa.or_(PointsLot.remaining < 0, PointsLot.remaining > PointsLot.points))
    ):
        report.problems.append(f"lot {lot_id}: remaining {remaining} outside 0..{points}")
    taken = sa.select(LotAllocation.lot_id, sa.func.sum(LotAllocation.points).label("taken")) \
        .group_by(LotAllocation.lot_id).subquery()
    for lot_id, points, remaining, total in session.execute(
        sa.select(PointsLot.id, PointsLot.points, PointsLot.remaining, sa.func.coalesce(taken.c.taken, 0))
        .outerjoin(taken, taken.c.lot_id == PointsLot.id)
        .where(PointsLot.points - PointsLot.remaining != sa.func.coalesce(taken.c.taken, 0))
    ):
        report.problems.append(f"lot {lot_id}: {points - remaining} points consumed but {total} allocated")
    open_sums = sa.select(PointsLot.member_id, sa.func.sum(PointsLot.remaining).label("open")) \
        .group_by(PointsLot.member_id).subquery()
    positive_balance = sa.case((Member.points_balance > 0, Member.points_balance), else_=0)
    for member_no, balance, open_points in session.execute(
        sa.select(Member.member_no, Member.points_balance, sa.func.coalesce(open_sums.c.open, 0))
        .outerjoin(open_sums, open_sums.c.member_id == Member.id)
        .where(positive_balance != sa.func.coalesce(open_sums.c.open, 0))
    ):
        report.problems.append(f"member {member_no}: lots hold {open_points} points, balance is {balance}")


def _check_refunds(session: Session, report: LedgerReport) -> None:
    refunds = sa.select(Transaction.sale_id, sa.func.sum(Transaction.amount).label("refunded"),
                        sa.func.sum(Transaction.points_reversed).label("reversed")) \
        .where(Transaction.kind == "refund").group_by(Transaction.sale_id).subquery()
    for external_id, amount, earned, refunded, reversed_points in session.execute(
        sa.select(Transaction.external_id, Transaction.amount, Transaction.points_earned,
                  refunds.c.refunded, refunds.c.reversed)
        .join(refunds, refunds.c.sale_id == Transaction.id)
        .where(sa.or_(refunds.c.refunded > Transaction.amount, refunds.c.reversed > Transaction.points_earned,
                      refunds.c.refunded != Transaction.refunded_amount))
    ):
        report.problems.append(
            f"sale {external_id}: refunded {refunded} of {amount}, reversed {reversed_points} of {earned} earned"
        )
