"""The member portal (/portal/): sign-up and sign-in, the QR card, points, profile and consents,
password reset, data export and erasure.

Every page but the account ones is `member_required` and reads only `current_member()`: no route takes
a member id, and the one that takes a transaction id answers 404 for anybody else's. Views parse a
form, call a service, commit and redirect; the rules live in `portal_services` and `services`.
"""

import base64
import smtplib

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_user, logout_user

from loyalty.auth.services import PASSWORD_MIN_LENGTH, check_password, end_sessions
from loyalty.campaigns.services import usable_coupons
from loyalty.clock import utcnow
from loyalty.errors import DomainError, DuplicateMember, NotFound, ValidationFailed
from loyalty.extensions import db
from loyalty.members import gdpr
from loyalty.members import portal_services as services
from loyalty.members.qr import qr_png, qr_svg
from loyalty.members.services import current_card_token, erase_member, set_consents
from loyalty.members.tasks import enqueue_password_reset
from loyalty.points.ledger import load_wallet
from loyalty.points.program import load_program
from loyalty.portal.forms import (
    ConsentsForm,
    EraseForm,
    ForgotPasswordForm,
    PasswordForm,
    ProfileForm,
    ResetPasswordForm,
    SignupForm,
)
from loyalty.web import throttle
from loyalty.web.access import MemberIdentity, current_member, member_required
from loyalty.web.forms import LoginForm
from loyalty.web.offer_display import coupon_card
from loyalty.web.sign_in import safe_next_url

portal = Blueprint("portal", __name__, url_prefix="/portal")

# The default tiers' names, translated; a tier the marketer named shows as named.
TIER_NAMES = {"Bronze": _l("Bronze"), "Silver": _l("Silver"), "Gold": _l("Gold")}
NO_STORE = {"Cache-Control": "no-store"}
# Coupons shown in the wallet (the oldest issued, if a member ever holds more).
WALLET_SIZE = 100


# How a consent change reached us, as the member reads it.
CHANNEL_NAMES = {"portal": _l("online"), "staff": _l("in store"), "api": _l("at the till"),
                 "enrolment": _l("when joining"), "erasure": _l("account deleted")}


@portal.app_template_global()
def tier_label(tier) -> str:
    return str(TIER_NAMES.get(tier.name, tier.name))


@portal.app_template_global()
def channel_label(channel: str) -> str:
    return str(CHANNEL_NAMES.get(channel, channel))


# --- accounts ----------------------------------------------------------------------------------

@portal.route("/signup", methods=["GET", "POST"])
@throttle.signup_limits()
def signup():
    form = SignupForm()
    if form.validate_on_submit():
        member = _save_member_form(form, lambda: services.sign_up(
            db.session, load_program(db.session), name=form.name.data, email=form.email.data,
            phone=form.phone.data, password=form.password.data, now=utcnow(),
            email_marketing=form.email_marketing.data, sms_marketing=form.sms_marketing.data))
        if member is not None:
            _sign_in(member)
            flash(_("Welcome! Your membership card is ready."), "success")
            return redirect(url_for("portal.card"))
    return render_template("portal/signup.html", form=form)


@portal.route("/login", methods=["GET", "POST"])
@throttle.sign_in_limits("member")
def login():
    form = LoginForm()
    error = None
    if form.validate_on_submit():
        member = services.authenticate_member(db.session, form.email.data, form.password.data)
        if member is not None:
            _sign_in(member)
            return redirect(safe_next_url(request.args.get("next")) or url_for("portal.dashboard"))
        throttle.mark_failed()
        error = _("Wrong email or password.")
    elif request.method == "POST":
        throttle.mark_failed()
    return render_template("portal/login.html", form=form, error=error)


@portal.route("/logout", methods=["POST"])
def logout():
    if current_user.is_authenticated and current_user.kind == "member":
        # The cookie itself would stay valid (it is signed, not stored): the account's epoch ends it.
        end_sessions(current_member())
        db.session.commit()
    logout_user()
    session.clear()
    flash(_("You have signed out."), "info")
    return redirect(url_for("portal.login"))


def _sign_in(member) -> None:
    # A fresh session on every sign-in: nothing from before it (or planted in it) survives.
    session.clear()
    login_user(MemberIdentity(member))


