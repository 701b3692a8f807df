"""Every write to the points ledger goes through a Wallet, so entries, lots, allocations and the
member's cached balance always move together (docs/architecture.md invariants 1-3).

A balance can go below zero only through a refund reversing points already spent; while it is
negative no lot has points left, and the next credit settles the debt out of its own lot first.
So at all times: SUM(lot.remaining) == max(points_balance, 0).
"""

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from loyalty.bulk import insert_rows, update_rows
from loyalty.errors import InsufficientPoints
from loyalty.members.models import Member
from loyalty.points.models import LotAllocation, PointsEntry, PointsLot

ENTRIES = PointsEntry.__table__
LOTS = PointsLot.__table__
ALLOCATIONS = LotAllocation.__table__
MEMBERS = Member.__table__

# The statements every sale runs, built once (building one costs about as much as sending it).
OPEN_LOTS = (
    sa.select(LOTS.c.member_id, LOTS.c.id, LOTS.c.transaction_id, LOTS.c.points, LOTS.c.remaining,
              LOTS.c.available_at, LOTS.c.expires_at)
    .where(LOTS.c.member_id.in_(sa.bindparam("member_ids", expanding=True)), LOTS.c.remaining > 0)
    .order_by(LOTS.c.member_id, LOTS.c.expires_at, LOTS.c.id)
)


@dataclass(frozen=True)
class PointsSummary:
    balance: int
    available: int
    pending: int
    # (points, expires_at) of the next expiry dates, soonest first.
    expiring: list[tuple[int, datetime]]


@dataclass
class NewEntry:
    """A ledger line a wallet will append; `id` is set when `save_wallets` writes it. `transaction`
    is any object whose `id` is set by then (a sale row, an ORM Transaction)."""

    member_id: int
    kind: str
    points: int
    qualifying_points: int
    occurred_at: datetime
    reason: str = ""
    transaction: object | None = None
    staff_user_id: int | None = None
    source: str = ""
    id: int | None = None

    @property
    def transaction_id(self) -> int | None:
        return self.transaction.id if self.transaction is not None else None


@dataclass
class OpenLot:
    """A lot with points left, as a wallet holds it. A new lot has no `id` until `save_wallets`."""

    id: int | None
    transaction_id: int | None
    points: int
    remaining: int
    available_at: datetime
    expires_at: datetime
    # Set on a lot this wallet credited (written by save_wallets); None for a lot read from the database.
    entry: NewEntry | None = None


@dataclass
class Wallet:
    """A member's points for one unit of work. Load it with `lock_wallets`, which locks the member
    rows, so nothing else moves these lots until the caller commits.

    Writes are kept in the wallet and appended in bulk by `save_wallets` (a few multi-row statements
    for a whole batch of sales rather than ORM objects one by one), the member's cached balance
    included: the ORM attribute shows it at once but is never flushed by the ORM."""

    session: Session
    member: Member
    # Lots with points left, consumption order: soonest expiry first.
    open_lots: list[OpenLot] = field(default_factory=list)
    new_entries: list[NewEntry] = field(default_factory=list)
    new_lots: list[OpenLot] = field(default_factory=list)
    # (entry, lot, points) taken
    new_allocations: list[tuple[NewEntry, OpenLot, int]] = field(default_factory=list)
    # Lots read from the database whose `remaining` this wallet changed, by identity.
    touched_lots: dict[int, OpenLot] = field(default_factory=dict)

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
    ) -> NewEntry:
        """Add points in a new lot; a negative balance is settled out of that lot first."""
        debt = max(0, -self.member.points_balance)
        entry = self._append(kind, points, occurred_at, qualifying_points, source)
        if points <= 0:
            return entry
        transaction = source.get("transaction")
        lot = OpenLot(id=None, transaction_id=transaction.id if transaction is not None else None, points=points,
                      remaining=points - min(debt, points), available_at=available_at, expires_at=expires_at,
                      entry=entry)
        self.new_lots.append(lot)
        if debt:
            self.new_allocations.append((entry, lot, min(debt, points)))
        if lot.remaining:
            self._insert_open_lot(lot)
        return entry

    def redeem_check(self, points: int, now: datetime) -> None:
        """Refuse, before anything is written, a redemption the available points do not cover."""
        available = self.available(now)
        if points > available:
            raise InsufficientPoints(f"{points} points requested, {available} available")

    def redeem(self, points: int, *, now: datetime, occurred_at: datetime, **source) -> NewEntry:
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
    ) -> NewEntry:
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

    def expire(self, lot: OpenLot, *, now: datetime, **source) -> NewEntry:
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

    def _append(self, kind, points, occurred_at, qualifying_points, source) -> NewEntry:
        entry = NewEntry(
            member_id=self.member.id, kind=kind, points=points, qualifying_points=qualifying_points,
            occurred_at=occurred_at, reason=source.get("reason", ""), transaction=source.get("transaction"),
            staff_user_id=source.get("staff_user_id"), source=source.get("source", ""),
        )
        self.new_entries.append(entry)
        # The balance is written by save_wallets with the other members'; the ORM is told the row
        # already holds it, so no flush sends an UPDATE of its own for each member.
        set_committed_value(self.member, "points_balance", self.member.points_balance + points)
        return entry

    def _take(self, entry: NewEntry, lots: Iterable[OpenLot], points: int) -> int:
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
            self.new_allocations.append((entry, lot, part))
            if lot.entry is None:
                self.touched_lots[id(lot)] = lot
        self.open_lots = [lot for lot in self.open_lots if lot.remaining > 0]
        return taken

    def _insert_open_lot(self, lot: OpenLot) -> None:
        self.open_lots.append(lot)
        self.open_lots.sort(key=lambda open_lot: (open_lot.expires_at, open_lot.id or 0))


