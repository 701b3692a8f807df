"""Member portal forms. Field names are part of the contract for sign-up and sign-in (docs/api.md "Member
portal routes used by scripts"): name, email, phone, password."""

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, DateField, EmailField, PasswordField, StringField, TelField
from wtforms.validators import DataRequired, Email, EqualTo, Length, Optional

from loyalty.auth.services import PASSWORD_MAX_LENGTH, PASSWORD_MIN_LENGTH

_email = [DataRequired(), Email(message=_l("Enter a valid email address.")), Length(max=320)]
_new_password = [DataRequired(), Length(min=PASSWORD_MIN_LENGTH, max=PASSWORD_MAX_LENGTH,
                                        message=_l("Use at least %(min)d characters."))]


class SignupForm(FlaskForm):
    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=200)],
                       render_kw={"autocomplete": "name"})
    email = EmailField(_l("Email"), validators=_email, render_kw={"autocomplete": "email"})
    phone = TelField(_l("Mobile phone (optional)"), validators=[Optional(), Length(max=32)],
                     render_kw={"autocomplete": "tel"})
    password = PasswordField(_l("Password"), validators=_new_password, render_kw={"autocomplete": "new-password"})
    email_marketing = BooleanField(_l("Send me offers by email"))
    sms_marketing = BooleanField(_l("Send me offers by text message"))


class ProfileForm(FlaskForm):
    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=200)],
                       render_kw={"autocomplete": "name"})
    email = EmailField(_l("Email"), validators=_email, render_kw={"autocomplete": "email"})
    phone = TelField(_l("Mobile phone (optional)"), validators=[Optional(), Length(max=32)],
                     render_kw={"autocomplete": "tel"})
    birthday = DateField(_l("Birthday (optional)"), validators=[Optional()])


class ConsentsForm(FlaskForm):
    email_marketing = BooleanField(_l("Send me offers by email"))
    sms_marketing = BooleanField(_l("Send me offers by text message"))


class PasswordForm(FlaskForm):
    current_password = PasswordField(_l("Current password"), validators=[DataRequired()],
                                     render_kw={"autocomplete": "current-password"})
    password = PasswordField(_l("New password"), validators=_new_password, render_kw={"autocomplete": "new-password"})


class ForgotPasswordForm(FlaskForm):
    email = EmailField(_l("Email"), validators=_email, render_kw={"autocomplete": "email"})


class ResetPasswordForm(FlaskForm):
    password = PasswordField(_l("New password"), validators=_new_password, render_kw={"autocomplete": "new-password"})
    confirm = PasswordField(_l("New password again"),
                            validators=[DataRequired(), EqualTo("password", message=_l("The passwords differ."))],
                            render_kw={"autocomplete": "new-password"})


class EraseForm(FlaskForm):
    password = PasswordField(_l("Your password"), validators=[DataRequired()],
                             render_kw={"autocomplete": "current-password"})
    confirm = BooleanField(_l("I understand that my account, card and points cannot be restored."),
                           validators=[DataRequired(message=_l("Tick the box to confirm."))])