@portal.errorhandler(429)
def too_many_attempts(error):
    seconds = throttle.retry_after_seconds(error)
    message = f"{error.description} {throttle.wait_message(seconds)}"
    if request.endpoint == "portal.forgot_password":
        page = render_template("portal/forgot.html", form=ForgotPasswordForm(), error=message)
    else:
        page = render_template("portal/login.html", form=LoginForm(), error=message)
    return page, 429, {"Retry-After": str(seconds)}


# --- dashboard, card, history ------------------------------------------------------------------

@portal.route("/")
@member_required
def dashboard():
    member, now = current_member(), utcnow()
    program = load_program(db.session)
    return render_template("portal/dashboard.html", member=member,
                           summary=load_wallet(db.session, member).summary(now),
                           progress=services.tier_progress(db.session, program, member, now))


@portal.route("/card")
@member_required
def card():
    member, now = current_member(), utcnow()
    card_token = current_card_token(member, now)
    return render_template("portal/card.html", member=member, card_token=card_token, now=now,
                           step_seconds=current_app.config["CARD_TOKEN_STEP_SECONDS"],
                           max_age_seconds=current_app.config["CARD_TOKEN_MAX_AGE_SECONDS"])


@portal.route("/card.json")
@member_required
def card_json():
    """docs/api.md: the current card token, the same string the QR on /portal/card encodes."""
    card_token = current_card_token(current_member(), utcnow())
    expires_at = card_token.expires_at.isoformat().replace("+00:00", "Z")
    return jsonify(token=card_token.token, expires_at=expires_at), 200, NO_STORE


@portal.route("/card.svg")
@member_required
def card_svg():
    token = current_card_token(current_member(), utcnow()).token
    return Response(qr_svg(token), mimetype="image/svg+xml", headers=NO_STORE)


@portal.route("/card.png")
@member_required
def card_png():
    token = current_card_token(current_member(), utcnow()).token
    return Response(qr_png(token), mimetype="image/png", headers=NO_STORE)


@portal.route("/coupons")
@member_required
def coupons():
    """The member's wallet: each coupon they can use now, with its code (text and QR), conditions and
    expiry. The QR images are in the page itself, so a wallet opened before walking into a shop with
    no signal still shows them all."""
    member, now = current_member(), utcnow()
    currency = load_program(db.session).settings.currency
    usable, _next_cursor = usable_coupons(db.session, member, now, limit=WALLET_SIZE)
    cards = sorted((coupon_card(coupon, currency) for coupon in usable),
                   key=lambda card: (card.expires_at is None, card.expires_at or now))
    return render_template("portal/coupons.html", cards=[(card, _qr_data_uri(card.code)) for card in cards])


def _qr_data_uri(text: str) -> str:
    return "data:image/svg+xml;base64," + base64.b64encode(qr_svg(text)).decode("ascii")


@portal.route("/history")
@member_required
def history():
    page = request.args.get("page", 1, type=int)
    return render_template("portal/history.html",
                           history=services.points_history(db.session, current_member(), page))


@portal.route("/transactions/<int:transaction_id>")
@member_required
def transaction(transaction_id: int):
    try:
        found = services.member_transaction(db.session, current_member(), transaction_id)
    except NotFound:
        abort(404)
    return render_template("portal/transaction.html", transaction=found)


# --- profile, consents, password ---------------------------------------------------------------

@portal.route("/profile", methods=["GET", "POST"])
@member_required
def profile():
    member = current_member()
    form = ProfileForm(obj=member)
    if form.validate_on_submit():
        saved = _save_member_form(form, lambda: services.update_profile(
            db.session, member, name=form.name.data, email=form.email.data, phone=form.phone.data,
            birthday=form.birthday.data) or member)
        if saved is not None:
            flash(_("Your details are saved."), "success")
            return redirect(url_for("portal.profile"))
    return _profile_page(profile_form=form)


@portal.route("/consents", methods=["POST"])
@member_required
def consents():
    form = ConsentsForm()
    if form.validate_on_submit():
        set_consents(db.session, current_member(), {"email_marketing": form.email_marketing.data,
                                                    "sms_marketing": form.sms_marketing.data},
                     channel="portal", now=utcnow())
        db.session.commit()
        flash(_("Your choices are saved."), "success")
    return redirect(url_for("portal.profile"))


