"""The staff console (/staff/): scan a member's card, see them, record a sale by hand, add notes, adjust
points (admins), enrol at the counter, read the audit trail (admins). Views parse the form, call a
service, commit and redirect; the rules live in `staff_services`."""

import re
from dataclasses import asdict
from datetime import timedelta

import qrcode
import qrcode.image.svg
from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from markupsafe import Markup, escape
from wtforms import SelectChoice

from loyalty import money
from loyalty.answer_once import answer_once, fingerprint
from loyalty.campaigns import codes
from loyalty.campaigns.services import find_coupon
from loyalty.clock import utcnow
from loyalty.errors import (
    CardTokenExpired,
    CouponInvalid,
    DomainError,
    DuplicateMember,
    IdempotencyConflict,
    InsufficientPoints,
    UnknownMember,
    ValidationFailed,
)
from loyalty.extensions import db
from loyalty.members import staff_services as services
from loyalty.members.data_access import record_member_view
from loyalty.members.masks import mask_email, mask_phone
from loyalty.members.models import Member
from loyalty.members.services import current_card_token, get_member_by_no
from loyalty.points.ledger import load_wallet
from loyalty.points.program import load_program
from loyalty.points.services import adjust_points
from loyalty.sales.values import Sale
from loyalty.staff.forms import AdjustForm, EnrolForm, NoteForm, SaleForm, ScanForm
from loyalty.web.access import current_staff, staff_required
from loyalty.web.offer_display import coupon_card

staff = Blueprint("staff", __name__, url_prefix="/staff")

# Who works the till. Marketers have the marketing console; the member console is not theirs.
COUNTER_ROLES = ("cashier", "admin")
ROLE_LABELS = {"admin": _l("admin"), "marketer": _l("marketer"), "cashier": _l("cashier")}
CHURN_BANDS = {"low": _l("low"), "medium": _l("medium"), "high": _l("high")}
# campaigns.redemption's coupon-invalid reasons, as the cashier reads them.
COUPON_REFUSALS = {
    "unknown": _l("Coupon %(code)s is not a valid code. Check it for a typo."),
    "used": _l("Coupon %(code)s has already been used."),
    "limit-reached": _l("Coupon %(code)s has reached its limit of uses."),
    "expired": _l("Coupon %(code)s has expired or was withdrawn."),
    "not-yet-valid": _l("Coupon %(code)s cannot be used yet."),
    "not-this-member": _l("Coupon %(code)s belongs to another member."),
    "tier": _l("Coupon %(code)s is not for this member's tier."),
    "budget-exhausted": _l("The offer of coupon %(code)s has run out."),
    "min-spend": _l("Coupon %(code)s needs a bigger basket."),
    "conditions": _l("Coupon %(code)s does not apply to this sale: it needs certain products, or cannot be "
                     "combined with other coupons."),
}


@staff.context_processor
def console_helpers() -> dict:
    # The layout shows flashed messages under the console's bar, so base.html leaves them out.
    return {"yuan": money.fen_to_yuan, "coupon_code": codes.display, "is_admin": _is_admin,
            "role_label": lambda role: ROLE_LABELS.get(role, role),
            "band_label": lambda band: CHURN_BANDS.get(band, band), "show_flashes": True}


def _is_admin() -> bool:
    return current_staff().role == "admin"


def _member_or_404(member_no: str) -> Member:
    member = get_member_by_no(db.session, member_no)
    if member is None:
        abort(404)
    return member


def _record_view(member: Member) -> None:
    """A page showing the member's personal data goes in the data-access log (members.data_access)."""
    record_member_view(db.session, staff=current_staff(), member=member, page=request.endpoint, now=utcnow())
    db.session.commit()


def describe(error: DomainError) -> str:
    """What to tell the person at the till, in their language."""
    if isinstance(error, CardTokenExpired):
        return _("Card code expired — ask the member to refresh their card.")
    if isinstance(error, UnknownMember):
        return _("No member found.")
    if isinstance(error, InsufficientPoints):
        return _("Not enough points available for this redemption.")
    if isinstance(error, DuplicateMember):
        return _("A member with this email or phone number already exists.")
    if isinstance(error, IdempotencyConflict):
        return _("This form was already used for a different sale. Start a new sale.")
    if isinstance(error, CouponInvalid):
        return coupon_refusal(error)
    if isinstance(error, ValidationFailed):
        fields = set(error.errors or {})
        if "subtotal" in fields:
            return _("Enter the basket before discounts in yuan, like 128.50, and not less than the amount paid.")
        if "amount" in fields:
            return _("Enter the amount in yuan, like 128.50 (at most two decimals).")
        if "phone" in fields:
            return _("That is not a valid phone number.")
        if "external_id" in fields:
            return _("This form has expired. Reload it and try again.")
        if "points" in fields:
            return _("An adjustment must add or deduct some points.")
        if "body" in fields:
            return _("Write a note first (at most 2,000 characters).")
        return _("Please check the form: %(detail)s", detail=error.detail)
    return _("Not possible: %(detail)s", detail=error.detail)


