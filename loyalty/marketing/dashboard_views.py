"""The marketer's dashboard (/marketing/): headline figures and charts over the latest scores, each
chart's numbers as a table and a CSV download, and "rescore now" with its progress. Marketers and
admins only. Charts are drawn in the browser by Chart.js, served from static/vendor (no CDN), from
the same JSON the tables are rendered from."""

from datetime import datetime

from babel.numbers import get_currency_precision
from flask import Blueprint, Response, abort, current_app, flash, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from loyalty.clock import utcnow
from loyalty.csv_export import table as csv_table
from loyalty.extensions import db
from loyalty.i18n import moment
from loyalty.insights import services, tasks
from loyalty.points.program import load_program
from loyalty.web.access import staff_required

marketing = Blueprint("marketing", __name__, url_prefix="/marketing")

ROLES = ("marketer", "admin")
CHART_TITLES = {
    "overview": _l("Headline figures"),
    "sales_trend": _l("Sales by month"),
    "tiers": _l("Members by tier"),
    "rfm_segments": _l("RFM segments: members and value"),
    "churn_bands": _l("Churn risk bands"),
    "segment_movement": _l("Segment movement since the previous snapshot"),
    "top_pairs": _l("Bought together: products"),
    "top_category_pairs": _l("Bought together: categories"),
    "jobs": _l("Scoring jobs"),
}

# Display names; the data, JSON and CSV keep the stable keys.
SEGMENT_LABELS = {
    "Champions": _l("Champions"), "Loyal Customers": _l("Loyal Customers"),
    "Potential Loyalists": _l("Potential Loyalists"), "New Customers": _l("New Customers"),
    "Promising": _l("Promising"), "Need Attention": _l("Need Attention"), "About To Sleep": _l("About To Sleep"),
    "At Risk": _l("At Risk"), "Can't Lose Them": _l("Can't Lose Them"), "Hibernating": _l("Hibernating"),
    "No Purchases": _l("No Purchases"), "Joined Since": _l("Joined Since"),
}
BAND_LABELS = {"low": _l("low"), "medium": _l("medium"), "high": _l("high")}
JOB_LABELS = {"rfm": _l("RFM scores"), "churn": _l("Churn risk"), "crosssell": _l("Bought together")}
STATUS_LABELS = {"running": _l("running"), "succeeded": _l("succeeded"), "failed": _l("failed")}


@marketing.context_processor
def dashboard_helpers() -> dict:
    return {"label": _label, "when": _when}


def _label(value):
    """The display name of a segment, band, job or status key; anything else as it is."""
    if isinstance(value, str):
        for labels in (SEGMENT_LABELS, BAND_LABELS, JOB_LABELS, STATUS_LABELS):
            if value in labels:
                return labels[value]
    return value


def _when(iso: str | None) -> str:
    return moment(datetime.fromisoformat(iso)) if iso else "—"


def _dashboard_data() -> dict:
    settings = services.InsightsSettings.from_config(current_app.config)
    data = services.dashboard(db.session, load_program(db.session), utcnow(), settings)
    data["overview"]["currency_digits"] = get_currency_precision(data["overview"]["currency"])
    return data


@marketing.get("/")
@staff_required(*ROLES)
def dashboard():
    data = _dashboard_data()
    names = {key: str(name) for labels in (SEGMENT_LABELS, BAND_LABELS, JOB_LABELS, STATUS_LABELS)
             for key, name in labels.items()}
    return render_template("marketing/dashboard.html", data=data, tables=services.chart_tables(data),
                           titles=CHART_TITLES, names=names, rescore_since=request.args.get("rescore"))


@marketing.get("/data.json")
@staff_required(*ROLES)
def dashboard_json():
    return jsonify(_dashboard_data())


@marketing.get("/data/<chart>.csv")
@staff_required(*ROLES)
def chart_csv(chart: str):
    table = services.chart_tables(_dashboard_data()).get(chart)
    if table is None:
        abort(404)
    filename = f"{chart}-{utcnow():%Y%m%d}.csv"
    return Response(csv_table(table["columns"], table["rows"]), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})


@marketing.get("/jobs.json")
@staff_required(*ROLES)
def jobs_json():
    """The latest run of each job, polled by the page while a rescore is under way."""
    return jsonify({"jobs": services.last_runs(db.session)})


@marketing.post("/rescore")
@staff_required(*ROLES)
def rescore():
    """Queue the three jobs (or, without Redis, run them now). The page then shows their progress."""
    requested_at = utcnow()
    try:
        tasks.request_rescore()
    except Exception as error:  # noqa: BLE001  an inline run failed; its run row says why
        db.session.rollback()
        current_app.logger.exception("rescore failed")
        flash(_("Rescoring failed: %(error)s", error=str(error)), "error")
        return redirect(url_for("marketing.dashboard"))
    flash(_("Rescoring started."), "success")
    return redirect(url_for("marketing.dashboard", rescore=requested_at.isoformat(timespec="microseconds")))
