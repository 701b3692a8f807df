"""The marketing console's offers (/marketing/offers/): list offers with what they have cost, create and
edit them, issue coupons in bulk as a background job whose progress the page polls, download a batch
as CSV, and read an offer's redemptions. Marketers and admins only. Views parse a form, call
campaigns.services or campaigns.batches, commit, and redirect; the rules live there."""

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
    stream_with_context,
    url_for,
)
from flask_babel import gettext as _

from loyalty.campaigns import batches, codes, services, tasks
from loyalty.campaigns.models import CouponBatch, Offer
from loyalty.clock import utcnow
from loyalty.db import MAX_ID
from loyalty.errors import NotFound, ValidationFailed
from loyalty.extensions import db
from loyalty.marketing.offer_forms import VALUE_HINTS, BatchForm, EditOfferForm, NewOfferForm, OfferForm
from loyalty.points.program import load_program
from loyalty.web.access import current_staff, staff_required
from loyalty.web.offer_display import BATCH_STATUS_LABELS, COUPON_STATUS_LABELS, benefit, conditions, kind_label

marketing_offers = Blueprint("marketing_offers", __name__, url_prefix="/marketing/offers")

ROLES = ("marketer", "admin")
OFFERS_PAGE = 50
REDEMPTIONS_PAGE = 50
ID = f"int(max={MAX_ID})"


@marketing_offers.context_processor
def offer_helpers() -> dict:
    currency = load_program(db.session).settings.currency
    return {
        "currency": currency, "kind_label": kind_label, "coupon_code": codes.display,
        "benefit": lambda offer: benefit(offer, currency), "conditions": lambda offer: conditions(offer, currency),
        "coupon_status": lambda status: str(COUPON_STATUS_LABELS.get(status, status)),
        "batch_status": lambda status: str(BATCH_STATUS_LABELS.get(status, status)),
    }


def _offer_or_404(offer_id: int) -> Offer:
    try:
        return services.get_offer(db.session, offer_id)
    except NotFound:
        abort(404)


def _cursor(name: str) -> int | None:
    """A paging cursor from the query string; anything that is not an id we could have made is ignored."""
    value = request.args.get(name, type=int)
    return value if value is not None and 0 < value <= MAX_ID else None


def _batch_or_404(batch_id: int) -> CouponBatch:
    try:
        return batches.get_batch(db.session, batch_id)
    except NotFound:
        abort(404)


# --- offers --------------------------------------------------------------------------------------

@marketing_offers.get("/")
@staff_required(*ROLES)
def index():
    after = _cursor("after")
    offers = services.list_offers(db.session, limit=OFFERS_PAGE, after_id=after)
    older = offers[-1].id if len(offers) == OFFERS_PAGE else None
    return render_template("marketing/offers/index.html", reports=services.offer_reports(db.session, offers),
                           older=older, paged=after is not None)


@marketing_offers.route("/new", methods=["GET", "POST"])
@staff_required(*ROLES)
def new():
    form = NewOfferForm(tiers=load_program(db.session).tiers)
    if not form.is_submitted():
        return _form_page(form)
    if not form.validate():
        return _form_page(form, status=422)
    try:
        offer = services.create_offer(db.session, form.offer_spec(), now=utcnow(), staff_user=current_staff())
    except ValidationFailed as error:
        db.session.rollback()
        form.show_refusal(error, load_program(db.session).settings.currency)
        return _form_page(form, status=422)
    db.session.commit()
    flash(_("Offer “%(name)s” created.", name=offer.name), "success")
    return redirect(url_for(".detail", offer_id=offer.id))


@marketing_offers.route(f"/<{ID}:offer_id>/edit", methods=["GET", "POST"])
@staff_required(*ROLES)
def edit(offer_id: int):
    offer = _offer_or_404(offer_id)
    form = EditOfferForm(offer=offer, tiers=load_program(db.session).tiers)
    if not form.is_submitted():
        form.fill_from(offer)
        return _form_page(form, offer=offer)
    if not form.validate():
        return _form_page(form, offer=offer, status=422)
    changes = form.changes()
    if changes:
        try:
            services.update_offer(db.session, offer, changes, now=utcnow(), staff_user=current_staff())
        except ValidationFailed as error:
            db.session.rollback()
            form.show_refusal(error, load_program(db.session).settings.currency)
            return _form_page(form, offer=offer, status=422)
        db.session.commit()
    flash(_("Offer “%(name)s” saved.", name=offer.name) if changes else _("Nothing was changed."),
          "success" if changes else "info")
    return redirect(url_for(".detail", offer_id=offer.id))


