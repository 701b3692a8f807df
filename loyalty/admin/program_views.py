"""The admin console's program pages: the rules of exchange and the tiers. A new tier threshold is
shown first as the members it would move (a preview step, and live as the admin types), then saved.
The rules and the moves are points.program_changes'; these views parse, call, commit and answer."""

from flask import Blueprint, abort, flash, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import ngettext

from loyalty.admin.forms import SettingsForm, TierForm
from loyalty.admin.views import ID, NO_STORE, admin_helpers, show_refusal
from loyalty.clock import utcnow
from loyalty.errors import ValidationFailed
from loyalty.extensions import db
from loyalty.i18n import number
from loyalty.points import program_changes
from loyalty.points.models import Tier
from loyalty.points.program import load_program
from loyalty.web.access import current_staff, staff_required

admin_program = Blueprint("admin_program", __name__, url_prefix="/admin/program")
admin_program.context_processor(admin_helpers)

# The service's rules, as the admin reads them next to the field (the service's own words otherwise).
SETTINGS_RULES = {
    "earn_points": _l("A whole number of points, at least 1."),
    "earn_per_minor": _l("An amount of at least 0.01."),
    "redeem_points": _l("A whole number of points, at least 1."),
    "redeem_value_minor": _l("An amount of at least 0.01."),
    "lot_lifetime_days": _l("At least 1 day."),
    "hold_days": _l("0 or more days, and fewer than the days before points expire."),
    "tier_window_days": _l("At least 1 day."),
    "tier_hold_days": _l("0 or more days."),
}
# Settings fields the form names differently (money typed in yuan).
SETTINGS_FIELDS = {"earn_per_minor": "earn_per", "redeem_value_minor": "redeem_value"}
TIER_RULES = {
    "name": _l("From 1 to 100 characters."),
    "multiplier_percent": _l("At least 1.00 (a tier never earns less than the base rate), at most 100.00."),
    "benefits": _l("At most 2,000 characters."),
}
TIER_FIELDS = {"multiplier_percent": "multiplier"}


def _tier_or_404(tier_id: int) -> Tier:
    found = db.session.get(Tier, tier_id)
    if found is None:
        abort(404)
    return found


def _threshold_rule(tier: Tier) -> str:
    """Where this tier's threshold may go, from its neighbours in the program."""
    tiers = load_program(db.session).tiers
    index = next(index for index, candidate in enumerate(tiers) if candidate.id == tier.id)
    if index == 0:
        return _("The lowest tier's threshold is always 0: every member holds at least this tier.")
    lower = tiers[index - 1]
    if index + 1 == len(tiers):
        return _("More than %(lower)s's %(points)s points.", lower=lower.name, points=number(lower.threshold))
    upper = tiers[index + 1]
    return _("More than %(lower)s's %(low)s points and less than %(upper)s's %(high)s.", lower=lower.name,
             low=number(lower.threshold), upper=upper.name, high=number(upper.threshold))


def _refuse(form, error: ValidationFailed, rules: dict, renamed: dict) -> None:
    errors = {renamed.get(name, name): rules.get(name) and [rules[name]] or said
              for name, said in (error.errors or {}).items()}
    show_refusal(form, ValidationFailed(error.detail, errors=errors or None), {})


# --- settings ------------------------------------------------------------------------------------

@admin_program.get("/")
@staff_required("admin")
def program():
    form = SettingsForm(formdata=None)
    form.fill_from(load_program(db.session).settings)
    return _program_page(form)


@admin_program.post("/settings")
@staff_required("admin")
def save_settings():
    form = SettingsForm()
    if not form.validate():
        return _program_page(form, status=422)
    try:
        changed = program_changes.update_program_settings(db.session, form.values(), actor=current_staff())
    except ValidationFailed as error:
        db.session.rollback()
        _refuse(form, error, SETTINGS_RULES, SETTINGS_FIELDS)
        return _program_page(form, status=422)
    db.session.commit()
    flash(_("Program settings saved. They apply from the next sale.") if changed else _("Nothing was changed."),
          "success" if changed else "info")
    return redirect(url_for(".program"))


def _program_page(form: SettingsForm, status: int = 200):
    current = load_program(db.session)
    return render_template("admin/program.html", form=form, program=current), status


# --- tiers ---------------------------------------------------------------------------------------

@admin_program.route(f"/tiers/<{ID}:tier_id>", methods=["GET", "POST"])
@staff_required("admin")
def tier(tier_id: int):
    found = _tier_or_404(tier_id)
    form = TierForm()
    if not form.is_submitted():
        form.fill_from(found)
        return _tier_page(found, form)
    if not form.validate():
        return _tier_page(found, form, status=422)
    values = form.values()
    if values.threshold != found.threshold and (request.form.get("action") != "save" or not form.previewed()):
        return _preview(found, form)
    try:
        changed = program_changes.update_tier(db.session, found, values, actor=current_staff(), now=utcnow())
    except ValidationFailed as error:
        db.session.rollback()
        _refuse(form, error, {**TIER_RULES, "threshold": _threshold_rule(found)}, TIER_FIELDS)
        return _tier_page(found, form, status=422)
    db.session.commit()
    if not changed:
        flash(_("Nothing was changed."), "info")
    elif moved := changed.get("members_moved_up", (0, 0))[1]:
        flash(ngettext("%(tier)s saved: %(num)s member moved up at once.",
                       "%(tier)s saved: %(num)s members moved up at once.", moved, tier=found.name), "success")
    else:
        flash(_("%(tier)s saved.", tier=found.name), "success")
    return redirect(url_for(".program"))


def _preview(found: Tier, form: TierForm):
    """The confirmation step of a new threshold: who would move, then Save."""
    try:
        moves = program_changes.tier_move_preview(db.session, found, form.threshold.data, utcnow())
    except ValidationFailed:
        form.threshold.errors = [*form.threshold.errors, _threshold_rule(found)]
        return _tier_page(found, form, status=422)
    form.previewed_threshold.data = str(form.threshold.data)
    return _tier_page(found, form, moves=moves)


def _tier_page(found: Tier, form: TierForm, *, moves=None, status: int = 200):
    return render_template("admin/tier.html", tier=found, form=form, moves=moves,
                           moves_text=_moves_text(found, moves) if moves else None,
                           threshold_rule=_threshold_rule(found),
                           hold_days=load_program(db.session).settings.tier_hold_days), status


def _moves_text(found: Tier, moves: program_changes.TierMoves) -> str:
    up = ngettext("%(num)s member would move up to %(tier)s", "%(num)s members would move up to %(tier)s",
                  moves.moving_up, tier=found.name)
    down = ngettext("%(num)s would move down", "%(num)s would move down", moves.moving_down)
    return _("%(up)s, %(down)s.", up=up, down=down)


@admin_program.get(f"/tiers/<{ID}:tier_id>/moves.json")
@staff_required("admin")
def tier_moves(tier_id: int):
    """The preview's counts for `?threshold=N`, fetched by the tier page as the admin types."""
    found = _tier_or_404(tier_id)
    threshold = request.args.get("threshold", type=int)
    if threshold is None:
        return jsonify({"error": _("Enter a whole number.")}), 422, NO_STORE
    try:
        moves = program_changes.tier_move_preview(db.session, found, threshold, utcnow())
    except ValidationFailed:
        return jsonify({"error": _threshold_rule(found)}), 422, NO_STORE
    return jsonify({"threshold": threshold, "moving_up": moves.moving_up, "moving_down": moves.moving_down,
                    "text": _moves_text(found, moves)}), 200, NO_STORE
