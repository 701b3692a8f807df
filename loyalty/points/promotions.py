"""Promotions (docs/api.md "Promotions"): what one is (PromotionSpec) and its rules, creating, editing and
ending one, and, in the sale path, which promotions a sale matches and how many points each may give.

Stacking: a sale earns its base points, plus each matching promotion's extra (a multiplier on the base
points of the matching lines, or of the whole sale when the promotion names no SKU or category, and/or
a fixed bonus), then x the tier multiplier. A promotion's points are its extra x the tier multiplier,
rounded down: what the member receives from it, what the sale's answer lists and what its budget and
per-member limit count.

Limits are exact under concurrency, like coupons' (loyalty/campaigns/redemption.py): the member's
points from a promotion and the promotion's points given are each moved by a conditional UPDATE
(`... WHERE points + n <= limit`). When the full grant no longer fits, the row is locked and the grant
is cut to what remains, so the last sale takes the budget exactly to its end and later sales get
nothing from that promotion (the sale itself is never refused for it). Budgets and limits count
points given: a refund reverses the member's points but does not give them back to the budget.
"""

import re
from dataclasses import asdict, dataclass, fields, replace
from datetime import datetime, time
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from loyalty.audit import record_audit
from loyalty.auth.models import Store
from loyalty.campaigns.segment_models import Segment, SegmentMember
from loyalty.errors import NotFound, ValidationFailed
from loyalty.money import MAX_MONEY
from loyalty.points.earning import SaleLine
from loyalty.points.models import MAX_POINTS, Tier
from loyalty.points.promotion_models import Promotion, PromotionGrant, PromotionMemberPoints

CHANNELS = ("pos", "online")
LIST_FIELDS = ("tiers", "stores", "channels", "skus", "categories", "days_of_week")
# The range of each optional number (None: not set).
FIELD_RANGES = {
    "multiplier_percent": (101, 10_000),
    "bonus_points": (1, MAX_POINTS),
    "min_spend": (0, MAX_MONEY),
    "per_member_limit": (1, MAX_POINTS),
    "budget_points": (1, 10**12),
}
HOUR = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")


@dataclass(frozen=True)
class Hours:
    """A daily window in the store's time zone, `start` included, `end` excluded ("24:00" is midnight
    at the day's end); a window whose end is before its start runs over midnight."""

    start: str
    end: str

    def contains(self, local: time) -> bool:
        now = local.strftime("%H:%M")
        end = "24:00" if self.end == "24:00" else self.end
        if self.start < end:
            return self.start <= now < end
        return now >= self.start or now < end


@dataclass(frozen=True)
class PromotionSpec:
    """A promotion as a marketer or an integrator describes it: empty tuples are "any", None numbers
    "no limit"; `min_spend` is on the sale's subtotal."""

    name: str
    multiplier_percent: int | None = None
    bonus_points: int | None = None
    tiers: tuple[str, ...] = ()
    segment_id: int | None = None
    stores: tuple[str, ...] = ()
    channels: tuple[str, ...] = ()
    skus: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    min_spend: int = 0
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    days_of_week: tuple[int, ...] = ()
    hours: Hours | None = None
    per_member_limit: int | None = None
    budget_points: int | None = None

    @classmethod
    def of(cls, promotion: Promotion) -> "PromotionSpec":
        """The spec a stored promotion keeps to (what an edit starts from)."""
        values = {field.name: getattr(promotion, field.name) for field in fields(cls) if field.name != "hours"}
        hours = Hours(promotion.hours_from, promotion.hours_to) if promotion.hours_from else None
        return cls(**{**values, **{name: tuple(values[name] or ()) for name in LIST_FIELDS}}, hours=hours)


def check_promotion(spec: PromotionSpec) -> None:
    """Raise ValidationFailed naming every field that breaks a rule."""
    errors: dict[str, list[str]] = {}
    if not 1 <= len(spec.name.strip()) <= 200:
        errors["name"] = ["Length must be between 1 and 200."]
    for name, (low, high) in FIELD_RANGES.items():
        number = getattr(spec, name)
        if number is not None and not low <= number <= high:
            errors[name] = [f"Must be greater than or equal to {low} and less than or equal to {high}."]
    if spec.multiplier_percent is None and spec.bonus_points is None:
        errors["multiplier_percent"] = ["Give multiplier_percent, bonus_points or both."]
    if any(day not in range(1, 8) for day in spec.days_of_week):
        errors["days_of_week"] = ["Each day must be 1 (Monday) to 7 (Sunday)."]
    if any(channel not in CHANNELS for channel in spec.channels):
        errors["channels"] = [f"Each channel must be one of: {', '.join(CHANNELS)}."]
    if spec.hours is not None:
        if not HOUR.match(spec.hours.start) or not (HOUR.match(spec.hours.end) or spec.hours.end == "24:00"):
            errors["hours"] = ["from and to must be times HH:MM (to may be 24:00)."]
        elif spec.hours.start == spec.hours.end:
            errors["hours"] = ["from and to must differ."]
    if spec.starts_at and spec.ends_at and spec.ends_at <= spec.starts_at:
        errors["ends_at"] = ["Must be after starts_at."]
    if errors:
        raise ValidationFailed("the promotion breaks the rules", errors=errors)