def save_wallets(session: Session, wallets: Iterable[Wallet]) -> None:
    """Append what the wallets recorded: entries, then new lots (which name their entry), then
    allocations, then the new `remaining` of lots already there, then the members' cached balances;
    one statement (or COPY, see loyalty/bulk.py) per kind of row for all the wallets together. Pending
    ORM changes (an ORM Transaction an entry names) are flushed first so every id exists."""
    wallets = [wallet for wallet in wallets if wallet.new_entries]
    session.flush()
    if not wallets:
        return
    entries = [entry for wallet in wallets for entry in wallet.new_entries]
    ids = insert_rows(session, ENTRIES, [
        {"member_id": e.member_id, "kind": e.kind, "points": e.points, "qualifying_points": e.qualifying_points,
         "occurred_at": e.occurred_at, "reason": e.reason, "transaction_id": e.transaction_id,
         "staff_user_id": e.staff_user_id, "source": e.source} for e in entries], return_ids=True)
    for entry, entry_id in zip(entries, ids, strict=True):
        entry.id = entry_id
    lots = [(wallet.member.id, lot) for wallet in wallets for lot in wallet.new_lots]
    ids = insert_rows(session, LOTS, [
        {"member_id": member_id, "entry_id": lot.entry.id, "transaction_id": lot.entry.transaction_id,
         "points": lot.points, "remaining": lot.remaining, "available_at": lot.available_at,
         "expires_at": lot.expires_at} for member_id, lot in lots], return_ids=True)
    for (_, lot), lot_id in zip(lots, ids, strict=True):
        lot.id = lot_id
        lot.transaction_id = lot.entry.transaction_id
    insert_rows(session, ALLOCATIONS, [{"entry_id": entry.id, "lot_id": lot.id, "points": points}
                                       for wallet in wallets for entry, lot, points in wallet.new_allocations])
    touched = [lot for wallet in wallets for lot in wallet.touched_lots.values()]
    update_rows(session, LOTS, [{"id": lot.id, "remaining": lot.remaining} for lot in touched])
    update_rows(session, MEMBERS, [{"id": wallet.member.id, "points_balance": wallet.member.points_balance}
                                   for wallet in wallets])
    for wallet in wallets:
        wallet.new_entries, wallet.new_lots, wallet.new_allocations, wallet.touched_lots = [], [], [], {}


def lock_wallets(session: Session, member_ids: Iterable[int]) -> dict[int, Wallet]:
    """Lock the members (in id order, so concurrent units of work cannot deadlock) and load their open
    lots. On SQLite, which has no row locks, the FOR UPDATE takes the database's write lock instead
    (loyalty/db.py)."""
    ids = sorted(set(member_ids))
    if not ids:
        return {}
    members = session.scalars(
        sa.select(Member).where(Member.id.in_(ids)).order_by(Member.id).with_for_update(of=Member)
        .execution_options(populate_existing=True)
    ).all()
    return wallets_for(session, members)


def wallets_for(session: Session, locked_members: Iterable[Member]) -> dict[int, Wallet]:
    """Wallets of members the caller has already locked (see lock_wallets), with their open lots."""
    wallets = {member.id: Wallet(session, member) for member in locked_members}
    if wallets:
        for member_id, lot in _open_lots(session, list(wallets)):
            wallets[member_id].open_lots.append(lot)
    return wallets


def lock_wallet(session: Session, member_id: int) -> Wallet:
    return lock_wallets(session, [member_id])[member_id]


def load_wallet(session: Session, member: Member) -> Wallet:
    """A read-only view of a member's points (no lock): for showing, never for writing."""
    return Wallet(session, member, [lot for _, lot in _open_lots(session, [member.id])])


def _open_lots(session: Session, member_ids: list[int]) -> Iterable[tuple[int, OpenLot]]:
    """(member_id, lot) of the lots with points left, each member's in consumption order."""
    rows = session.execute(OPEN_LOTS, {"member_ids": member_ids})
    return [(member_id, OpenLot(lot_id, transaction_id, points, remaining, available_at, expires_at))
            for member_id, lot_id, transaction_id, points, remaining, available_at, expires_at in rows]
