"""The marketing console's offer forms (Flask-WTF: each carries a CSRF token).

Marketers type money in yuan and dates in their store's time zone; the forms only parse what was typed
(integer fen through `loyalty.money.yuan_to_fen`, timezone-aware UTC, lists) into what campaigns.services
takes: an OfferSpec for a new offer, the changed fields for an edit. Every rule of an offer is the
service's (campaigns.offer_rules); `show_refusal` puts its errors next to their fields in the reader's
language.
"""

import re
from datetime import UTC, datetime

from flask_babel import lazy_gettext as _l
from flask_babel import to_user_timezone, to_utc
from flask_wtf import FlaskForm
from wtforms import BooleanField, IntegerField, RadioField, SelectChoice, SelectField, SelectMultipleField, StringField
from wtforms.fields import DateTimeLocalField
from wtforms.validators import DataRequired, Length, NumberRange, Optional
from wtforms.widgets import CheckboxInput, ListWidget

from loyalty.campaigns.batches import MAX_BATCH
from loyalty.campaigns.models import MONEY_KINDS, OFFER_KINDS, Offer
from loyalty.campaigns.offer_rules import FIELD_RANGES, MONEY_ONLY_FIELDS, VALUE_RANGES, OfferSpec
from loyalty.errors import ValidationFailed
from loyalty.i18n import money
from loyalty.money import fen_to_yuan, yuan_to_fen
from loyalty.web.offer_display import KIND_LABELS

# SKUs and categories are typed as a list: commas (also the Chinese ones) or spaces between them.
LIST_SEPARATORS = re.compile(r"[\s,，、;；]+")
LIST_ITEM_MAX = 64
LIST_MAX_ITEMS = 500
DATETIME_FORMAT = "%Y-%m-%dT%H:%M"
MONEY_FIELDS = ("min_spend", "max_discount", "budget_amount")
BAD_AMOUNT = _l("Enter an amount in yuan, like 128.50 (at most two decimals).")
VALUE_HINTS = {
    "amount_off": _l("Yuan off, like 10.00"),
    "percent_off": _l("Percent off, 1 to 100"),
    "bonus_points": _l("Points added to the sale"),
    "points_multiplier": _l("Percent of the sale's points, 101 to 10000 (200 = double)"),
    "free_item": _l("Leave empty: the first line with one of the SKUs is free"),
}


class MultiCheckboxField(SelectMultipleField):
    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


