"""/api/v1/promotions for `manage` keys (docs/api.md "Promotions"): earning rules a marketer runs for a
while. Thin: parse into a PromotionSpec (or its changes), call loyalty.points.promotions, serialise,
commit. Ranges and the rules between fields are the service's, answered as validation errors naming
the fields."""

import marshmallow as ma
from flask import request
from marshmallow import fields, validate

from loyalty.answer_once import fingerprint
from loyalty.clock import utcnow
from loyalty.db import MAX_ID
from loyalty.extensions import db
from loyalty.points import promotions as service
from loyalty.pos_api.auth import current_client, require_scope, resource_blueprint
from loyalty.pos_api.idempotency import header_idempotency_key, json_response, run_idempotent
from loyalty.pos_api.members import decode_cursor, encode_cursor
from loyalty.pos_api.schemas import PageQuerySchema, StrictSchema, UTCDateTime

promotions = resource_blueprint("api_promotions", "/api/v1/promotions", "Promotions (manage scope)")


class HoursSchema(StrictSchema):
    start = fields.String(required=True, data_key="from", metadata={"description": "HH:MM"})
    end = fields.String(required=True, data_key="to", metadata={"description": "HH:MM, or 24:00"})

    @ma.post_load
    def to_hours(self, data, **kwargs) -> service.Hours:
        return service.Hours(data["start"], data["end"])


def _names(length: int = 64):
    return fields.List(fields.String(validate=validate.Length(1, length)), allow_none=True,
                       validate=validate.Length(max=500))


def _number(description: str):
    return fields.Integer(strict=True, allow_none=True, metadata={"description": description})


class PromotionChangesSchema(StrictSchema):
    """Every field of a promotion, none required: PATCH's body (null clears a limit or a list)."""

    name = fields.String(validate=validate.Length(1, 200))
    multiplier_percent = _number("percent of the base points, 300 = triple (101-10000)")
    bonus_points = _number("fixed points added before the tier multiplier")
    tiers = _names(32)
    segment_id = fields.Integer(strict=True, allow_none=True, validate=validate.Range(1, MAX_ID))
    stores = _names(32)
    channels = _names(16)
    skus = _names()
    categories = _names()
    min_spend = _number("on the sale's subtotal, minor units")
    starts_at = UTCDateTime(allow_none=True)
    ends_at = UTCDateTime(allow_none=True)
    days_of_week = fields.List(fields.Integer(strict=True), allow_none=True, validate=validate.Length(max=7),
                               metadata={"description": "ISO days, 1 = Monday, in the store's time zone"})
    hours = fields.Nested(HoursSchema, allow_none=True,
                          metadata={"description": "daily window in the store's time zone, to excluded"})
    per_member_limit = _number("points one member may get from it in all")
    budget_points = _number("points it may give in all")

    @ma.post_load
    def to_changes(self, data, **kwargs) -> dict:
        return {name: tuple(value) if isinstance(value, list) else value for name, value in data.items()}


class PromotionCreateSchema(PromotionChangesSchema):
    name = fields.String(required=True, validate=validate.Length(1, 200))

    @ma.post_load
    def to_changes(self, data, **kwargs) -> service.PromotionSpec:
        """Absent and null are the same: no limit, any."""
        return service.PromotionSpec(**{name: tuple(value) if isinstance(value, list) else value
                                        for name, value in data.items() if value is not None})


class PromotionSchema(ma.Schema):
    """Dumped from a Promotion."""

    id = fields.Integer()
    name = fields.String()
    multiplier_percent = fields.Integer(allow_none=True)
    bonus_points = fields.Integer(allow_none=True)
    tiers = fields.List(fields.String())
    segment_id = fields.Integer(allow_none=True)
    stores = fields.List(fields.String())
    channels = fields.List(fields.String())
    skus = fields.List(fields.String())
    categories = fields.List(fields.String())
    min_spend = fields.Integer()
    starts_at = UTCDateTime(allow_none=True)
    ends_at = UTCDateTime(allow_none=True)
    days_of_week = fields.List(fields.Integer())
    hours = fields.Function(
        lambda promotion: {"from": promotion.hours_from, "to": promotion.hours_to} if promotion.hours_from else None,
        metadata={"type": "object", "nullable": True})
    per_member_limit = fields.Integer(allow_none=True)
    budget_points = fields.Integer(allow_none=True)
    points_given = fields.Integer(metadata={"description": "points given so far, in all"})
    ended_at = UTCDateTime(allow_none=True, metadata={"description": "when it was ended by hand"})
    created_at = UTCDateTime()


class PromotionPageSchema(ma.Schema):
    data = fields.List(fields.Nested(PromotionSchema))
    next_cursor = fields.String(allow_none=True)


promotion_schema = PromotionSchema()


@promotions.route("", methods=["POST"])
@require_scope("manage")
@promotions.arguments(PromotionCreateSchema)
@promotions.response(201, PromotionSchema)
@promotions.alt_response(422, description="validation-error naming the fields")
def create_promotion(spec):
    """Create a promotion. An `Idempotency-Key` header makes retries safe."""

    def work():
        promotion = service.create_promotion(db.session, spec, now=utcnow(), api_client=current_client())
        return 201, promotion_schema.dump(promotion)

    return run_idempotent(header_idempotency_key("POST /promotions"), fingerprint(request.get_json()), work)


@promotions.route("")
@require_scope("manage")
@promotions.arguments(PageQuerySchema, location="query")
@promotions.response(200, PromotionPageSchema)
def list_promotions(query):
    """Every promotion, oldest first."""
    after_id = decode_cursor(query["cursor"]) if "cursor" in query else None
    page = service.list_promotions(db.session, limit=query["limit"] + 1, after_id=after_id)
    more = len(page) > query["limit"]
    page = page[:query["limit"]]
    return {"data": page, "next_cursor": encode_cursor(page[-1].id) if more else None}


@promotions.route(f"/<int(max={MAX_ID}):promotion_id>")
@require_scope("manage")
@promotions.response(200, PromotionSchema)
def get_promotion(promotion_id):
    """The promotion with the points it has given so far."""
    return service.get_promotion(db.session, promotion_id)


@promotions.route(f"/<int(max={MAX_ID}):promotion_id>", methods=["PATCH"])
@require_scope("manage")
@promotions.arguments(PromotionChangesSchema)
@promotions.response(200, PromotionSchema)
@promotions.alt_response(422, description="validation-error naming the fields")
def update_promotion(changes, promotion_id):
    """Change some fields; the budget cannot go below what has been given, an ended promotion cannot
    change."""
    promotion = service.update_promotion(db.session, service.get_promotion(db.session, promotion_id), changes,
                                         now=utcnow(), api_client=current_client())
    body = promotion_schema.dump(promotion)
    db.session.commit()
    return json_response(body)


@promotions.route(f"/<int(max={MAX_ID}):promotion_id>/end", methods=["POST"])
@require_scope("manage")
@promotions.response(200, PromotionSchema)
def end_promotion(promotion_id):
    """Stop the promotion giving points from now on (again: changes nothing)."""
    promotion = service.end_promotion(db.session, service.get_promotion(db.session, promotion_id),
                                      now=utcnow(), api_client=current_client())
    body = promotion_schema.dump(promotion)
    db.session.commit()
    return json_response(body)
