"""Changing the program: its rules of exchange and its tiers, whoever asks (the admin console today).

Every rule of a valid program is checked here, once: positive earn and redeem rates, points that
become available before they expire, tiers whose thresholds rise strictly with rank from 0 at the
entry tier, multipliers of at least x1.00. Each change locks what it reads, flushes, never commits,
and is audited with the fields it changed, before and after. The hot cache (loyalty/cache.py) watches
ProgramSettings and Tier, so once the caller commits, its own process reads the new program at once
and the others within HOT_CACHE_SECONDS.

A new threshold moves members by tiers.py's rules, counted with its `qualifying_points`: members whom
it lifts to a higher tier move up when the change is saved (an upgrade is due the moment qualifying
points reach a threshold); members who no longer qualify keep their tier until the daily evaluation
finds it held for the tier hold period, as for anybody whose points fell.
"""

from collections.abc import Iterator
from dataclasses import dataclass, fields, replace
from datetime import datetime
from typing import NamedTuple

import sqlalchemy as sa
from sqlalchemy.orm import Session

from loyalty.audit import record_audit
from loyalty.auth.models import StaffUser
from loyalty.errors import ValidationFailed
from loyalty.members.models import Member
from loyalty.points.models import ProgramSettings, Tier
from loyalty.points.program import Program, SettingsCopy, SettingsValues, TierCopy
from loyalty.points.tiers import move_tier, qualifying_points, save_tier_moves

# Members read per qualifying_points call when counting or making moves.
MEMBER_CHUNK = 2_000
MAX_RATE = 10**9
MAX_DAYS = 36_500
MAX_THRESHOLD = 10**12
MAX_MULTIPLIER_PERCENT = 10_000
NAME_MAX = 100
BENEFITS_MAX = 2_000


@dataclass(frozen=True)
class TierValues:
    """A tier's editable fields. The code stays (coupons and segments name tiers by it) and so does the
    rank: tiers are ordered by threshold, which must rise with rank."""

    name: str
    threshold: int
    multiplier_percent: int
    benefits: str

    @classmethod
    def of(cls, tier: Tier | TierCopy) -> "TierValues":
        return cls(**{field.name: getattr(tier, field.name) for field in fields(cls)})


class TierMoves(NamedTuple):
    """How many members a new threshold would move up (at once) and down (at their next evaluation)."""

    moving_up: int
    moving_down: int


# --- settings ------------------------------------------------------------------------------------

def update_program_settings(session: Session, values: SettingsValues, *, actor: StaffUser | None) -> dict:
    """Replace the settings with `values`; returns {field: (before, after)} of what changed (empty:
    nothing did, and nothing is written). New rates apply from the next sale; lifetimes and holds to
    points earned from now on (lots keep the dates they were given)."""
    _check_settings(values)
    settings = session.scalars(sa.select(ProgramSettings).order_by(ProgramSettings.id).with_for_update()).first()
    if settings is None:
        raise RuntimeError("no program settings: run `loyalty db upgrade` first")
    changed = _diff(SettingsValues.of(settings), values)
    if not changed:
        return {}
    for name, (_before, after) in changed.items():
        setattr(settings, name, after)
    session.flush()
    record_audit(session, action="program.update", actor=actor, subject="program:settings",
                 before={name: pair[0] for name, pair in changed.items()},
                 after={name: pair[1] for name, pair in changed.items()})
    return changed


def _check_settings(values: SettingsValues) -> None:
    errors: dict[str, list[str]] = {}
    for name in ("earn_points", "earn_per_minor", "redeem_points", "redeem_value_minor"):
        if not 1 <= getattr(values, name) <= MAX_RATE:
            errors[name] = [f"A whole number from 1 to {MAX_RATE}."]
    for name in ("lot_lifetime_days", "tier_window_days"):
        if not 1 <= getattr(values, name) <= MAX_DAYS:
            errors[name] = [f"From 1 to {MAX_DAYS} days."]
    if not 0 <= values.tier_hold_days <= MAX_DAYS:
        errors["tier_hold_days"] = [f"From 0 to {MAX_DAYS} days."]
    if not 0 <= values.hold_days < values.lot_lifetime_days:
        errors["hold_days"] = ["From 0 days to less than the points' lifetime: points must become "
                               "available before they expire."]
    if errors:
        raise ValidationFailed("the settings break the program's rules", errors=errors)