class OfferForm(FlaskForm):
    """What may change once an offer exists (campaigns.services.EDITABLE_FIELDS)."""

    name = StringField(_l("Offer name"), validators=[DataRequired(), Length(max=200)])
    min_spend = StringField(_l("Minimum spend (yuan)"), validators=[Optional(), Length(max=20)])
    max_discount = StringField(_l("Largest discount (yuan)"), validators=[Optional(), Length(max=20)])
    skus = StringField(_l("SKUs"), validators=[Optional(), Length(max=20_000)])
    categories = StringField(_l("Categories"), validators=[Optional(), Length(max=20_000)])
    valid_from = DateTimeLocalField(_l("Valid from"), format=DATETIME_FORMAT, validators=[Optional()])
    valid_until = DateTimeLocalField(_l("Valid until"), format=DATETIME_FORMAT, validators=[Optional()])
    valid_days = IntegerField(_l("Days a coupon lasts after issue"), validators=[Optional()])
    tiers = MultiCheckboxField(_l("Tiers"), choices=[], validate_choice=True)
    per_member_limit = IntegerField(_l("Uses per member"), validators=[Optional()])
    budget_count = IntegerField(_l("Budget: redemptions in all"), validators=[Optional()])
    budget_amount = StringField(_l("Budget: discount money in all (yuan)"), validators=[Optional(), Length(max=20)])
    stackable = BooleanField(_l("Can be combined with other coupons"))

    def __init__(self, *args, tiers: list = (), **kwargs):
        super().__init__(*args, **kwargs)
        self.tiers.choices = [SelectChoice(tier.code, f"{tier.name} ({tier.code})") for tier in tiers]
        self._parsed: dict = {}

    def offer_kind(self) -> str:
        raise NotImplementedError

    def validate(self, extra_validators=None) -> bool:
        """Parse what was typed; whether the offer keeps its kind's rules is the service's to say."""
        valid = super().validate(extra_validators)
        self._parsed = self._parse()
        return valid and not self.errors

    def _parse(self) -> dict:
        parsed = {"name": (self.name.data or "").strip()}
        for name in MONEY_FIELDS:
            parsed[name] = self._money(getattr(self, name))
        parsed["min_spend"] = parsed["min_spend"] or 0
        parsed["skus"] = self._names(self.skus)
        parsed["categories"] = self._names(self.categories)
        parsed["valid_from"] = _utc(self.valid_from.data)
        parsed["valid_until"] = _utc(self.valid_until.data)
        parsed["valid_days"] = self.valid_days.data
        parsed["tiers"] = list(self.tiers.data or [])
        parsed["per_member_limit"] = self.per_member_limit.data
        parsed["budget_count"] = self.budget_count.data
        parsed["stackable"] = bool(self.stackable.data)
        return parsed

    def show_refusal(self, error: ValidationFailed, currency: str) -> None:
        """The service's refusal next to each field it names, in the reader's words."""
        for name in error.errors or {"name": None}:
            field = self[name] if name in self else self.name
            field.errors.append(self._refusal(name, currency))

    def _refusal(self, name: str, currency: str) -> str:
        kind, typed = self.offer_kind(), self._parsed.get(name)
        if name == "skus":
            return _l("A free item needs the SKUs it makes free.")
        if name == "categories":
            return _l("A free item names its products by SKU, not category.")
        if name in MONEY_ONLY_FIELDS and kind not in MONEY_KINDS:
            return _l("Only for money discounts.")
        if name in MONEY_FIELDS and typed is not None and typed < FIELD_RANGES[name][0]:
            return _l("Must be more than zero.")
        if name in FIELD_RANGES and typed is not None and not _within(typed, FIELD_RANGES[name]):
            low, high = FIELD_RANGES[name]
            # Worded as WTForms' NumberRange, whose translation the page's other number fields use.
            return self[name].gettext("Number must be between %(min)s and %(max)s.") % {"min": low, "max": high}
        messages = {
            "tiers": _l("There is no such tier."),
            "valid_until": _l("Must be after the start."),
        }
        return messages.get(name, _l("Please check this field."))

    def _money(self, field) -> int | None:
        if not (field.data or "").strip():
            return None
        try:
            return yuan_to_fen(field.data)
        except ValidationFailed:
            field.errors.append(BAD_AMOUNT)
            return None

    def _names(self, field) -> list[str]:
        names = list(dict.fromkeys(name for name in LIST_SEPARATORS.split(field.data or "") if name))
        if any(len(name) > LIST_ITEM_MAX for name in names) or len(names) > LIST_MAX_ITEMS:
            field.errors.append(_l("At most %(count)s, each at most %(length)s characters.",
                                   count=LIST_MAX_ITEMS, length=LIST_ITEM_MAX))
        return names

    def fill_from(self, offer: Offer) -> None:
        """Show an offer's stored values as the marketer types them."""
        self.name.data = offer.name
        for name in MONEY_FIELDS:
            value = getattr(offer, name)
            getattr(self, name).data = _yuan_input(value) if value else ""
        self.skus.data = ", ".join(offer.skus or [])
        self.categories.data = ", ".join(offer.categories or [])
        self.valid_from.data = _local(offer.valid_from)
        self.valid_until.data = _local(offer.valid_until)
        self.valid_days.data = offer.valid_days
        self.tiers.data = list(offer.tiers or [])
        self.per_member_limit.data = offer.per_member_limit
        self.budget_count.data = offer.budget_count
        self.stackable.data = offer.stackable