@portal.route("/password", methods=["POST"])
@member_required
def change_password():
    form = PasswordForm()
    if form.validate_on_submit():
        try:
            services.change_password(current_member(), form.current_password.data, form.password.data)
        except ValidationFailed:
            form.current_password.errors.append(_("Wrong password."))
        else:
            db.session.commit()
            # The new password ends every other session (auth/access.py); this one carries on.
            _sign_in(current_member())
            flash(_("Your password is changed."), "success")
            return redirect(url_for("portal.profile"))
    return _profile_page(password_form=form), 422


def _profile_page(profile_form=None, password_form=None):
    member = current_member()
    return render_template("portal/profile.html", member=member,
                           profile_form=profile_form or ProfileForm(obj=member),
                           consents_form=ConsentsForm(obj=member), password_form=password_form or PasswordForm(),
                           consent_events=services.consent_history(db.session, member))


@portal.route("/password/forgot", methods=["GET", "POST"])
@throttle.reset_request_limits()
def forgot_password():
    form = ForgotPasswordForm()
    if form.validate_on_submit():
        member = services.member_for_reset_request(db.session, form.email.data)
        if member is not None:
            try:
                enqueue_password_reset(member, str(get_locale()), request.url_root)
            except (OSError, smtplib.SMTPException):
                # Mail server unreachable (inline; with Redis configured the job is queued, or kept for
                # the sweeper while Redis is away): logged for the operator; the visitor gets
                # the usual answer, or an error page would tell them that this email has an account.
                current_app.logger.exception("password reset email to member %s not sent", member.member_no)
        # The same answer whether or not the email has an account: no way to probe who is a member.
        flash(_("If an account uses that email, a link to set a new password is on its way."), "info")
        return redirect(url_for("portal.login"))
    return render_template("portal/forgot.html", form=form)


@portal.route("/password/reset/<token>", methods=["GET", "POST"])
def reset_password(token: str):
    member = services.member_for_reset_token(db.session, token)
    if member is None:
        return render_template("portal/reset_invalid.html"), 404
    form = ResetPasswordForm()
    if form.validate_on_submit():
        services.set_password(member, form.password.data)
        db.session.commit()
        _sign_in(member)
        flash(_("Your new password is set."), "success")
        return redirect(url_for("portal.dashboard"))
    return render_template("portal/reset.html", form=form)


# --- your data ---------------------------------------------------------------------------------

@portal.route("/export.json")
@member_required
def export():
    """A download of everything held about the member."""
    member, now = current_member(), utcnow()
    data = gdpr.export_member_data(db.session, member, now)
    disposition = f'attachment; filename="{gdpr.export_filename(member, now)}"'
    return Response(gdpr.dumps(data), mimetype="application/json",
                    headers={"Content-Disposition": disposition, **NO_STORE})


@portal.route("/erase", methods=["GET", "POST"])
@member_required
def erase():
    member = current_member()
    form = EraseForm()
    if form.validate_on_submit():
        if not check_password(member.password_hash, form.password.data):
            form.password.errors.append(_("Wrong password."))
        else:
            erase_member(db.session, member, now=utcnow(), channel="portal")
            db.session.commit()
            logout_user()
            session.clear()
            flash(_("Your account and personal data are erased. Goodbye."), "info")
            return redirect(url_for("portal.login"))
    return render_template("portal/erase.html", form=form)


FIELD_MESSAGES = {"phone": _l("Not a valid phone number."), "password": _l("Use at least %(min)d characters."),
                  "name": _l("This field is required.")}


def _save_member_form(form, save):
    """Run a service that saves a member's details and commit; on a refusal, roll back and put the
    reason on the form's fields. Returns what `save` returned, or None when it was refused."""
    try:
        result = save()
    except DuplicateMember:
        db.session.rollback()
        form.email.errors.append(_("An account with this email or phone number already exists."))
        return None
    except ValidationFailed as error:
        db.session.rollback()
        _field_errors(form, error)
        return None
    db.session.commit()
    return result


def _field_errors(form, error: DomainError) -> None:
    """Show a service's refusal next to the field it is about, in the page's language."""
    for field_name in (error.errors or {"email": None}):
        field = getattr(form, field_name, None) or form.email
        message = FIELD_MESSAGES.get(field_name, _l("Please check this field."))
        field.errors.append(str(message) % {"min": PASSWORD_MIN_LENGTH} if field_name == "password" else str(message))
