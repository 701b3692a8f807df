"""Tier movement: upgrade the moment qualifying points cross a threshold; downgrade only by the daily
evaluation, once a tier has been held for the program's tier hold period."""

from collections.abc import Iterable
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

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


def change_tier(session: Session, member: Member, tier: TierCopy, *, reason: str, qualifying: int,
                now: datetime) -> TierChange:
    change = TierChange(
        member_id=member.id, from_tier_id=member.tier_id, to_tier_id=tier.id, reason=reason,
        qualifying_points=qualifying, created_at=now,
    )
    session.add(change)
    member.tier = session.get(Tier, tier.id)
    member.tier_id = tier.id
    member.tier_since = now
    return change


def upgrade_if_qualified(session: Session, program: Program, member: Member, qualifying: int,
                         now: datetime) -> TierChange | None:
    """Move the member up as soon as qualifying points reach a higher tier; never down."""
    qualified = program.tier_for(qualifying)
    if qualified.rank <= program.tier(member.tier_id).rank:
        return None
    return change_tier(session, member, qualified, reason="upgrade", qualifying=qualifying, now=now)


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
    for member in due:
        qualified = program.tier_for(totals[member.id])
        if qualified.rank < program.tier(member.tier_id).rank:
            change_tier(session, member, qualified, reason="downgrade", qualifying=totals[member.id], now=now)
            counts["downgraded"] += 1
        else:
            member.tier_since = now
            counts["renewed"] += 1
    return counts
