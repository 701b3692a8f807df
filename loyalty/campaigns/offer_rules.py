"""What an offer is (OfferSpec) and every rule it must keep, written once for every caller: the API
and the marketing console parse what they are sent into an OfferSpec, campaigns.services checks it
with `check_offer`, and the front ends show its errors (the console in its reader's words).

The messages are the API's (docs/api.md "Offers and coupons"): each number's range first, in the
words the API's schema uses for its own fields, and only when every number is in range, the rules
between fields.
"""

from dataclasses import dataclass, fields
from datetime import datetime

from loyalty.campaigns.models import MONEY_KINDS, OFFER_KINDS, Offer
from loyalty.errors import ValidationFailed
from loyalty.money import MAX_MONEY
from loyalty.points.models import MAX_POINTS

# What `value` means for each kind, and its range; free_item takes none.
VALUE_RANGES = {
    "amount_off": (1, MAX_MONEY, "minor units off"),
    "percent_off": (1, 100, "percent off"),
    "bonus_points": (1, MAX_POINTS, "points added"),
    "points_multiplier": (101, 10_000, "percent of the sale's earning (200 = double)"),
}
# The range of each optional number (None: not set).
FIELD_RANGES = {
    "min_spend": (0, MAX_MONEY),
    "max_discount": (1, MAX_MONEY),
    "valid_days": (1, 3650),
    "per_member_limit": (1, 1_000_000),
    "budget_count": (1, 10**12),
    "budget_amount": (1, MAX_MONEY),
}
LIST_FIELDS = ("skus", "categories", "tiers")
# Only money discounts have a money cap or a money budget.
MONEY_ONLY_FIELDS = ("max_discount", "budget_amount")


@dataclass(frozen=True)
class OfferSpec:
    """An offer as a marketer or an integrator describes it. `value` is None when not given (free_item
    takes none); `min_spend` 0 is no minimum; the other None numbers are "no limit"."""

    name: str
    kind: str
    value: int | None = None
    min_spend: int = 0
    max_discount: int | None = None
    skus: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    valid_from: datetime | None = None
    valid_until: datetime | None = None
    valid_days: int | None = None
    tiers: tuple[str, ...] = ()
    per_member_limit: int | None = None
    budget_count: int | None = None
    budget_amount: int | None = None
    stackable: bool = False

    @classmethod
    def of(cls, offer: Offer) -> "OfferSpec":
        """The spec a stored offer keeps to (what an edit starts from)."""
        values = {field.name: getattr(offer, field.name) for field in fields(cls)}
        return cls(**{**values, **{name: tuple(values[name] or ()) for name in LIST_FIELDS}})


def check_offer(spec: OfferSpec) -> None:
    """Raise ValidationFailed naming every field that breaks a rule, the way the API reports it."""
    errors = _range_errors(spec) or _kind_errors(spec)
    if errors:
        raise ValidationFailed("the offer breaks the rules of its kind", errors=errors)


def _range_errors(spec: OfferSpec) -> dict[str, list[str]]:
    errors = {}
    if spec.kind not in OFFER_KINDS:
        errors["kind"] = [f"Must be one of: {', '.join(OFFER_KINDS)}."]
    for name, (low, high) in FIELD_RANGES.items():
        number = getattr(spec, name)
        if number is not None and not low <= number <= high:
            errors[name] = [f"Must be greater than or equal to {low} and less than or equal to {high}."]
    return errors


def _kind_errors(spec: OfferSpec) -> dict[str, list[str]]:
    """What each kind takes; the offer must not end before it starts."""
    errors = {}
    if spec.kind == "free_item":
        if spec.value not in (None, 0):
            errors["value"] = ["free_item takes no value: the first line whose sku is in skus is free."]
        if not spec.skus:
            errors["skus"] = ["free_item needs the SKUs it makes free."]
        if spec.categories:
            errors["categories"] = ["free_item names its lines by skus."]
    elif spec.kind in VALUE_RANGES:
        low, high, meaning = VALUE_RANGES[spec.kind]
        if spec.value is None:
            errors["value"] = ["Missing data for required field."]
        elif not low <= spec.value <= high:
            errors["value"] = [f"{spec.kind}: {meaning}, between {low} and {high}."]
    if spec.kind not in MONEY_KINDS:
        for name in MONEY_ONLY_FIELDS:
            if getattr(spec, name) is not None:
                errors[name] = [f"Only for money discounts ({', '.join(MONEY_KINDS)})."]
    if spec.valid_from and spec.valid_until and spec.valid_until <= spec.valid_from:
        errors["valid_until"] = ["Must be after valid_from."]
    return errors
