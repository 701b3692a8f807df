"""Offer and coupon bodies of /api/v1 (docs/api.md "Offers and coupons"): what `manage` clients may send,
and the offer and coupon objects everyone gets back."""

import marshmallow as ma
from marshmallow import fields, validate

from loyalty.campaigns import codes
from loyalty.campaigns.models import COUPON_STATUSES, OFFER_KINDS
from loyalty.campaigns.offer_rules import FIELD_RANGES, LIST_FIELDS, OfferSpec
from loyalty.clock import utc_text
from loyalty.pos_api.schemas import StrictSchema, UTCDateTime


def _number(name: str, **openapi):
    """An optional integer; its range (offer_rules.FIELD_RANGES) is the service's to check, and is
    documented here."""
    low, high = FIELD_RANGES[name]
    return fields.Integer(strict=True, allow_none=True, metadata={"minimum": low, "maximum": high, **openapi})


def _names(**kwargs):
    return fields.List(fields.String(validate=validate.Length(1, 64)), allow_none=True,
                       validate=validate.Length(max=500), **kwargs)


class OfferCreateSchema(StrictSchema):
    """Parsed into a campaigns OfferSpec; the rules of each kind are checked by campaigns.services."""

    name = fields.String(required=True, validate=validate.Length(1, 200))
    kind = fields.String(required=True, metadata={"enum": list(OFFER_KINDS)})
    value = fields.Integer(strict=True, metadata={
        "description": "amount_off: minor units; percent_off: 1-100; bonus_points: points; "
                       "points_multiplier: percent of the earning, 200 = double; free_item: none"})
    min_spend = _number("min_spend", description="on the sale's subtotal")
    max_discount = _number("max_discount", description="cap on the money discount")
    skus = _names()
    categories = _names()
    valid_from = UTCDateTime(allow_none=True)
    valid_until = UTCDateTime(allow_none=True)
    valid_days = _number("valid_days", description="a personal coupon expires this many days after issue")
    tiers = fields.List(fields.String(validate=validate.Length(1, 32)), allow_none=True,
                        validate=validate.Length(max=50))
    per_member_limit = _number("per_member_limit")
    budget_count = _number("budget_count", description="redemptions in all")
    budget_amount = _number("budget_amount", description="discount money in all, minor units")
    stackable = fields.Boolean(load_default=False)

    @ma.post_load
    def to_spec(self, data, **kwargs) -> OfferSpec:
        """Absent and null are the same: no minimum spend, no list, no limit."""
        given = {name: value for name, value in data.items() if value is not None}
        return OfferSpec(**{**given, **{name: tuple(given.get(name, ())) for name in LIST_FIELDS}})


def _out(getter, openapi_type: str, *, nullable: bool = False, **openapi):
    """A read-only field computed by `getter`, typed in the OpenAPI document."""
    return fields.Function(getter, metadata={"type": openapi_type, **({"nullable": True} if nullable else {}),
                                             **openapi})


def _offer(name: str, openapi_type: str, **openapi):
    return _out(lambda report: getattr(report.offer, name), openapi_type, **openapi)


_STRINGS = {"items": {"type": "string"}}


class OfferSchema(ma.Schema):
    """Dumped from a campaigns.services.OfferReport."""

    id = _offer("id", "integer")
    name = _offer("name", "string")
    kind = _offer("kind", "string", enum=list(OFFER_KINDS))
    value = _offer("value", "integer")
    min_spend = _offer("min_spend", "integer")
    max_discount = _offer("max_discount", "integer", nullable=True)
    skus = _out(lambda report: list(report.offer.skus or []), "array", **_STRINGS)
    categories = _out(lambda report: list(report.offer.categories or []), "array", **_STRINGS)
    valid_from = _out(lambda report: utc_text(report.offer.valid_from), "string", format="date-time", nullable=True)
    valid_until = _out(lambda report: utc_text(report.offer.valid_until), "string", format="date-time", nullable=True)
    valid_days = _offer("valid_days", "integer", nullable=True)
    tiers = _out(lambda report: list(report.offer.tiers or []), "array", **_STRINGS)
    per_member_limit = _offer("per_member_limit", "integer", nullable=True)
    budget_count = _offer("budget_count", "integer", nullable=True)
    budget_amount = _offer("budget_amount", "integer", nullable=True)
    stackable = _offer("stackable", "boolean")
    issued_count = fields.Integer(metadata={"description": "coupons and codes issued"})
    redeemed_count = fields.Integer(metadata={"description": "redemptions, net of fully refunded sales"})
    discount_given = fields.Integer(metadata={"description": "discount money given, minor units"})
    created_at = _out(lambda report: utc_text(report.offer.created_at), "string", format="date-time")


class CouponIssueSchema(StrictSchema):
    member = fields.String(validate=validate.Length(1, 200),
                           metadata={"description": "personal coupon for this member"})
    code = fields.String(validate=validate.Length(1, 64),
                         metadata={"description": "generic code (generated if absent)"})
    limit = fields.Integer(strict=True, validate=validate.Range(1, 10**9),
                           metadata={"description": "uses of the generic code in all"})

    @ma.validates_schema
    def personal_or_generic(self, data, **kwargs):
        if "member" in data and ("code" in data or "limit" in data):
            raise ma.ValidationError("A personal coupon takes only member.", "member")
        if "member" not in data and "limit" not in data:
            raise ma.ValidationError("Give member (personal coupon) or limit (generic code).", "limit")


class CouponSchema(ma.Schema):
    """The coupon object, dumped from a Coupon."""

    code = _out(lambda coupon: codes.display(coupon.code), "string", example="C7K2-9QXD-PM4F")
    offer_id = fields.Integer()
    kind = _out(lambda coupon: coupon.offer.kind, "string", enum=list(OFFER_KINDS))
    status = fields.String(metadata={"enum": list(COUPON_STATUSES)})
    member_no = _out(lambda coupon: coupon.member.member_no if coupon.member_id else None, "string", nullable=True,
                     description="the member of a personal coupon; null for a generic or unassigned code")
    expires_at = UTCDateTime(allow_none=True)
    uses_left = fields.Integer()


class CouponPageSchema(ma.Schema):
    data = fields.List(fields.Nested(CouponSchema))
    next_cursor = fields.String(allow_none=True)


offer_schema = OfferSchema()
coupon_schema = CouponSchema()
