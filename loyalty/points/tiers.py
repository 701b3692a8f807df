"""Tier movement: upgrade the moment qualifying points cross a threshold; downgrade only by the daily
evaluation, once a tier has been held for the program's tier hold period."""

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session, object_session
from sqlalchemy.orm.attributes import set_committed_value

from loyalty.bulk import insert_rows, update_rows
from loyalty.members.models import Member
from loyalty.points.models import PointsEntry, Tier, TierChange
from loyalty.points.program import Program, TierCopy

# Built once: every sale by a member below the top tier runs it.
QUALIFYING_POINTS = (
    sa.select(PointsEntry.member_id, sa.func.sum(PointsEntry.qualifying_points))
    .where(PointsEntry.member_id.in_(sa.bindparam("member_ids", expanding=True)),
           PointsEntry.occurred_at > sa.bindparam("since", type_=PointsEntry.occurred_at.type))
    .group_by(PointsEntry.member_id)
)


def qualifying_points(session: Session, member_ids: Iterable[int], since: datetime) -> dict[int, int]:
    """Base points net of reversals per member, from entries that occurred after `since`."""
    ids = list(member_ids)
    if not ids:
        return {}
    rows = session.execute(QUALIFYING_POINTS, {"member_ids": ids, "since": since})
    totals = {member_id: int(total or 0) for member_id, total in rows}
    return {member_id: totals.get(member_id, 0) for member_id in ids}


TIER_CHANGES = TierChange.__table__


def move_tier(member: Member, tier: TierCopy, *, reason: str, qualifying: int, now: datetime) -> dict:
    """Move the member to `tier` in memory (as if already saved, so the ORM writes nothing of it) and
    return the tier_changes row to save with `save_tier_moves`."""
    change = {"member_id": member.id, "from_tier_id": member.tier_id, "to_tier_id": tier.id, "reason": reason,
              "qualifying_points": qualifying, "created_at": now}
    set_committed_value(member, "tier_id", tier.id)
    set_committed_value(member, "tier_since", now)
    session = object_session(member)
    if session is not None and "tier" in sa.inspect(member).dict:
        session.expire(member, ["tier"])  # reloaded from the new tier_id if read again
    return change


def save_tier_moves(session: Session, changes: list[dict]) -> None:
    """Write the moves made by `move_tier`: the tier_changes rows and each member's latest tier (in
    one statement, not by the ORM's flush: a busy batch moves many members)."""
    if not changes:
        return
    insert_rows(session, TIER_CHANGES, changes)
    latest = {change["member_id"]: change for change in changes}
    update_rows(session, Member.__table__, [
        {"id": member_id, "tier_id": change["to_tier_id"], "tier_since": change["created_at"]}
        for member_id, change in latest.items()])


@dataclass
class Climbers:
    """The members of one unit of work who can still move up: their qualifying points as the sales
    add to them, and the upgrades made (saved by `save_tier_moves`)."""

    program: Program
    qualifying: dict[int, int]
    since: datetime
    moves: list[dict] = field(default_factory=list)

    def add(self, member: Member, base_points: int, occurred_at: datetime, now: datetime) -> None:
        """Count a sale's base points; move the member up as soon as they reach a higher tier, never down."""
        if member.id not in self.qualifying or occurred_at <= self.since:
            return
        self.qualifying[member.id] += base_points
        qualified = self.program.tier_for(self.qualifying[member.id])
        if qualified.rank > self.program.tier(member.tier_id).rank:
            self.moves.append(move_tier(member, qualified, reason="upgrade", qualifying=self.qualifying[member.id],
                                        now=now))


def climbers(session: Session, program: Program, members: Iterable[Member], now: datetime) -> Climbers:
    """The members below the top tier (the others cannot move up), with their qualifying points."""
    top_rank = program.tiers[-1].rank
    since = program.qualifying_window_start(now)
    climbing = [member.id for member in members if program.tier(member.tier_id).rank < top_rank]
    return Climbers(program, qualifying_points(session, climbing, since), since)


def evaluate_tiers(session: Session, program: Program, now: datetime) -> dict[str, int]:
    """Daily: members who have held a tier above the entry tier for the hold period keep it for another
    period if they still qualify, and otherwise move to the tier they qualify for. Safe to run twice:
    a member evaluated today has tier_since = today and is not due again for a year."""
    due_before = now - timedelta(days=program.settings.tier_hold_days)
    due = session.scalars(
        sa.select(Member)
        .join(Member.tier)
        .where(Member.status == "active", Member.tier_since <= due_before, Tier.rank > program.entry_tier.rank)
        .order_by(Member.id)
        .with_for_update(of=Member)
    ).all()
    totals = qualifying_points(session, [member.id for member in due], program.qualifying_window_start(now))
    counts = {"downgraded": 0, "renewed": 0}
    moves = []
    for member in due:
        qualified = program.tier_for(totals[member.id])
        if qualified.rank < program.tier(member.tier_id).rank:
            moves.append(move_tier(member, qualified, reason="downgrade", qualifying=totals[member.id], now=now))
            counts["downgraded"] += 1
        else:
            member.tier_since = now
            counts["renewed"] += 1
    save_tier_moves(session, moves)
    return counts