def coupon_refusal(error: CouponInvalid) -> str:
    """Why the till refused a coupon (campaigns.redemption's reasons), said so a cashier can tell the member."""
    code = error.code or ""
    if error.reason == "min-spend":
        coupon = find_coupon(db.session, code)
        if coupon is not None:
            return _("Coupon %(code)s needs a basket of at least ¥%(amount)s before discounts.",
                     code=code, amount=money.fen_to_yuan(coupon.offer.min_spend))
    message = COUPON_REFUSALS.get(error.reason)
    return str(message) % {"code": code} if message else _("Coupon refused: %(detail)s", detail=error.detail)


# --- scan ----------------------------------------------------------------------------------------

@staff.get("/")
@staff_required(*COUNTER_ROLES)
def scan():
    return render_template("staff/scan.html", form=ScanForm())


@staff.post("/scan")
@staff_required(*COUNTER_ROLES)
def scan_submit():
    form = ScanForm()
    if not form.validate():
        return render_template("staff/scan.html", form=form), 422
    try:
        member = services.find_member_at_till(db.session, form.code.data, utcnow())
    except DomainError as error:
        status = 410 if isinstance(error, CardTokenExpired) else 404
        return render_template("staff/scan.html", form=ScanForm(formdata=None), error=describe(error)), status
    return redirect(url_for("staff.member", member_no=member.member_no))


# --- the member ----------------------------------------------------------------------------------

@staff.get("/members/<member_no>")
@staff_required(*COUNTER_ROLES)
def member(member_no: str):
    found = _member_or_404(member_no)
    _record_view(found)
    overview = services.member_overview(db.session, load_program(db.session), found, utcnow())
    admin = _is_admin()
    contacts = {"email": found.email if admin else mask_email(found.email),
                "phone": found.phone if admin else mask_phone(found.phone)}
    return render_template("staff/member.html", view=overview, contacts=contacts, note_form=NoteForm(),
                           adjust_form=AdjustForm() if admin else None)


@staff.get("/members/<member_no>/card")
@staff_required(*COUNTER_ROLES)
def card(member_no: str):
    found = _member_or_404(member_no)
    _record_view(found)
    now = utcnow()
    token = current_card_token(found, now)
    # Reload just after the token's step ends, so the code on screen is always the newest.
    next_step = token.issued_at + timedelta(seconds=_card_step_seconds())
    refresh_in = max(1, int((next_step - now).total_seconds()) + 1)
    return render_template("staff/card.html", member=found, token=token,
                           qr_svg=_qr_svg(token.token, _("Membership card QR code")),
                           refresh_in=refresh_in)


def _card_step_seconds() -> int:
    return current_app.config["CARD_TOKEN_STEP_SECONDS"]


def _qr_svg(data: str, label: str) -> Markup:
    """The QR code as inline SVG on a white ground (quiet zone included), sized for a till's screen.
    The token is base32 we generated, so the markup is the library's and ours alone."""
    image = qrcode.make(data, image_factory=qrcode.image.svg.SvgPathFillImage)
    svg = image.to_string(encoding="unicode")
    svg = svg[svg.index("<svg"):]
    svg = re.sub(r'^<svg width="[^"]*" height="[^"]*"',
                 f'<svg width="280" height="280" role="img" aria-label="{escape(label)}"', svg, count=1)
    return Markup(svg)


@staff.post("/members/<member_no>/notes")
@staff_required(*COUNTER_ROLES)
def add_note(member_no: str):
    found = _member_or_404(member_no)
    form = NoteForm()
    if not form.validate():
        flash(_("Write a note first (at most 2,000 characters)."), "error")
        return redirect(url_for("staff.member", member_no=member_no))
    try:
        services.add_staff_note(db.session, staff=current_staff(), member=found, body=form.body.data, now=utcnow())
    except DomainError as error:
        db.session.rollback()
        flash(describe(error), "error")
        return redirect(url_for("staff.member", member_no=member_no))
    db.session.commit()
    flash(_("Note saved."), "success")
    return redirect(url_for("staff.member", member_no=member_no))


@staff.post("/members/<member_no>/adjust")
@staff_required("admin")
def adjust(member_no: str):
    found = _member_or_404(member_no)
    form = AdjustForm()
    if not form.validate():
        flash(_("Give the points (not zero) and a reason."), "error")
        return redirect(url_for("staff.member", member_no=member_no))
    try:
        adjust_points(db.session, load_program(db.session), found, form.points.data, reason=form.reason.data,
                      staff_user=current_staff(), now=utcnow())
    except DomainError as error:
        db.session.rollback()
        flash(describe(error), "error")
        return redirect(url_for("staff.member", member_no=member_no))
    db.session.commit()
    flash(_("Points adjusted by %(points)s.", points=f"{form.points.data:+,}"), "success")
    return redirect(url_for("staff.member", member_no=member_no))


@staff.get("/members/<member_no>/audit")
@staff_required("admin")
def audit(member_no: str):
    found = _member_or_404(member_no)
    _record_view(found)
    return render_template("staff/audit.html", member=found, lines=services.audit_trail(db.session, found))


