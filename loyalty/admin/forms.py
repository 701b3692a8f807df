"""The admin console's forms (Flask-WTF: every POST carries a CSRF token). They check shape only and
turn what was typed into typed values: money in yuan into integer fen by the staff console's
`yuan_to_fen` (exactly, no float), a multiplier like 1.25 into percent. The rules (positive rates,
rising thresholds, a known store) are the domain services'."""

import re
from decimal import Decimal
from functools import cache
from zoneinfo import available_timezones

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    EmailField,
    HiddenField,
    IntegerField,
    PasswordField,
    SelectChoice,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.validators import DataRequired, Email, EqualTo, InputRequired, Length, Optional, Regexp

from loyalty.auth.models import API_SCOPES, STAFF_ROLES
from loyalty.auth.services import PASSWORD_MAX_LENGTH, PASSWORD_MIN_LENGTH
from loyalty.errors import ValidationFailed
from loyalty.money import fen_to_yuan, yuan_to_fen
from loyalty.points.program_changes import SettingsValues, TierValues

DEFAULT_TIMEZONE = "Asia/Shanghai"
ROLE_LABELS = {"admin": _l("admin"), "marketer": _l("marketer"), "cashier": _l("cashier")}
SCOPE_LABELS = {"pos": _l("POS: members, sales, refunds"), "manage": _l("POS and manage: also offers and coupons")}
# A multiplier as people write it: 1, 1.5, 1.25 (hundredths at most, so it is a whole percent).
MULTIPLIER = re.compile(r"^\d{1,3}(?:\.\d{1,2})?$")
BAD_AMOUNT = _l("Enter an amount in yuan, like 1.00 (at most two decimals).")
WHOLE_NUMBER = _l("Enter a whole number.")


@cache
def timezone_choices() -> list[str]:
    """IANA zones a store can be in: the Region/City names, and UTC."""
    zones = {zone for zone in available_timezones()
             if "/" in zone and zone.split("/")[0] not in ("Etc", "SystemV", "US", "posix", "right")}
    return sorted(zones | {"UTC"})


def _strip(value: str | None) -> str | None:
    return value.strip() if isinstance(value, str) else value


class StoreForm(FlaskForm):
    code = StringField(_l("Store code"), validators=[
        DataRequired(), Length(max=32),
        Regexp(r"^[A-Za-z0-9_-]+$", message=_l("Letters, digits, - and _ only, like S001."))])
    name = StringField(_l("Store name"), validators=[DataRequired(), Length(max=200)])
    timezone = SelectField(_l("Time zone"), default=DEFAULT_TIMEZONE, validators=[DataRequired()])

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.timezone.choices = timezone_choices()


def store_choices(stores, *, none_label=None) -> list[SelectChoice]:
    choices = [SelectChoice("", none_label)] if none_label is not None else []
    return choices + [SelectChoice(store.code, f"{store.code} · {store.name}") for store in stores]