class NewOfferForm(OfferForm):
    """A new offer also chooses its kind and value, which are fixed from then on."""

    kind = SelectField(_l("Kind"), choices=[SelectChoice(kind, label) for kind, label in KIND_LABELS.items()],
                       validators=[DataRequired()])
    value = StringField(_l("Value"), validators=[Optional(), Length(max=20)])

    def offer_kind(self) -> str:
        return self.kind.data

    def _parse(self) -> dict:
        return {**super()._parse(), "kind": self.kind.data, "value": self._value(self.kind.data)}

    def offer_spec(self) -> OfferSpec:
        """The validated form as campaigns.services.create_offer takes it."""
        return OfferSpec(**{name: tuple(value) if isinstance(value, list) else value
                            for name, value in self._parsed.items()})

    def _value(self, kind: str) -> int | None:
        typed = (self.value.data or "").strip()
        if not typed or kind not in OFFER_KINDS:
            return None
        if kind == "amount_off":
            return self._money(self.value)
        if not re.fullmatch(r"\d{1,12}", typed):
            self.value.errors.append(_l("A free item takes no value.") if kind == "free_item" else _whole_number(kind))
            return None
        return int(typed)

    def _refusal(self, name: str, currency: str) -> str:
        if name != "value":
            return super()._refusal(name, currency)
        kind = self.kind.data
        if kind == "free_item":
            return _l("A free item takes no value.")
        if self._parsed["value"] is None:
            return _l("This field is required.")
        return _l("Must be more than zero.") if kind == "amount_off" else _whole_number(kind)


class EditOfferForm(OfferForm):
    def __init__(self, *args, offer: Offer, **kwargs):
        self.offer = offer
        super().__init__(*args, **kwargs)

    def offer_kind(self) -> str:
        return self.offer.kind

    def changes(self) -> dict:
        """Only what the marketer changed, so the audit trail says what was edited."""
        current = {name: getattr(self.offer, name) for name in self._parsed}
        for name in ("skus", "categories", "tiers"):
            current[name] = list(current[name] or [])
        changed = {name: value for name, value in self._parsed.items() if value != current[name]}
        # The form shows times to the minute: one left as shown keeps its stored seconds.
        for name in ("valid_from", "valid_until"):
            shown = _local(current[name])
            if name in changed and shown is not None and getattr(self, name).data == shown.replace(second=0,
                                                                                                   microsecond=0):
                del changed[name]
        return changed

    def _refusal(self, name: str, currency: str) -> str:
        """A budget in its range is refused only for being below what is already spent."""
        typed = self._parsed.get(name)
        if name in ("budget_count", "budget_amount") and typed is not None and _within(typed, FIELD_RANGES[name]):
            if name == "budget_count":
                return _l("Already %(count)s redeemed: the budget cannot be lower.", count=self.offer.redeemed_count)
            return _l("Already %(amount)s given: the budget cannot be lower.",
                      amount=money(self.offer.discount_given, currency))
        return super()._refusal(name, currency)


class BatchForm(FlaskForm):
    target = RadioField(_l("Issue"), default="codes", choices=[
        SelectChoice("codes", _l("A number of codes to hand out (not yet anyone's)")),
        SelectChoice("tier", _l("One personal coupon for each member of a tier")),
    ])
    count = IntegerField(_l("How many codes"), validators=[Optional(), NumberRange(min=1, max=MAX_BATCH)])
    tier = SelectField(_l("Tier"), choices=[], validate_choice=False)

    def __init__(self, *args, tiers: list = (), **kwargs):
        super().__init__(*args, **kwargs)
        self.tier.choices = [SelectChoice(str(tier.id), f"{tier.name} ({tier.code})") for tier in tiers]

    def validate(self, extra_validators=None) -> bool:
        valid = super().validate(extra_validators)
        if self.target.data == "codes" and not self.count.data and not self.count.errors:
            self.count.errors.append(_l("How many codes?"))
        if self.target.data == "tier" and self.tier.data not in {choice.value for choice in self.tier.choices}:
            self.tier.errors.append(_l("Choose a tier."))
        return valid and not self.errors


def _whole_number(kind: str) -> str:
    low, high, _meaning = VALUE_RANGES[kind]
    return _l("A whole number from %(low)s to %(high)s.", low=low, high=high)


def _within(number: int, bounds: tuple[int, int]) -> bool:
    low, high = bounds
    return low <= number <= high


def _utc(local: datetime | None) -> datetime | None:
    """A time typed in the reader's zone, as timezone-aware UTC."""
    return to_utc(local).replace(tzinfo=UTC) if local else None


def _local(value: datetime | None) -> datetime | None:
    return to_user_timezone(value).replace(tzinfo=None) if value else None


def _yuan_input(fen: int) -> str:
    # What the form shows is parsed back by yuan_to_fen, which takes no thousands separators.
    return fen_to_yuan(fen).replace(",", "")
