"""GET /api/v1/campaigns/{id}/results for `manage` keys (docs/api.md "Campaigns"): treatment against
control, the uplift with its 95% intervals, what the campaign cost, the sample-ratio check, and a
one-sentence verdict. Thin: loyalty.insights.campaign_results computes, this module writes the wire."""

from fractions import Fraction

import marshmallow as ma
from marshmallow import fields

from loyalty.clock import utc_text
from loyalty.db import MAX_ID
from loyalty.extensions import db
from loyalty.insights.campaign_results import ArmResult, CampaignResults, campaign_results
from loyalty.money import fen_to_yuan
from loyalty.points.program import load_program
from loyalty.pos_api.auth import require_scope, resource_blueprint
from loyalty.pos_api.idempotency import json_response

campaign_results_api = resource_blueprint("api_campaign_results", "/api/v1/campaigns",
                                          "Campaign results (manage scope)")

_MONEY = {"description": "minor units"}


def _interval(kind, description):
    return fields.List(kind(), allow_none=True, metadata={"description": description, "minItems": 2,
                                                          "maxItems": 2, "nullable": True})


class WindowSchema(ma.Schema):
    from_ = fields.String(data_key="from", allow_none=True, metadata={"format": "date-time"})
    to = fields.String(allow_none=True, metadata={"format": "date-time"})


class ArmSchema(ma.Schema):
    members = fields.Integer()
    converted = fields.Integer(metadata={"description": "members with a sale, net of refunds, in their window"})
    conversion_rate = fields.Float(allow_none=True)
    revenue = fields.Integer(metadata=_MONEY)
    revenue_per_member = fields.Integer(allow_none=True, metadata=_MONEY)


class RateDifferenceSchema(ma.Schema):
    diff = fields.Float(allow_none=True)
    ci95 = _interval(fields.Float, "95% interval, normal approximation (two proportions)")


class MoneyDifferenceSchema(ma.Schema):
    diff = fields.Integer(allow_none=True, metadata=_MONEY)
    ci95 = _interval(fields.Integer, "95% interval, normal approximation with Welch's standard error, minor units")


class CostSchema(ma.Schema):
    points_value = fields.Integer(metadata={"description": "bonus points given, at the redeem value, minor units"})
    discounts = fields.Integer(metadata={"description": "discounts of the campaign's coupons, minor units"})


class UpliftSchema(ma.Schema):
    conversion_rate = fields.Nested(RateDifferenceSchema)
    revenue_per_member = fields.Nested(MoneyDifferenceSchema)
    incremental_revenue = fields.Integer(allow_none=True, metadata=_MONEY)
    cost = fields.Nested(CostSchema)
    net_incremental = fields.Integer(allow_none=True, metadata=_MONEY)


class SampleRatioSchema(ma.Schema):
    expected_control_share = fields.Float()
    observed_control_share = fields.Float(allow_none=True)
    p_value = fields.Float(allow_none=True, metadata={"description": "chi-square goodness of fit, 1 df"})
    mismatch = fields.Boolean(metadata={"description": "p < 0.001: the split is not what was asked"})


class CampaignResultsSchema(ma.Schema):
    window = fields.Nested(WindowSchema)
    treatment = fields.Nested(ArmSchema)
    control = fields.Nested(ArmSchema)
    uplift = fields.Nested(UpliftSchema)
    sample_ratio = fields.Nested(SampleRatioSchema)
    verdict = fields.String(metadata={"description": "the figures in one English sentence"})


@campaign_results_api.route(f"/<int(max={MAX_ID}):campaign_id>/results")
@require_scope("manage")
@campaign_results_api.response(200, CampaignResultsSchema)
def get_campaign_results(campaign_id):
    """Treatment against control over the conversion window, net of what the campaign gave."""
    results = campaign_results(db.session, campaign_id, load_program(db.session).settings)
    return json_response(results_body(results))


def _arm(arm: ArmResult) -> dict:
    return {"members": arm.members, "converted": arm.converted, "conversion_rate": arm.conversion_rate,
            "revenue": arm.revenue, "revenue_per_member": arm.revenue_per_member}


def _pair(interval) -> list | None:
    return None if interval is None else list(interval)


def results_body(results: CampaignResults) -> dict:
    uplift = results.uplift
    ratio = results.sample_ratio
    return {
        "window": {"from": utc_text(results.window_from), "to": utc_text(results.window_to)},
        "treatment": _arm(results.treatment),
        "control": _arm(results.control),
        "uplift": {
            "conversion_rate": {"diff": uplift.conversion_rate.diff, "ci95": _pair(uplift.conversion_rate.ci95)},
            "revenue_per_member": {"diff": uplift.revenue_per_member.diff,
                                   "ci95": _pair(uplift.revenue_per_member.ci95)},
            "incremental_revenue": uplift.incremental_revenue,
            "cost": {"points_value": uplift.cost.points_value, "discounts": uplift.cost.discounts},
            "net_incremental": uplift.net_incremental,
        },
        "sample_ratio": {"expected_control_share": ratio.expected_control_share,
                         "observed_control_share": ratio.observed_control_share,
                         "p_value": ratio.p_value, "mismatch": ratio.mismatch},
        "verdict": verdict(results),
    }


def _money(amount: int, currency: str) -> str:
    sign = "−" if amount < 0 else ""
    text = fen_to_yuan(abs(amount))
    return f"{sign}¥{text}" if currency == "CNY" else f"{sign}{text} {currency}"


def _per_member(amount: int, members: int) -> int:
    return int((Fraction(amount, members) + Fraction(1, 2)) // 1)


def verdict(results: CampaignResults) -> str:
    """E.g. "treatment members spent ¥12.40 more each, 95% interval ¥3.10–¥21.70; after ¥4.00 of
    coupons per member the campaign earned ¥8.40 per member"."""
    uplift = results.uplift
    difference = uplift.revenue_per_member
    if difference.diff is None or uplift.net_incremental is None:
        return "not enough members in both arms to compare yet"
    currency = results.currency
    members = results.treatment.members
    spent = (f"treatment members spent {_money(abs(difference.diff), currency)} "
             f"{'more' if difference.diff >= 0 else 'less'} each")
    if difference.ci95 is not None:
        low, high = difference.ci95
        spent += f", 95% interval {_money(low, currency)}–{_money(high, currency)}"
    given = [name for name, amount in (("coupons", uplift.cost.discounts), ("points", uplift.cost.points_value))
             if amount]
    net = _per_member(uplift.net_incremental, members)
    outcome = f"the campaign {'earned' if net >= 0 else 'lost'} {_money(abs(net), currency)} per member"
    if given:
        cost = _per_member(uplift.cost.discounts + uplift.cost.points_value, members)
        outcome = f"after {_money(cost, currency)} of {' and '.join(given)} per member {outcome}"
    sentence = f"{spent}; {outcome}"
    if results.sample_ratio.mismatch:
        sentence += (f"; but the split of control and treatment is not what was asked "
                     f"(p = {results.sample_ratio.p_value:.2g}), so the arms may not be comparable")
    return sentence
