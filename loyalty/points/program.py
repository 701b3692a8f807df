"""Read access to the program's settings, tiers and active earning rules, which every sale needs.

`load_program` returns frozen copies of the rows (same attribute names as the models), kept for a few
seconds per process by loyalty/cache.py; to change the program, change the model rows.
"""

from dataclasses import dataclass, fields
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from loyalty.cache import cached, watch
from loyalty.points.models import EarningRule, ProgramSettings, Tier

watch(ProgramSettings, Tier, EarningRule)


@dataclass(frozen=True)
class SettingsValues:
    """The editable settings, whole: earn `earn_points` for every `earn_per_minor` minor units paid,
    `redeem_points` are worth `redeem_value_minor`, lots last `lot_lifetime_days` after `hold_days`
    on hold, qualifying points count over `tier_window_days`, a tier is kept `tier_hold_days`."""

    earn_points: int
    earn_per_minor: int
    redeem_points: int
    redeem_value_minor: int
    lot_lifetime_days: int
    hold_days: int
    tier_window_days: int
    tier_hold_days: int

    @classmethod
    def of(cls, settings: "ProgramSettings | SettingsValues") -> "SettingsValues":
        return cls(**{field.name: getattr(settings, field.name) for field in fields(cls)})


@dataclass(frozen=True)
class SettingsCopy(SettingsValues):
    """The settings row as every sale reads it: the editable values, the row's id and the currency,
    which no screen changes."""

    id: int
    currency: str


@dataclass(frozen=True)
class TierCopy:
    id: int
    code: str
    name: str
    rank: int
    threshold: int
    multiplier_percent: int
    benefits: str
    stripe_price_id: str | None

    multiplier = Tier.multiplier


@dataclass(frozen=True)
class EarningRuleCopy:
    id: int
    name: str
    sku: str | None
    category: str | None
    multiplier_percent: int
    min_spend: int
    starts_at: datetime | None
    ends_at: datetime | None
    active: bool


def _copy(kind, row):
    return kind(**{field.name: getattr(row, field.name) for field in fields(kind)})


@dataclass(frozen=True)
class Program:
    settings: SettingsCopy
    # Ascending rank: tiers[0] is where every member starts.
    tiers: tuple[TierCopy, ...]
    earning_rules: tuple[EarningRuleCopy, ...]

    def tier(self, tier_id: int) -> TierCopy:
        return next(tier for tier in self.tiers if tier.id == tier_id)

    @property
    def entry_tier(self) -> Tier:
        return self.tiers[0]

    def tier_for(self, qualifying_points: int) -> Tier:
        """The highest tier whose threshold the qualifying points reach."""
        qualified = self.tiers[0]
        for tier in self.tiers:
            if qualifying_points >= tier.threshold:
                qualified = tier
        return qualified

    def next_tier(self, tier: Tier) -> Tier | None:
        higher = [candidate for candidate in self.tiers if candidate.rank > tier.rank]
        return higher[0] if higher else None

    def lot_dates(self, occurred_at: datetime) -> tuple[datetime, datetime]:
        """(available_at, expires_at) of points earned at `occurred_at`. Expiry falls at the UTC midnight
        after the lifetime ends, so a day's lots expire together and read as one date."""
        available_at = occurred_at + timedelta(days=self.settings.hold_days)
        end = occurred_at + timedelta(days=self.settings.lot_lifetime_days)
        midnight = end.replace(hour=0, minute=0, second=0, microsecond=0)
        expires_at = midnight if midnight == end else midnight + timedelta(days=1)
        return available_at, expires_at

    def qualifying_window_start(self, now: datetime) -> datetime:
        return now - timedelta(days=self.settings.tier_window_days)


def load_program(session: Session) -> Program:
    return cached(("program", str(session.get_bind().url)), lambda: _read_program(session))


def _read_program(session: Session) -> Program:
    settings = session.scalars(sa.select(ProgramSettings).order_by(ProgramSettings.id)).first()
    if settings is None:
        raise RuntimeError("no program settings: run `loyalty db upgrade` first")
    tiers = list(session.scalars(sa.select(Tier).order_by(Tier.rank)))
    rules = list(session.scalars(sa.select(EarningRule).where(EarningRule.active.is_(True))))
    return Program(settings=_copy(SettingsCopy, settings), tiers=tuple(_copy(TierCopy, tier) for tier in tiers),
                   earning_rules=tuple(_copy(EarningRuleCopy, rule) for rule in rules))