# --- tiers ---------------------------------------------------------------------------------------

def update_tier(session: Session, tier: Tier, values: TierValues, *, actor: StaffUser | None,
                now: datetime) -> dict:
    """Save a tier's new values; returns {field: (before, after)} of what changed, with
    "members_moved_up" when a lower threshold lifted members (moved at once, like any upgrade)."""
    tiers = _lock_tiers(session)
    tier = next(row for row in tiers if row.id == tier.id)
    values = replace(values, name=values.name.strip(), benefits=values.benefits.strip())
    _check_tier(tiers, tier, values)
    changed = _diff(TierValues.of(tier), values)
    if not changed:
        return {}
    before_program = _program_of(session, tiers)
    for name, (_before, after) in changed.items():
        setattr(tier, name, after)
    session.flush()
    after = {name: pair[1] for name, pair in changed.items()}
    if "threshold" in changed:
        after_program = _program_of(session, tiers)
        moved = _move_up_now(session, before_program, after_program, tier, now)
        after["members_moved_up"] = moved
        changed["members_moved_up"] = (0, moved)
    record_audit(session, action="tier.update", actor=actor, subject=f"tier:{tier.code}",
                 before={name: pair[0] for name, pair in changed.items() if name != "members_moved_up"},
                 after=after)
    return changed


def tier_move_preview(session: Session, tier: Tier, new_threshold: int, now: datetime) -> TierMoves:
    """How many active members `new_threshold` for `tier` would move: up (their qualifying points now
    reach a higher tier than they hold) and down (they hold a tier their points no longer reach).
    Only members whose qualified tier the change alters are counted, with tiers.py's own sums."""
    tiers = list(session.scalars(sa.select(Tier).order_by(Tier.rank)))
    tier = next(row for row in tiers if row.id == tier.id)
    _check_threshold(tiers, tier, new_threshold)
    before = _program_of(session, tiers)
    after = _with_threshold(before, tier.id, new_threshold)
    up = down = 0
    for _member_id, held, qualified_after in _altered(session, before, after, tier.id, now):
        if qualified_after.rank > held.rank:
            up += 1
        elif qualified_after.rank < held.rank:
            down += 1
    return TierMoves(up, down)


def _lock_tiers(session: Session) -> list[Tier]:
    # Thresholds are checked against the neighbours: lock them all, so two edits cannot cross.
    return list(session.scalars(sa.select(Tier).order_by(Tier.rank).with_for_update()
                                .execution_options(populate_existing=True)))


def _check_tier(tiers: list[Tier], tier: Tier, values: TierValues) -> None:
    errors: dict[str, list[str]] = {}
    if not values.name or len(values.name) > NAME_MAX:
        errors["name"] = [f"From 1 to {NAME_MAX} characters."]
    if len(values.benefits) > BENEFITS_MAX:
        errors["benefits"] = [f"At most {BENEFITS_MAX} characters."]
    if not 100 <= values.multiplier_percent <= MAX_MULTIPLIER_PERCENT:
        errors["multiplier_percent"] = ["From x1.00 to x100.00: a tier never earns less than the base rate."]
    try:
        _check_threshold(tiers, tier, values.threshold)
    except ValidationFailed as error:
        errors.update(error.errors)
    if errors:
        raise ValidationFailed("the tier breaks the program's rules", errors=errors)