def _form_page(form: OfferForm, offer: Offer | None = None, status: int = 200):
    return render_template("marketing/offers/form.html", form=form, offer=offer, value_hints=VALUE_HINTS), status


@marketing_offers.get(f"/<{ID}:offer_id>")
@staff_required(*ROLES)
def detail(offer_id: int):
    return _detail_page(_offer_or_404(offer_id), BatchForm(tiers=load_program(db.session).tiers))


def _detail_page(offer: Offer, batch_form: BatchForm, error: str | None = None, status: int = 200):
    before = _cursor("before")
    redemptions = services.offer_redemptions(db.session, offer, limit=REDEMPTIONS_PAGE, before_id=before)
    older = redemptions[-1].id if len(redemptions) == REDEMPTIONS_PAGE else None
    return render_template("marketing/offers/detail.html", report=services.offer_report(db.session, offer),
                           batches=batches.offer_batches(db.session, offer), batch_form=batch_form,
                           redemptions=redemptions, older=older, paged=before is not None, error=error,
                           ended=offer.valid_until is not None and offer.valid_until <= utcnow()), status


# --- batches -------------------------------------------------------------------------------------

@marketing_offers.post(f"/<{ID}:offer_id>/batches")
@staff_required(*ROLES)
def issue_batch(offer_id: int):
    """Create the batch, commit, then start the job (inline when there is no Redis) and show its progress."""
    offer = _offer_or_404(offer_id)
    form = BatchForm(tiers=load_program(db.session).tiers)
    if not form.validate():
        return _detail_page(offer, form, status=422)
    count = form.count.data if form.target.data == "codes" else None
    member_ids = None
    if form.target.data == "tier":
        member_ids = batches.active_member_ids_in_tier(db.session, int(form.tier.data))
        if not member_ids:
            form.tier.errors.append(_("No active member holds this tier."))
            return _detail_page(offer, form, status=422)
    try:
        batch = batches.create_batch(db.session, offer, now=utcnow(), count=count, member_ids=member_ids,
                                     staff_user=current_staff())
    except ValidationFailed as error:
        db.session.rollback()
        message = (_("This offer has ended: no more coupons can be issued.") if "offer" in (error.errors or {})
                   else _("Between 1 and %(max)s coupons at a time.", max=batches.MAX_BATCH))
        return _detail_page(offer, form, error=message, status=422)
    db.session.commit()
    batch_id = batch.id
    try:
        tasks.enqueue_batch(batch_id)
    except Exception as error:  # noqa: BLE001  a failed inline run or an unreachable queue: the batch says so
        db.session.rollback()
        current_app.logger.exception("coupon batch %s did not start", batch_id)
        batches.mark_failed(db.session, batch_id, f"{type(error).__name__}: {error}", utcnow())
        db.session.commit()
        flash(_("Issuing the coupons failed; see the batch."), "error")
    return redirect(url_for(".batch", batch_id=batch_id))


@marketing_offers.get(f"/batches/<{ID}:batch_id>")
@staff_required(*ROLES)
def batch(batch_id: int):
    found = _batch_or_404(batch_id)
    return render_template("marketing/offers/batch.html", batch=found, progress=_progress(found))


@marketing_offers.get(f"/batches/<{ID}:batch_id>/progress.json")
@staff_required(*ROLES)
def batch_progress(batch_id: int):
    """Polled by the batch page while the job runs."""
    return jsonify(_progress(_batch_or_404(batch_id))), 200, {"Cache-Control": "no-store"}


def _progress(found: CouponBatch) -> dict:
    return {"id": found.id, "status": found.status, "status_label": str(BATCH_STATUS_LABELS[found.status]),
            "issued": found.issued, "requested": found.requested, "error": found.error,
            "csv_url": url_for(".batch_csv", batch_id=found.id) if found.status == "done" else None}


@marketing_offers.get(f"/batches/<{ID}:batch_id>/coupons.csv")
@staff_required(*ROLES)
def batch_csv(batch_id: int):
    found = _batch_or_404(batch_id)
    filename = f"offer-{found.offer_id}-batch-{found.id}.csv"
    return Response(stream_with_context(batches.export_batch_csv(db.session, found)), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})
