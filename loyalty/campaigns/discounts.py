"""How much each coupon of a sale gives: the order coupons apply in and the arithmetic of each
discount. Which coupons a sale may take, and claiming them, is loyalty.campaigns.redemption.

Order of application, whatever order the codes were listed in (ties keep the listed order):

1. free_item: the first line whose sku is in `skus` and that no earlier coupon made free;
2. percent_off: `value`% of what is left of its base, capped by `max_discount`;
3. amount_off: `value`, capped by what is left of its base (and by `max_discount` if set);
4. bonus_points: `value` points added to the sale's earning;
5. points_multiplier: the sale's earning (base rate and earning rules, before the tier multiplier)
   times `(value - 100)%` added; several multipliers add up, they do not compound.

The base of a money discount is the subtotal less the discounts applied before it; for an offer with
SKU or category conditions it is only what is left of the matching lines. No discount exceeds its
base, so the discounts together never exceed the subtotal. Percent discounts round down.
"""

from collections.abc import Sequence
from dataclasses import dataclass

from loyalty.campaigns import codes
from loyalty.campaigns.models import Coupon, Offer

APPLICATION_ORDER = {"free_item": 0, "percent_off": 1, "amount_off": 2, "bonus_points": 3, "points_multiplier": 4}


@dataclass
class AppliedCoupon:
    """A coupon of a sale: where the till listed it and, once applied, the money it takes off."""

    coupon: Coupon
    offer: Offer
    listed_at: int
    discount: int = 0

    @property
    def code(self) -> str:
        return codes.display(self.coupon.code)


def apply_discounts(applied: list[AppliedCoupon], subtotal: int, lines: Sequence[dict]) -> AppliedCoupon | None:
    """Put a sale's checked coupons in their order of application and set what each gives. Returns the
    first free_item coupon that finds no line left to make free (the sale cannot take it), else None."""
    applied.sort(key=lambda item: (APPLICATION_ORDER[item.offer.kind], item.listed_at))
    remaining = subtotal
    line_left = [line["amount"] for line in lines]
    for item in applied:
        offer = item.offer
        if offer.kind == "free_item":
            index = next((i for i, line in enumerate(lines)
                          if line["sku"] in offer.skus and line_left[i] > 0), None)
            if index is None:
                return item
            discount = min(line_left[index], remaining, offer.max_discount or line_left[index])
            line_left[index] -= discount
        elif offer.kind in ("percent_off", "amount_off"):
            matching = [i for i, line in enumerate(lines) if matches_conditions(offer, line)]
            conditioned = bool(offer.skus or offer.categories)
            base = min(remaining, sum(line_left[i] for i in matching)) if conditioned else remaining
            discount = base * offer.value // 100 if offer.kind == "percent_off" else min(offer.value, base)
            if offer.max_discount is not None:
                discount = min(discount, offer.max_discount)
            if conditioned:
                _take_from_lines(line_left, matching, discount)
        else:
            discount = 0
        item.discount = discount
        remaining -= discount
    return None


def _take_from_lines(line_left: list[int], indexes: list[int], amount: int) -> None:
    for index in indexes:
        part = min(line_left[index], amount)
        line_left[index] -= part
        amount -= part


def matches_conditions(offer: Offer, line: dict) -> bool:
    """Whether a sale line has one of the offer's SKUs or categories."""
    return line.get("sku") in (offer.skus or ()) or (
        line.get("category") is not None and line.get("category") in (offer.categories or ()))
