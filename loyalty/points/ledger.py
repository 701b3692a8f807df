"""Every write to the points ledger goes through a Wallet, so entries, lots, allocations and the
member's cached balance always move together (DESIGN.md invariants 1-3).

A balance can go below zero only through a refund reversing points already spent; while it is
negative no lot has points left, and the next credit settles the debt out of its own lot first.
So at all times: SUM(lot.remaining) == max(points_balance, 0).
"""

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from loyalty.errors import InsufficientPoints
from loyalty.members.models import Member
from loyalty.points.models import LotAllocation, PointsEntry, PointsLot


@dataclass(frozen=True)
class PointsSummary:
    balance: int
    available: int
    pending: int
    # (points, expires_at) of the next expiry dates, soonest first.
    expiring: list[tuple[int, datetime]]


@dataclass
class Wallet:
    """A member's points for one unit of work. Load it with `lock_wallets`, which locks the member
    rows, so nothing else moves these lots until the caller commits."""

    session: Session
    member: Member
    # Lots with points left, consumption order: soonest expiry first.
    open_lots: list[PointsLot] = field(default_factory=list)

    def available(self, now: datetime) -> int:
        """Points that may be redeemed now: released from hold and not expired."""
        return sum(lot.remaining for lot in self.open_lots if lot.available_at <= now < lot.expires_at)

    def summary(self, now: datetime, expiry_dates: int = 3) -> PointsSummary:
        live = [lot for lot in self.open_lots if lot.expires_at > now]
        by_expiry: dict[datetime, int] = {}
        for lot in live:
            by_expiry[lot.expires_at] = by_expiry.get(lot.expires_at, 0) + lot.remaining
        return PointsSummary(
            balance=self.member.points_balance,
            available=sum(lot.remaining for lot in live if lot.available_at <= now),
            pending=sum(lot.remaining for lot in live if lot.available_at > now),
            expiring=[(points, at) for at, points in sorted(by_expiry.items())[:expiry_dates]],
        )

    def credit(
        self,
        kind: str,
        points: int,
        *,
        occurred_at: datetime,
        available_at: datetime,
        expires_at: datetime,
        qualifying_points: int = 0,
        **source,
    ) -> PointsEntry:
        """Add points in a new lot; a negative balance is settled out of that lot first."""
        debt = max(0, -self.member.points_balance)
        entry = self._append(kind, points, occurred_at, qualifying_points, source)
        if points <= 0:
            return entry
        lot = PointsLot(
            member_id=self.member.id,
            entry=entry,
            transaction=source.get("transaction"),
            points=points,
            remaining=points - min(debt, points),
            available_at=available_at,
            expires_at=expires_at,
        )
        self.session.add(lot)
        if debt:
            self.session.add(LotAllocation(entry=entry, lot=lot, points=min(debt, points)))
        if lot.remaining:
            self._insert_open_lot(lot)
        return entry

    def redeem_check(self, points: int, now: datetime) -> None:
        """Refuse, before anything is written, a redemption the available points do not cover."""
        available = self.available(now)
        if points > available:
            raise InsufficientPoints(f"{points} points requested, {available} available")

    def redeem(self, points: int, *, now: datetime, occurred_at: datetime, **source) -> PointsEntry:
        """Spend available points, soonest-expiring lots first."""
        self.redeem_check(points, now)
        usable = [lot for lot in self.open_lots if lot.available_at <= now < lot.expires_at]
        entry = self._append("redeem", -points, occurred_at, 0, source)
        self._take(entry, usable, points)
        return entry

    def debit(
        self,
        kind: str,
        points: int,
        *,
        occurred_at: datetime,
        qualifying_points: int = 0,
        prefer_transaction_id: int | None = None,
        allow_negative: bool = True,
        **source,
    ) -> PointsEntry:
        """Take points back (reversal, negative adjustment): the named sale's own lots first, then any
        lot soonest-expiry first, pending or not; what no lot covers becomes a negative balance."""
        if not allow_negative and points > self.member.points_balance:
            raise InsufficientPoints(f"{points} points requested, balance is {self.member.points_balance}")
        entry = self._append(kind, -points, occurred_at, -qualifying_points, source)
        own = [lot for lot in self.open_lots if lot.transaction_id == prefer_transaction_id]
        others = [lot for lot in self.open_lots if lot.transaction_id != prefer_transaction_id]
        taken = self._take(entry, own, points) if prefer_transaction_id is not None else 0
        self._take(entry, others, points - taken)
        return entry

    def expire(self, lot: PointsLot, *, now: datetime, **source) -> PointsEntry:
        """Write off what is left of a lot past its expiry."""
        entry = self._append("expire", -lot.remaining, now, 0, source)
        self._take(entry, [lot], lot.remaining)
        return entry

    def spent_lot_expiry(self, transaction_id: int) -> datetime | None:
        """The latest expiry among the lots a transaction's redemption took points from."""
        return self.session.scalar(
            sa.select(sa.func.max(PointsLot.expires_at))
            .join(LotAllocation, LotAllocation.lot_id == PointsLot.id)
            .join(PointsEntry, PointsEntry.id == LotAllocation.entry_id)
            .where(PointsEntry.transaction_id == transaction_id, PointsEntry.kind == "redeem")
        )

    def _append(self, kind, points, occurred_at, qualifying_points, source) -> PointsEntry:
        entry = PointsEntry(
            member_id=self.member.id,
            kind=kind,
            points=points,
            qualifying_points=qualifying_points,
            occurred_at=occurred_at,
            reason=source.get("reason", ""),
            transaction=source.get("transaction"),
            staff_user_id=source.get("staff_user_id"),
            source=source.get("source", ""),
        )
        self.session.add(entry)
        self.member.points_balance += points
        return entry

    def _take(self, entry: PointsEntry, lots: Iterable[PointsLot], points: int) -> int:
        """Consume up to `points` from `lots` in order, recording each allocation; returns points taken."""
        taken = 0
        for lot in lots:
            if taken == points:
                break
            part = min(lot.remaining, points - taken)
            if part <= 0:
                continue
            lot.remaining -= part
            taken += part
            self.session.add(LotAllocation(entry=entry, lot=lot, points=part))
        self.open_lots = [lot for lot in self.open_lots if lot.remaining > 0]
        return taken

    def _insert_open_lot(self, lot: PointsLot) -> None:
        self.open_lots.append(lot)
        self.open_lots.sort(key=lambda open_lot: (open_lot.expires_at, open_lot.id or 0))