def _check_threshold(tiers: list[Tier], tier: Tier, threshold: int) -> None:
    """The entry tier's threshold is 0 (every member holds a tier); each higher tier's is above the one
    below it and below the one above it."""
    index = next(index for index, row in enumerate(tiers) if row.id == tier.id)
    if index == 0:
        if threshold != 0:
            raise ValidationFailed("the entry tier starts at 0",
                                   errors={"threshold": ["The lowest tier's threshold is 0."]})
        return
    lower = tiers[index - 1].threshold
    upper = tiers[index + 1].threshold if index + 1 < len(tiers) else MAX_THRESHOLD + 1
    if not lower < threshold < upper:
        raise ValidationFailed("thresholds must rise with rank", errors={"threshold": [
            f"Above the tier below ({lower}) and below the tier above ({upper})."]})


def _program_of(session: Session, tiers: list[Tier]) -> Program:
    """The program as these tier rows (fresh, maybe edited) and the settings row make it, read now
    rather than from the hot cache."""
    settings = session.scalars(sa.select(ProgramSettings).order_by(ProgramSettings.id)).first()
    return Program(settings=_copy(SettingsCopy, settings),
                   tiers=tuple(_copy(TierCopy, row) for row in sorted(tiers, key=lambda row: row.rank)),
                   earning_rules=())


def _copy(kind, row):
    return kind(**{field.name: getattr(row, field.name) for field in fields(kind)})


def _with_threshold(program: Program, tier_id: int, threshold: int) -> Program:
    return replace(program, tiers=tuple(replace(tier, threshold=threshold) if tier.id == tier_id else tier
                                        for tier in program.tiers))


def _altered(session: Session, before: Program, after: Program, tier_id: int,
             now: datetime) -> Iterator[tuple[int, TierCopy, TierCopy]]:
    """(member id, tier held, tier qualified for after the change) of each active member whose
    qualified tier the change of `tier_id`'s threshold alters. A lower threshold can only lift members
    below the tier, a higher one only lower those at it or above, so only they are read."""
    old, new = before.tier(tier_id), after.tier(tier_id)
    if old.threshold == new.threshold:
        return
    since = before.qualifying_window_start(now)
    tier_ids = sa.select(Tier.id).where(Tier.rank < old.rank if new.threshold < old.threshold
                                        else Tier.rank >= old.rank)
    query = (sa.select(Member.id, Member.tier_id).where(Member.status == "active", Member.tier_id.in_(tier_ids))
             .order_by(Member.id).limit(MEMBER_CHUNK))
    last_id = 0
    while chunk := session.execute(query.where(Member.id > last_id)).all():
        last_id = chunk[-1][0]
        totals = qualifying_points(session, [member_id for member_id, _tier_id in chunk], since)
        for member_id, tier_id in chunk:
            qualified_before = before.tier_for(totals[member_id])
            qualified_after = after.tier_for(totals[member_id])
            if qualified_before.id != qualified_after.id:
                yield member_id, before.tier(tier_id), qualified_after


def _move_up_now(session: Session, before: Program, after: Program, tier: Tier, now: datetime) -> int:
    """Move up, at once, the members a lower threshold lifts; returns how many. Each is locked (in id
    order, as sales lock them) and judged again with its points read under the lock."""
    lifted = [member_id for member_id, held, qualified in _altered(session, before, after, tier.id, now)
              if qualified.rank > held.rank]
    since = after.qualifying_window_start(now)
    moved = 0
    for start in range(0, len(lifted), MEMBER_CHUNK):
        members = session.scalars(
            sa.select(Member).where(Member.id.in_(lifted[start:start + MEMBER_CHUNK])).order_by(Member.id)
            .with_for_update(of=Member).execution_options(populate_existing=True)).all()
        totals = qualifying_points(session, [member.id for member in members], since)
        moves = []
        for member in members:
            qualified = after.tier_for(totals[member.id])
            if qualified.rank > after.tier(member.tier_id).rank:
                moves.append(move_tier(member, qualified, reason="upgrade", qualifying=totals[member.id], now=now))
        save_tier_moves(session, moves)
        moved += len(moves)
    return moved


def _diff(before, after) -> dict:
    return {field.name: (getattr(before, field.name), getattr(after, field.name)) for field in fields(before)
            if getattr(before, field.name) != getattr(after, field.name)}
