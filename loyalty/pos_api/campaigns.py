"""/api/v1 campaign endpoints for `manage` keys (docs/api.md "Campaigns"): create a campaign over a
saved segment, launch it (the launch job draws control and treatment and acts on treatment), follow
its counts and audience, end it. Thin: parse, call loyalty.campaigns.campaigns, commit, answer."""

import marshmallow as ma
from flask import request
from marshmallow import fields, validate

from loyalty.answer_once import fingerprint
from loyalty.campaigns import campaign_tasks, campaigns
from loyalty.campaigns.campaign_models import ACTION_KINDS, ARMS, CAMPAIGN_STATUSES
from loyalty.campaigns.codes import display
from loyalty.clock import utc_text, utcnow
from loyalty.db import MAX_ID
from loyalty.extensions import db
from loyalty.pos_api.auth import current_client, require_scope, resource_blueprint
from loyalty.pos_api.idempotency import header_idempotency_key, json_response, run_idempotent
from loyalty.pos_api.members import decode_cursor, encode_cursor
from loyalty.pos_api.schemas import PageQuerySchema, StrictSchema

campaigns_api = resource_blueprint("api_campaigns", "/api/v1/campaigns", "Campaigns (manage scope)")

_ID = fields.Integer(strict=True, validate=validate.Range(1, MAX_ID))


class ActionSchema(StrictSchema):
    kind = fields.String(required=True, validate=validate.OneOf(ACTION_KINDS))
    offer_id = fields.Integer(strict=True, validate=validate.Range(1, MAX_ID),
                              metadata={"description": "coupon: one personal coupon of this offer"})
    points = fields.Integer(strict=True, metadata={"description": "bonus_points: points to each member"})
    promotion_id = fields.Integer(strict=True, validate=validate.Range(1, MAX_ID),
                                  metadata={"description": "promotion: the promotion treatment members get"})
    channel = fields.String(validate=validate.OneOf(("email", "sms")), metadata={"description": "message"})
    template = fields.String(validate=validate.Length(1, 200), metadata={"description": "message"})

    @ma.validates_schema
    def names_its_value(self, data, **kwargs):
        needs = {"coupon": "offer_id", "bonus_points": "points", "promotion": "promotion_id"}.get(data.get("kind"))
        if needs and needs not in data:
            raise ma.ValidationError(f"Required for kind {data['kind']!r}.", needs)

    @ma.post_load
    def to_spec(self, data, **kwargs) -> campaigns.ActionSpec:
        return campaigns.ActionSpec(**data)


class TriggerSchema(StrictSchema):
    on = fields.String(required=True, validate=validate.OneOf(
        ("enrolled", "birthday", "tier_upgraded", "inactive_days", "churn_risk_high")))
    days = fields.Integer(strict=True, validate=validate.Range(1, 3650))


class CampaignCreateSchema(StrictSchema):
    name = fields.String(required=True, validate=validate.Length(1, 200))
    segment_id = fields.Integer(strict=True, required=True, validate=validate.Range(1, MAX_ID))
    action = fields.Nested(ActionSchema, required=True)
    control_percent = fields.Integer(strict=True, required=True, metadata={"minimum": 0, "maximum": 50})
    conversion_window_days = fields.Integer(strict=True, load_default=30, metadata={"minimum": 1, "maximum": 365})
    trigger = fields.Nested(TriggerSchema, allow_none=True,
                            metadata={"description": "not available yet: a campaign with a trigger is refused"})

    @ma.post_load
    def to_spec(self, data, **kwargs) -> campaigns.CampaignSpec:
        return campaigns.CampaignSpec(**data)


class MembersQuerySchema(PageQuerySchema):
    arm = fields.String(validate=validate.OneOf(ARMS))


class CountsSchema(ma.Schema):
    members = fields.Integer()
    treatment = fields.Integer()
    control = fields.Integer()
    acted = fields.Integer(metadata={"description": "treatment members the action has reached"})


def campaign_body(campaign) -> dict:
    counts = campaigns.campaign_counts(campaign)
    return {
        "id": campaign.id, "name": campaign.name, "segment_id": campaign.segment_id, "action": campaign.action,
        "control_percent": campaign.control_percent, "conversion_window_days": campaign.conversion_window_days,
        "trigger": campaign.trigger, "status": campaign.status,
        "counts": {"members": counts.members, "treatment": counts.treatment, "control": counts.control,
                   "acted": counts.acted},
        "error": campaign.error, "created_at": utc_text(campaign.created_at),
        "launched_at": utc_text(campaign.launched_at), "ended_at": utc_text(campaign.ended_at),
    }