def lock_wallets(session: Session, member_ids: Iterable[int]) -> dict[int, Wallet]:
    """Lock the members (in id order, so concurrent units of work cannot deadlock) and load their open
    lots. Row locks are a no-op on SQLite, which serialises writers anyway."""
    ids = sorted(set(member_ids))
    if not ids:
        return {}
    members = session.scalars(
        sa.select(Member).where(Member.id.in_(ids)).order_by(Member.id).with_for_update(of=Member)
        .execution_options(populate_existing=True)
    ).all()
    wallets = {member.id: Wallet(session, member) for member in members}
    lots = session.scalars(
        sa.select(PointsLot)
        .where(PointsLot.member_id.in_(ids), PointsLot.remaining > 0)
        .order_by(PointsLot.member_id, PointsLot.expires_at, PointsLot.id)
        .execution_options(populate_existing=True)
    )
    for lot in lots:
        wallets[lot.member_id].open_lots.append(lot)
    return wallets


def lock_wallet(session: Session, member_id: int) -> Wallet:
    return lock_wallets(session, [member_id])[member_id]


def load_wallet(session: Session, member: Member) -> Wallet:
    """A read-only view of a member's points (no lock): for showing, never for writing."""
    lots = session.scalars(
        sa.select(PointsLot).where(PointsLot.member_id == member.id, PointsLot.remaining > 0)
        .order_by(PointsLot.expires_at, PointsLot.id)
    ).all()
    return Wallet(session, member, list(lots))