def _values(session: Session, spec: PromotionSpec) -> dict:
    """The columns of `spec` after checking the names it gives exist (tiers, stores, segment)."""
    check_promotion(spec)
    values = asdict(spec)
    del values["hours"]
    for name in LIST_FIELDS:
        values[name] = list(dict.fromkeys(values[name]))
    values["hours_from"] = spec.hours.start if spec.hours else None
    values["hours_to"] = spec.hours.end if spec.hours else None
    errors = {}
    for name, model in (("tiers", Tier), ("stores", Store)):
        known = set(session.scalars(sa.select(model.code).where(model.code.in_(values[name]))))
        missing = [code for code in values[name] if code not in known]
        if missing:
            errors[name] = [f"No {name[:-1]} has the code {code!r}." for code in missing]
    if spec.segment_id is not None and not _segment_exists(session, spec.segment_id):
        errors["segment_id"] = [f"No segment has the id {spec.segment_id}."]
    if errors:
        raise ValidationFailed("the promotion names what does not exist", errors=errors)
    return values


def create_promotion(session: Session, spec: PromotionSpec, *, now: datetime, api_client=None,
                     staff_user=None) -> Promotion:
    promotion = Promotion(**_values(session, spec), points_given=0, created_at=now,
                          created_by_client_id=api_client.id if api_client else None)
    session.add(promotion)
    session.flush()
    record_audit(session, action="promotion.create", actor=staff_user, api_client=api_client, at=now,
                 after={"promotion_id": promotion.id, "name": promotion.name})
    return promotion


def update_promotion(session: Session, promotion: Promotion, changes: dict, *, now: datetime, api_client=None,
                     staff_user=None) -> Promotion:
    """Change some fields (`changes`: PromotionSpec field names, None clearing a number or list); the
    promotion they make must keep every rule a new one does, and its budget cannot go below what it
    has already given. An ended promotion stays ended."""
    locked = _locked(session, promotion.id)
    if locked.ended_at is not None:
        raise ValidationFailed("an ended promotion cannot change", errors={"ended_at": ["The promotion has ended."]})
    unknown = set(changes) - {field.name for field in fields(PromotionSpec)}
    if unknown:
        raise ValidationFailed("unknown fields", errors={name: ["Unknown field."] for name in sorted(unknown)})
    cleared = {name: () if name in LIST_FIELDS else (0 if name == "min_spend" else None)
               for name, value in changes.items() if value is None}
    spec = replace(PromotionSpec.of(locked), **{**changes, **cleared})
    values = _values(session, spec)
    if spec.budget_points is not None and spec.budget_points < locked.points_given:
        raise ValidationFailed("budget below what was given",
                               errors={"budget_points": [f"Already {locked.points_given} given."]})
    before = {name: getattr(locked, name) for name in values if getattr(locked, name) != values[name]}
    for name, value in values.items():
        setattr(locked, name, value)
    session.flush()
    record_audit(session, action="promotion.update", actor=staff_user, api_client=api_client, at=now,
                 subject=f"promotion:{locked.id}", before=_plain(before),
                 after=_plain({name: values[name] for name in before}))
    return locked


def end_promotion(session: Session, promotion: Promotion, *, now: datetime, api_client=None,
                  staff_user=None) -> Promotion:
    """Stop the promotion giving from now on; ending an ended promotion changes nothing."""
    locked = _locked(session, promotion.id)
    if locked.ended_at is None:
        locked.ended_at = now
        session.flush()
        record_audit(session, action="promotion.end", actor=staff_user, api_client=api_client, at=now,
                     subject=f"promotion:{locked.id}")
    return locked


def get_promotion(session: Session, promotion_id: int) -> Promotion:
    promotion = session.get(Promotion, promotion_id)
    if promotion is None:
        raise NotFound(f"no promotion has the id {promotion_id}")
    return promotion


def list_promotions(session: Session, *, limit: int, after_id: int | None = None) -> list[Promotion]:
    query = sa.select(Promotion).order_by(Promotion.id).limit(limit)
    if after_id is not None:
        query = query.where(Promotion.id > after_id)
    return list(session.scalars(query))


def _locked(session: Session, promotion_id: int) -> Promotion:
    return session.scalar(sa.select(Promotion).where(Promotion.id == promotion_id).with_for_update()
                          .execution_options(populate_existing=True))


def _plain(values: dict) -> dict:
    return {name: value.isoformat() if isinstance(value, datetime) else value for name, value in values.items()}


def _segment_exists(session: Session, segment_id: int) -> bool:
    return session.get(Segment, segment_id) is not None


# --- in the sale path ----------------------------------------------------------------------------

@dataclass(frozen=True)
class SaleContext:
    """What targeting reads of a sale: the member and the tier held before it, the store, the basket."""

    member_id: int
    tier_code: str
    store_code: str
    store_timezone: str
    channel: str
    occurred_at: datetime
    subtotal: int
    lines: tuple[SaleLine, ...]