class CampaignSchema(ma.Schema):
    """Documents `campaign_body` in the OpenAPI document."""

    id = fields.Integer()
    name = fields.String()
    segment_id = fields.Integer()
    action = fields.Dict()
    control_percent = fields.Integer()
    conversion_window_days = fields.Integer()
    trigger = fields.Dict(allow_none=True)
    status = fields.String(metadata={"enum": list(CAMPAIGN_STATUSES)})
    counts = fields.Nested(CountsSchema)
    error = fields.String(allow_none=True, metadata={"description": "why the launch job last failed"})
    created_at = fields.String(metadata={"format": "date-time"})
    launched_at = fields.String(allow_none=True, metadata={"format": "date-time",
                                                           "description": "when the audience was frozen"})
    ended_at = fields.String(allow_none=True, metadata={"format": "date-time"})


class AudienceMemberSchema(ma.Schema):
    member_no = fields.String()
    arm = fields.String(metadata={"enum": list(ARMS)})
    drawn_at = fields.String(metadata={"format": "date-time"})
    acted_at = fields.String(allow_none=True, metadata={"format": "date-time"})
    coupon = fields.String(allow_none=True, metadata={"description": "the coupon code the member got"})
    points_entry_id = fields.Integer(allow_none=True)


class AudiencePageSchema(ma.Schema):
    data = fields.List(fields.Nested(AudienceMemberSchema))
    next_cursor = fields.String(allow_none=True)


@campaigns_api.route("", methods=["POST"])
@require_scope("manage")
@campaigns_api.arguments(CampaignCreateSchema)
@campaigns_api.response(201, CampaignSchema)
def create_campaign(spec):
    """Create a draft campaign. An `Idempotency-Key` header makes retries safe."""

    def work():
        campaign = campaigns.create_campaign(db.session, spec, now=utcnow(), api_client=current_client())
        return 201, campaign_body(campaign)

    return run_idempotent(header_idempotency_key("POST /campaigns"), fingerprint(request.get_json()), work)


@campaigns_api.route(f"/<int(max={MAX_ID}):campaign_id>")
@require_scope("manage")
@campaigns_api.response(200, CampaignSchema)
def get_campaign(campaign_id):
    """The campaign's status and counts."""
    return json_response(campaign_body(campaigns.get_campaign(db.session, campaign_id)))


@campaigns_api.route(f"/<int(max={MAX_ID}):campaign_id>/launch", methods=["POST"])
@require_scope("manage")
@campaigns_api.response(202, CampaignSchema)
def launch_campaign(campaign_id):
    """Launch a draft: the audience is frozen and drawn, and treatment gets the action, by a job.
    Launching again changes nothing (a launch still in progress has its job started again)."""
    campaign = campaigns.launch_campaign(db.session, campaign_id, now=utcnow(), api_client=current_client())
    launching = campaign.status == "launching"
    db.session.commit()
    if launching:
        campaign_tasks.enqueue_launch(campaign_id)
    return json_response(campaign_body(campaigns.get_campaign(db.session, campaign_id)), 202)


@campaigns_api.route(f"/<int(max={MAX_ID}):campaign_id>/end", methods=["POST"])
@require_scope("manage")
@campaigns_api.response(200, CampaignSchema)
def end_campaign(campaign_id):
    """End the campaign (a launch in progress stops at its next chunk). Ending again changes nothing."""
    campaign = campaigns.end_campaign(db.session, campaign_id, now=utcnow(), api_client=current_client())
    body = campaign_body(campaign)
    db.session.commit()
    return json_response(body)


@campaigns_api.route(f"/<int(max={MAX_ID}):campaign_id>/members")
@require_scope("manage")
@campaigns_api.arguments(MembersQuerySchema, location="query")
@campaigns_api.response(200, AudiencePageSchema)
def campaign_members(query, campaign_id):
    """The frozen audience with each member's arm and what the action gave, in draw order."""
    campaign = campaigns.get_campaign(db.session, campaign_id)
    after_id = decode_cursor(query["cursor"]) if "cursor" in query else None
    rows = campaigns.campaign_members(db.session, campaign, arm=query.get("arm"), limit=query["limit"] + 1,
                                      after_id=after_id)
    page = rows[: query["limit"]]
    return json_response({
        "data": [{"member_no": row.member_no, "arm": row.arm, "drawn_at": utc_text(row.drawn_at),
                  "acted_at": utc_text(row.acted_at), "coupon": display(row.coupon_code) if row.coupon_code else None,
                  "points_entry_id": row.points_entry_id} for row in page],
        "next_cursor": encode_cursor(page[-1].id) if len(rows) > len(page) else None,
    })
