"""Read access to the program's settings, tiers and active earning rules, which every sale needs."""

from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from loyalty.points.models import EarningRule, ProgramSettings, Tier


@dataclass
class Program:
    settings: ProgramSettings
    # Ascending rank: tiers[0] is where every member starts.
    tiers: list[Tier]
    earning_rules: list[EarningRule]

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
    settings = session.scalars(sa.select(ProgramSettings).order_by(ProgramSettings.id)).first()
    if settings is None:
        raise RuntimeError("no program settings: run `loyalty db upgrade` first")
    tiers = list(session.scalars(sa.select(Tier).order_by(Tier.rank)))
    rules = list(session.scalars(sa.select(EarningRule).where(EarningRule.active.is_(True))))
    return Program(settings=settings, tiers=tiers, earning_rules=rules)
