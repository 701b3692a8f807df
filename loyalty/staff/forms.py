"""The staff console's forms (Flask-WTF: every one carries a CSRF token). They check shape only; the
business rules (amount in fen, points available, duplicate contacts) are the services'."""

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    EmailField,
    HiddenField,
    IntegerField,
    SelectChoice,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.validators import DataRequired, Email, InputRequired, Length, NumberRange, Optional

from loyalty.campaigns.codes import normalize as normalize_code


class ScanForm(FlaskForm):
    code = StringField(_l("Card code, member number or phone"), validators=[DataRequired(), Length(max=200)])


class SaleForm(FlaskForm):
    # Generated when the form is rendered; the same form submitted twice records one sale.
    external_id = HiddenField(validators=[DataRequired(), Length(max=128)])
    amount = StringField(_l("Amount paid (yuan)"), validators=[DataRequired(), Length(max=20)])
    points_redeemed = IntegerField(_l("Points to redeem"), default=0,
                                   validators=[Optional(), NumberRange(min=0, max=10**9)])
    # The basket before coupon and points discounts: what min spend and percent discounts are judged on.
    subtotal = StringField(_l("Basket before discounts (yuan)"), validators=[Optional(), Length(max=20)])
    # One of the member's usable coupons (choices set by the view), or a code typed from paper or a phone.
    coupon = SelectField(_l("Coupon from the member's wallet"), choices=[SelectChoice("", "")],
                         validate_choice=False)
    coupon_code = StringField(_l("Or type a coupon code"), validators=[Optional(), Length(max=64)])

    def coupon_codes(self) -> list[str]:
        typed = (self.coupon_code.data or "").strip()
        return [typed or self.coupon.data] if typed or self.coupon.data else []

    def validate(self, extra_validators=None) -> bool:
        if not super().validate(extra_validators):
            return False
        typed, picked = (self.coupon_code.data or "").strip(), self.coupon.data
        if typed and picked and normalize_code(typed) != normalize_code(picked):
            self.coupon_code.errors.append(_l("Pick a coupon or type a code, not both."))
            return False
        if self.coupon_codes() and not (self.subtotal.data or "").strip():
            self.subtotal.errors.append(_l("Enter the basket before discounts to use a coupon."))
            return False
        return True


class NoteForm(FlaskForm):
    body = TextAreaField(_l("Note"), validators=[DataRequired(), Length(max=2000)])


class AdjustForm(FlaskForm):
    points = IntegerField(_l("Points (negative to deduct)"),
                          validators=[InputRequired(), NumberRange(min=-10**9, max=10**9)])
    reason = StringField(_l("Reason"), validators=[DataRequired(), Length(max=200)])


class EnrolForm(FlaskForm):
    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=200)])
    email = EmailField(_l("Email"), validators=[Optional(), Email(), Length(max=320)])
    phone = StringField(_l("Mobile phone"), validators=[Optional(), Length(max=32)])
    email_marketing = BooleanField(_l("Agrees to marketing by email"))
    sms_marketing = BooleanField(_l("Agrees to marketing by SMS"))

    def validate(self, extra_validators=None) -> bool:
        if not super().validate(extra_validators):
            return False
        if not self.email.data and not self.phone.data:
            self.email.errors.append(_l("Email or phone is required."))
            return False
        return True