class NewStaffForm(FlaskForm):
    email = EmailField(_l("Email"), validators=[DataRequired(), Email(), Length(max=320)], filters=[_strip],
                       render_kw={"autocomplete": "off", "autocapitalize": "none"})
    role = SelectField(_l("Role"), choices=[SelectChoice(role, ROLE_LABELS[role]) for role in STAFF_ROLES],
                       default="cashier", validators=[DataRequired()])
    store = SelectField(_l("Store"), choices=[], validate_choice=True)
    password = PasswordField(_l("Password"), validators=[
        DataRequired(), Length(min=PASSWORD_MIN_LENGTH, max=PASSWORD_MAX_LENGTH)],
        render_kw={"autocomplete": "new-password"})

    def __init__(self, *args, stores=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.store.choices = store_choices(stores, none_label=_l("No store (any)"))


class RoleForm(FlaskForm):
    role = SelectField(_l("Role"), choices=[SelectChoice(role, ROLE_LABELS[role]) for role in STAFF_ROLES],
                       validators=[DataRequired()])
    store = SelectField(_l("Store"), choices=[], validate_choice=True)

    def __init__(self, *args, stores=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.store.choices = store_choices(stores, none_label="—")


class ActiveForm(FlaskForm):
    """Enable ("1") or disable ("0") an account."""

    active = HiddenField(validators=[DataRequired(), Regexp(r"^[01]$")])


class PasswordForm(FlaskForm):
    password = PasswordField(_l("New password"), validators=[
        DataRequired(), Length(min=PASSWORD_MIN_LENGTH, max=PASSWORD_MAX_LENGTH)],
        render_kw={"autocomplete": "new-password"})
    confirm = PasswordField(_l("The same password again"), validators=[
        DataRequired(), EqualTo("password", message=_l("The two passwords differ."))],
        render_kw={"autocomplete": "new-password"})


class ApiKeyForm(FlaskForm):
    name = StringField(_l("Key name"), validators=[DataRequired(), Length(max=200)])
    store = SelectField(_l("Store"), choices=[], validators=[DataRequired()])
    scope = SelectField(_l("Scope"), choices=[SelectChoice(scope, SCOPE_LABELS[scope]) for scope in API_SCOPES],
                        default="pos", validators=[DataRequired()])

    def __init__(self, *args, stores=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.store.choices = store_choices(stores)


class ConfirmForm(FlaskForm):
    """A button that does something that cannot be undone: only the CSRF token."""


class SettingsForm(FlaskForm):
    earn_points = IntegerField(_l("Points earned"), validators=[InputRequired(message=WHOLE_NUMBER)])
    earn_per = StringField(_l("For every (yuan paid)"), validators=[DataRequired(), Length(max=20)])
    redeem_points = IntegerField(_l("Points redeemed"), validators=[InputRequired(message=WHOLE_NUMBER)])
    redeem_value = StringField(_l("Are worth (yuan)"), validators=[DataRequired(), Length(max=20)])
    lot_lifetime_days = IntegerField(_l("Points expire after (days)"),
                                     validators=[InputRequired(message=WHOLE_NUMBER)])
    hold_days = IntegerField(_l("Points on hold for (days)"), validators=[InputRequired(message=WHOLE_NUMBER)])
    tier_window_days = IntegerField(_l("Qualifying points count over (days)"),
                                    validators=[InputRequired(message=WHOLE_NUMBER)])
    tier_hold_days = IntegerField(_l("A tier is kept at least (days)"),
                                  validators=[InputRequired(message=WHOLE_NUMBER)])

    def fill_from(self, settings) -> None:
        for name in ("earn_points", "redeem_points", "lot_lifetime_days", "hold_days", "tier_window_days",
                     "tier_hold_days"):
            getattr(self, name).data = getattr(settings, name)
        self.earn_per.data = _yuan_input(settings.earn_per_minor)
        self.redeem_value.data = _yuan_input(settings.redeem_value_minor)

    def validate(self, extra_validators=None) -> bool:
        valid = super().validate(extra_validators)
        self._fen = {name: _fen(getattr(self, name)) for name in ("earn_per", "redeem_value")}
        return valid and not self.errors

    def values(self) -> SettingsValues:
        """The validated form as program_changes takes it."""
        return SettingsValues(
            earn_points=self.earn_points.data, earn_per_minor=self._fen["earn_per"],
            redeem_points=self.redeem_points.data, redeem_value_minor=self._fen["redeem_value"],
            lot_lifetime_days=self.lot_lifetime_days.data, hold_days=self.hold_days.data,
            tier_window_days=self.tier_window_days.data, tier_hold_days=self.tier_hold_days.data)


class TierForm(FlaskForm):
    name = StringField(_l("Tier name"), validators=[DataRequired(), Length(max=100)])
    threshold = IntegerField(_l("Qualifying points needed"), validators=[InputRequired(message=WHOLE_NUMBER)])
    multiplier = StringField(_l("Earn multiplier"), validators=[DataRequired(), Length(max=10)])
    benefits = TextAreaField(_l("Benefits"), validators=[Optional(), Length(max=2000)])
    # The threshold whose member moves were last shown; a new threshold is saved only once previewed.
    previewed_threshold = HiddenField()

    def fill_from(self, tier) -> None:
        self.name.data = tier.name
        self.threshold.data = tier.threshold
        self.multiplier.data = f"{tier.multiplier:.2f}"
        self.benefits.data = tier.benefits

    def validate(self, extra_validators=None) -> bool:
        valid = super().validate(extra_validators)
        self._percent = None
        typed = (self.multiplier.data or "").strip().lstrip("×xX").strip()
        if self.multiplier.data and not self.multiplier.errors:
            if MULTIPLIER.fullmatch(typed):
                self._percent = int(Decimal(typed) * 100)
            else:
                self.multiplier.errors.append(_l("Enter a multiplier like 1.25 (at most two decimals)."))
        return valid and not self.errors

    def previewed(self) -> bool:
        return self.previewed_threshold.data == str(self.threshold.data)

    def values(self) -> TierValues:
        return TierValues(name=self.name.data, threshold=self.threshold.data, multiplier_percent=self._percent,
                          benefits=self.benefits.data or "")


class AuditFilterForm(FlaskForm):
    """The audit trail's filters, read from the query string (a GET: nothing to protect with a token)."""

    class Meta:
        csrf = False

    action = StringField(_l("Action starts with"), validators=[Optional(), Length(max=64)])
    actor = StringField(_l("Staff email"), validators=[Optional(), Length(max=320)])
    member = StringField(_l("Member number"), validators=[Optional(), Length(max=16)])


def _fen(field) -> int | None:
    if field.errors:
        return None
    try:
        return yuan_to_fen(field.data)
    except ValidationFailed:
        field.errors.append(BAD_AMOUNT)
        return None


def _yuan_input(fen: int) -> str:
    # What the form shows is parsed back by yuan_to_fen, which takes no thousands separators.
    return fen_to_yuan(fen).replace(",", "")
