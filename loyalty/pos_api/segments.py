"""/api/v1/segments for `manage` keys (docs/api.md "Segments"): save a rule over members, preview it,
read a segment and its members, evaluate it again now. Thin: parse, call loyalty.campaigns.segments,
serialise, commit."""

import marshmallow as ma
from flask import request
from marshmallow import fields, validate

from loyalty.answer_once import fingerprint
from loyalty.campaigns import segments
from loyalty.clock import utcnow
from loyalty.db import MAX_ID
from loyalty.extensions import db
from loyalty.pos_api.auth import require_scope, resource_blueprint
from loyalty.pos_api.idempotency import header_idempotency_key, json_response, run_idempotent
from loyalty.pos_api.members import decode_cursor, encode_cursor
from loyalty.pos_api.schemas import PageQuerySchema, StrictSchema, UTCDateTime

PREVIEW_SAMPLE_SIZE = 20

segments_api = resource_blueprint("api_segments", "/api/v1/segments", "Segments (manage scope)")

_RULE_DESCRIPTION = ('{"all": [...]}, {"any": [...]}, {"not": rule} or {"field", "op", "value", "within_days"?}; '
                     "fields and operators in docs/api.md \"Segments\"")


class SegmentCreateSchema(StrictSchema):
    name = fields.String(required=True, validate=validate.Length(1, 200))
    rule = fields.Dict(required=True, metadata={"description": _RULE_DESCRIPTION})


class SegmentPreviewSchema(StrictSchema):
    rule = fields.Dict(required=True, metadata={"description": _RULE_DESCRIPTION})


class SegmentSchema(ma.Schema):
    id = fields.Integer()
    name = fields.String()
    rule = fields.Dict()
    member_count = fields.Integer()
    evaluated_at = UTCDateTime(allow_none=True)


class PreviewSchema(ma.Schema):
    member_count = fields.Integer()
    sample = fields.List(fields.String(), metadata={"description": f"up to {PREVIEW_SAMPLE_SIZE} member numbers"})


class MemberNumberPageSchema(ma.Schema):
    data = fields.List(fields.String())
    next_cursor = fields.String(allow_none=True)


segment_schema = SegmentSchema()


@segments_api.route("", methods=["POST"])
@require_scope("manage")
@segments_api.arguments(SegmentCreateSchema)
@segments_api.response(201, SegmentSchema)
@segments_api.alt_response(422, description="validation-error naming the unknown field, operator or wrong value")
def create_segment(data):
    """Save a segment; it is evaluated at once. An `Idempotency-Key` header makes retries safe."""
    rule = segments.parse_rule(data["rule"])

    def work():
        segment = segments.create_segment(db.session, data["name"], rule, utcnow())
        return 201, segment_schema.dump(segment)

    return run_idempotent(header_idempotency_key("POST /segments"), fingerprint(request.get_json()), work)


@segments_api.route("/preview", methods=["POST"])
@require_scope("manage")
@segments_api.arguments(SegmentPreviewSchema)
@segments_api.response(200, PreviewSchema)
def preview_segment(data):
    """How many members a rule holds for now, and a sample of their numbers. Saves nothing."""
    return segments.preview(db.session, segments.parse_rule(data["rule"]), utcnow(), PREVIEW_SAMPLE_SIZE)


@segments_api.route(f"/<int(max={MAX_ID}):segment_id>")
@require_scope("manage")
@segments_api.response(200, SegmentSchema)
def get_segment(segment_id):
    return segments.get_segment(db.session, segment_id)


@segments_api.route(f"/<int(max={MAX_ID}):segment_id>/members")
@require_scope("manage")
@segments_api.arguments(PageQuerySchema, location="query")
@segments_api.response(200, MemberNumberPageSchema)
def segment_members(query, segment_id):
    """The member numbers in the segment as of its last evaluation, by member."""
    segments.get_segment(db.session, segment_id)
    after_id = decode_cursor(query["cursor"]) if "cursor" in query else None
    page, last_id = segments.segment_member_numbers(db.session, segment_id, query["limit"], after_id)
    return {"data": page, "next_cursor": encode_cursor(last_id) if last_id is not None else None}


@segments_api.route(f"/<int(max={MAX_ID}):segment_id>/evaluate", methods=["POST"])
@require_scope("manage")
@segments_api.response(200, SegmentSchema)
def evaluate_segment(segment_id):
    """Evaluate the segment now (it is also evaluated every night): who entered and left is recorded."""
    segments.evaluate_segment(db.session, segment_id, utcnow())
    body = segment_schema.dump(segments.get_segment(db.session, segment_id))
    db.session.commit()
    return json_response(body)
