"""How many points a sale earns. Pure arithmetic on integers: no floats, no database."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from loyalty.points.models import EarningRule, ProgramSettings, Tier


@dataclass(frozen=True)
class SaleLine:
    sku: str
    category: str | None
    amount: int


@dataclass(frozen=True)
class Earning:
    # Points at the base rate on the money paid: what tiers are qualified with.
    base_points: int
    # Extra points from earning rules and coupons, before the tier multiplier.
    bonus_points: int
    # What the member receives: floor((base + bonus) x tier multiplier).
    points: int


def base_points_for(program: ProgramSettings, amount: int) -> int:
    """Points at the base rate for `amount` minor units (fresh install: floor(amount / 100))."""
    return amount // program.earn_per_minor * program.earn_points


def compute_earning(
    program: ProgramSettings,
    tier: Tier,
    rules: Sequence[EarningRule],
    *,
    amount: int,
    subtotal: int,
    lines: Sequence[SaleLine],
    occurred_at: datetime,
    extra_bonus: int = 0,
) -> Earning:
    """Earning for a sale paid `amount` on a basket of `subtotal`, with the tier held before the sale.

    A rule restricted to SKUs or a category applies to the money actually paid for those lines (their
    share of `amount`, so discounts reduce it too); a rule with neither applies to the whole sale.
    `extra_bonus` is what coupons add (bonus points, points multipliers), also multiplied by the tier.
    """
    base = base_points_for(program, amount)
    bonus = extra_bonus
    for rule in rules:
        if not _rule_applies(rule, subtotal, occurred_at):
            continue
        if rule.sku or rule.category:
            matched = sum(line.amount for line in lines if _line_matches(rule, line))
            paid_share = matched * amount // subtotal if subtotal else 0
            rule_base = base_points_for(program, paid_share)
        else:
            rule_base = base
        bonus += rule_base * (rule.multiplier_percent - 100) // 100
    points = max(0, (base + bonus) * tier.multiplier_percent // 100)
    return Earning(base_points=base, bonus_points=bonus, points=points)


def promotion_extra(program: ProgramSettings, *, multiplier_percent: int | None, bonus_points: int | None,
                    amount: int, subtotal: int, matched_amount: int | None) -> int:
    """A promotion's extra points before the tier multiplier: its multiplier on the base points of the
    money paid for its lines (`matched_amount` of the basket, None: the whole sale), plus its bonus.
    Like a rule's, the lines' share of `amount` is what was paid for them, discounts included."""
    if matched_amount is None:
        base = base_points_for(program, amount)
    else:
        base = base_points_for(program, matched_amount * amount // subtotal if subtotal else 0)
    extra = base * (multiplier_percent - 100) // 100 if multiplier_percent else 0
    return extra + (bonus_points or 0)


def _rule_applies(rule: EarningRule, subtotal: int, occurred_at: datetime) -> bool:
    return (
        rule.active
        and subtotal >= rule.min_spend
        and (rule.starts_at is None or rule.starts_at <= occurred_at)
        and (rule.ends_at is None or occurred_at < rule.ends_at)
    )


def _line_matches(rule: EarningRule, line: SaleLine) -> bool:
    return (rule.sku is not None and line.sku == rule.sku) or (
        rule.category is not None and line.category == rule.category
    )