# --- a sale by hand --------------------------------------------------------------------------------

@staff.route("/members/<member_no>/sale", methods=["GET", "POST"])
@staff_required(*COUNTER_ROLES)
def sale(member_no: str):
    found = _member_or_404(member_no)
    form = SaleForm()
    if not form.is_submitted():
        form.external_id.data = services.new_console_external_id(services.console_store(db.session, current_staff()))
        return _sale_page(found, form)
    if not form.validate():
        return _sale_page(found, form, status=422)
    try:
        recorded, replayed = _record_sale(found, form)
    except DomainError as error:
        db.session.rollback()
        return _sale_page(found, form, error=describe(error), status=error.status)
    if replayed:
        flash(_("This sale was already recorded; nothing was added twice."), "info")
    else:
        flash(_("Sale of ¥%(amount)s recorded: %(earned)s points earned, %(redeemed)s redeemed.",
                amount=money.fen_to_yuan(recorded.amount), earned=recorded.points_earned,
                redeemed=recorded.points_redeemed), "success")
        for coupon in recorded.coupons:
            flash(_("Coupon %(code)s redeemed: ¥%(discount)s off.", code=coupon["code"],
                    discount=money.fen_to_yuan(coupon["discount"])), "success")
    return redirect(url_for("staff.member", member_no=member_no))


def _record_sale(member: Member, form: SaleForm) -> tuple[services.HandSale, bool]:
    """Record the form's sale and commit, once: submitting the same form again (its one-time external
    id) replays the first answer, and with other figures is a conflict. Also True when replayed."""
    now, program, staff_user = utcnow(), load_program(db.session), current_staff()
    client = services.console_client(db.session, services.console_store(db.session, staff_user))
    db.session.commit()  # a console client made on first use stays, whatever becomes of the sale
    sale = Sale(external_id=form.external_id.data, occurred_at=now, currency=program.settings.currency,
                amount=money.yuan_to_fen(form.amount.data), subtotal=_subtotal_fen(form.subtotal.data),
                member_code=member.member_no, store_code=client.store.code,
                points_redeemed=form.points_redeemed.data or 0, coupon_codes=tuple(form.coupon_codes()))

    def work() -> tuple[int, dict]:
        recorded = services.record_hand_sale(db.session, program, staff=staff_user, client=client, member=member,
                                             sale=sale, now=now)
        return 201, asdict(recorded)

    answer = answer_once(db.session, client, "sale:" + sale.external_id, _form_fingerprint(sale), work)
    return services.HandSale(**answer.body), answer.replayed


def _form_fingerprint(sale: Sale) -> str:
    """What makes a submit of the form the same sale: coupon codes as the till reads them, and the
    basket before discounts whether it was typed or left to default to the amount."""
    return fingerprint({"member": sale.member_code, "amount": sale.amount, "subtotal": sale.basket_amount,
                        "points_redeemed": sale.points_redeemed,
                        "coupons": sorted(codes.normalize(code) for code in sale.coupon_codes)})


def _subtotal_fen(typed: str | None) -> int | None:
    if not (typed or "").strip():
        return None
    try:
        return money.yuan_to_fen(typed)
    except ValidationFailed as error:
        raise ValidationFailed(error.detail, errors={"subtotal": ["Enter an amount like 128.50."]}) from None


def _sale_page(member: Member, form: SaleForm, error: str | None = None, status: int = 200):
    now = utcnow()
    settings = load_program(db.session).settings
    points = load_wallet(db.session, member).summary(now)
    wallet = [coupon_card(coupon, settings.currency) for coupon in services.member_coupons(db.session, member, now)]
    form.coupon.choices = [SelectChoice("", _("No coupon"))] + [
        SelectChoice(card.code, f"{card.code} · {card.offer_name} · {card.benefit}") for card in wallet]
    return render_template("staff/sale.html", member=member, points=points, settings=settings, form=form,
                           wallet=wallet, error=error), status


# --- enrol at the counter ------------------------------------------------------------------------

@staff.route("/enrol", methods=["GET", "POST"])
@staff_required(*COUNTER_ROLES)
def enrol():
    form = EnrolForm()
    if not form.is_submitted():
        return render_template("staff/enrol.html", form=form)
    if not form.validate():
        return render_template("staff/enrol.html", form=form), 422
    try:
        member = services.enrol_at_counter(
            db.session, load_program(db.session), staff=current_staff(), name=form.name.data,
            email=form.email.data, phone=form.phone.data, email_marketing=form.email_marketing.data,
            sms_marketing=form.sms_marketing.data, now=utcnow())
    except DomainError as error:
        db.session.rollback()
        return render_template("staff/enrol.html", form=form, error=describe(error)), error.status
    db.session.commit()
    flash(_("Welcome, %(name)s! Member number %(member_no)s.", name=member.name, member_no=member.member_no),
          "success")
    return redirect(url_for("staff.card", member_no=member.member_no))