@dataclass(frozen=True)
class PromotionPoints:
    """What one promotion gave one sale."""

    promotion_id: int
    name: str
    points: int

    def response(self) -> dict:
        return {"id": self.promotion_id, "name": self.name, "points": self.points}


def running_promotions(session: Session, earliest: datetime) -> list[Promotion]:
    """Promotions not ended by hand that may still cover a sale at or after `earliest`, by id (the order
    their rows are locked in)."""
    return list(session.scalars(
        sa.select(Promotion)
        .where(Promotion.ended_at.is_(None), sa.or_(Promotion.ends_at.is_(None), Promotion.ends_at > earliest))
        .order_by(Promotion.id)
    ))


def matches(promotion: Promotion, sale: SaleContext, segments: set[int]) -> bool:
    """Whether `promotion` covers `sale`; `segments` are the ids of the saved segments the member is in."""
    local = sale.occurred_at.astimezone(ZoneInfo(sale.store_timezone))
    return (
        (promotion.starts_at is None or promotion.starts_at <= sale.occurred_at)
        and (promotion.ends_at is None or sale.occurred_at < promotion.ends_at)
        and sale.subtotal >= promotion.min_spend
        and (not promotion.tiers or sale.tier_code in promotion.tiers)
        and (promotion.segment_id is None or promotion.segment_id in segments)
        and (not promotion.stores or sale.store_code in promotion.stores)
        and (not promotion.channels or sale.channel in promotion.channels)
        and (not promotion.days_of_week or local.isoweekday() in promotion.days_of_week)
        and (promotion.hours_from is None or Hours(promotion.hours_from, promotion.hours_to).contains(local.time()))
        and (not (promotion.skus or promotion.categories) or any(covers_line(promotion, line) for line in sale.lines))
    )


def covers_line(promotion: Promotion, line: SaleLine) -> bool:
    return line.sku in (promotion.skus or ()) or (
        line.category is not None and line.category in (promotion.categories or ()))


def member_segments(session: Session, member_id: int, promotions: list[Promotion]) -> set[int]:
    """The segments among those `promotions` target that the member is in now (a SegmentMember row)."""
    wanted = {promotion.segment_id for promotion in promotions if promotion.segment_id is not None}
    if not wanted:
        return set()
    return set(session.scalars(sa.select(SegmentMember.segment_id).where(
        SegmentMember.member_id == member_id, SegmentMember.segment_id.in_(wanted))))


def claim_points(session: Session, promotion: Promotion, member_id: int, wanted: int) -> int:
    """Claim up to `wanted` points of `promotion` for the member: as many as its per-member limit and its
    budget still allow (see module doc); 0 when either is spent."""
    if wanted <= 0:
        return 0
    granted = wanted
    if promotion.per_member_limit is not None:
        granted = _claim_member_points(session, promotion, member_id, wanted)
    if granted:
        budget_granted = _claim_budget(session, promotion, granted)
        if budget_granted < granted and promotion.per_member_limit is not None:
            # The budget ran out first: the member keeps only the share of the limit they were given.
            uses = PromotionMemberPoints.__table__
            session.execute(sa.update(uses).where(uses.c.promotion_id == promotion.id, uses.c.member_id == member_id)
                            .values(points=uses.c.points - (granted - budget_granted)))
        granted = budget_granted
    return granted


def _claim_member_points(session: Session, promotion: Promotion, member_id: int, wanted: int) -> int:
    uses = PromotionMemberPoints.__table__
    row = (uses.c.promotion_id == promotion.id) & (uses.c.member_id == member_id)
    dialect = session.connection().dialect.name
    insert = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}[dialect]
    session.execute(insert(uses).values(promotion_id=promotion.id, member_id=member_id, points=0)
                    .on_conflict_do_nothing())
    return _claim_within(session, uses, row, uses.c.points, promotion.per_member_limit, wanted)


def _claim_budget(session: Session, promotion: Promotion, wanted: int) -> int:
    promotions = Promotion.__table__
    return _claim_within(session, promotions, promotions.c.id == promotion.id, promotions.c.points_given,
                         promotion.budget_points, wanted)


def _claim_within(session: Session, table: sa.Table, row, counter, limit: int | None, wanted: int) -> int:
    """Add up to `wanted` to `counter` of `row`, never past `limit` (None: no limit); how much was added.
    The full amount is one conditional UPDATE; only when it does not fit is the row locked and read, to
    give exactly what remains."""
    fits = sa.true() if limit is None else counter + wanted <= limit
    if session.execute(sa.update(table).where(row, fits).values({counter.name: counter + wanted})).rowcount == 1:
        return wanted
    given = session.scalar(sa.select(counter).where(row).with_for_update())
    remaining = min(wanted, limit - given)
    if remaining <= 0:
        return 0
    session.execute(sa.update(table).where(row, counter + remaining <= limit)
                    .values({counter.name: counter + remaining}))
    return remaining


def record_grants(session: Session, transaction_id: int, member_id: int, granted: list[PromotionPoints],
                  now: datetime) -> None:
    for grant in granted:
        session.add(PromotionGrant(transaction_id=transaction_id, promotion_id=grant.promotion_id,
                                   member_id=member_id, points=grant.points, created_at=now))
