"""The /api/v1 wire format (docs/api.md): what clients may send, and what they get back.

Input schemas refuse unknown fields, floats where integers belong and naive times. Output bodies
mask personal data.
"""

from datetime import UTC

import marshmallow as ma
from marshmallow import fields, validate

from loyalty.clock import utc_text
from loyalty.members.masks import mask_email, mask_phone
from loyalty.money import MAX_MONEY
from loyalty.points.models import MAX_POINTS
from loyalty.sales.values import BasketLine, Refund, Sale

STORE_CODE_RULE = "the key's own store, the default: a key is bound to one store, and any other code is forbidden"


class StrictSchema(ma.Schema):
    class Meta:
        unknown = ma.RAISE

    @ma.pre_load
    def refuse_unstorable_text(self, data, **kwargs):
        """Text no database column can hold, refused here as invalid input naming its field rather
        than failing in the database (a 500): NUL, which PostgreSQL text cannot store, and a lone
        UTF-16 surrogate ("\\ud800" is valid JSON), which has no UTF-8 encoding. Every input schema is
        a StrictSchema, and a nested one (a sale's lines) checks its own fields, so this covers
        every string field: top-level strings and lists of them here, the rest where they are."""
        if not hasattr(data, "items"):
            return data
        bad = {name: [UNSTORABLE_TEXT] for name, value in data.items() if _unstorable(value)}
        if bad:
            raise ma.ValidationError(bad)
        return data


UNSTORABLE_TEXT = "Must be text without NUL characters or unpaired surrogates."


def _unstorable(value) -> bool:
    if isinstance(value, str):
        return not _storable_text(value)
    return isinstance(value, list) and any(isinstance(item, str) and not _storable_text(item) for item in value)


def _storable_text(text: str) -> bool:
    if "\x00" in text:
        return False
    if text.isascii():
        return True
    try:
        text.encode()
    except UnicodeEncodeError:  # only a surrogate, U+D800 to U+DFFF, cannot be encoded as UTF-8
        return False
    return True


class UTCDateTime(fields.AwareDateTime):
    """RFC 3339 with an offset in, UTC `...Z` out."""

    def _deserialize(self, value, attr, data, **kwargs):
        parsed = super()._deserialize(value, attr, data, **kwargs)
        try:
            return parsed.astimezone(UTC)
        except OverflowError:
            # Valid RFC 3339 at the edge of the calendar (0001-01-01T00:00:00+00:01) with no UTC equivalent.
            raise ma.ValidationError("Out of the range of dates.") from None

    def _serialize(self, value, attr, obj, **kwargs):
        return utc_text(value)


def money(**kwargs):
    return fields.Integer(strict=True, validate=validate.Range(0, MAX_MONEY), **kwargs)


def points(**kwargs):
    return fields.Integer(strict=True, validate=validate.Range(0, MAX_POINTS), **kwargs)


# --- members -----------------------------------------------------------------------------------

class ConsentsSchema(StrictSchema):
    email_marketing = fields.Boolean(load_default=False)
    sms_marketing = fields.Boolean(load_default=False)


class MemberCreateSchema(StrictSchema):
    # Not blank: the pattern also tells OpenAPI readers (and generated clients) what is accepted.
    name = fields.String(required=True, validate=[validate.Length(1, 200),
                                                  validate.Regexp(r"^\s*\S", error="Must not be blank.")])
    email = fields.Email(validate=validate.Length(max=320))
    phone = fields.String(validate=validate.Length(3, 32))
    birthday = fields.Date()
    store_code = fields.String(validate=validate.Length(1, 32), metadata={"description": STORE_CODE_RULE})
    consents = fields.Nested(ConsentsSchema)

    @ma.validates_schema
    def email_or_phone(self, data, **kwargs):
        if not data.get("email") and not data.get("phone"):
            raise ma.ValidationError("Email or phone is required.", "email")


class TierSchema(ma.Schema):
    code = fields.String()
    name = fields.String()
    # A decimal sent as a string ("1.25", docs/api.md) so no client parses it as a float; apispec would
    # document any Decimal as a number.
    multiplier = fields.Decimal(as_string=True, places=2,
                                metadata={"type": "string", "pattern": r"^\d+\.\d{2}$", "example": "1.25"})


class MemberSchema(ma.Schema):
    """Dumped from a sales.services.MemberSnapshot."""

    member_no = fields.Function(lambda snap: snap.member.member_no)
    name = fields.Function(lambda snap: snap.member.name)
    email = fields.Function(lambda snap: mask_email(snap.member.email))
    phone = fields.Function(lambda snap: mask_phone(snap.member.phone))
    status = fields.Function(lambda snap: snap.member.status)
    tier = fields.Nested(TierSchema)
    points = fields.Method("dump_points")
    enrolled_at = fields.Function(lambda snap: utc_text(snap.member.enrolled_at))

    def dump_points(self, snap):
        summary = snap.points
        return {
            "balance": summary.balance, "available": summary.available, "pending": summary.pending,
            "expiring": [{"points": amount, "expires_at": utc_text(at)}
                         for amount, at in summary.expiring],
        }


class LookupQuerySchema(StrictSchema):
    code = fields.String(required=True, validate=validate.Length(1, 200))


class PageQuerySchema(StrictSchema):
    limit = fields.Integer(load_default=50, validate=validate.Range(1, 200))
    cursor = fields.String(validate=validate.Length(1, 100))


class PointsEntrySchema(ma.Schema):
    id = fields.Integer()
    kind = fields.String()
    points = fields.Integer()
    reason = fields.String()
    occurred_at = UTCDateTime()
    created_at = UTCDateTime()


class PointsPageSchema(ma.Schema):
    data = fields.List(fields.Nested(PointsEntrySchema))
    next_cursor = fields.String(allow_none=True)


# --- sales and refunds ---------------------------------------------------------------------------

class LineSchema(StrictSchema):
    sku = fields.String(required=True, validate=validate.Length(1, 64))
    category = fields.String(validate=validate.Length(1, 64))
    quantity = fields.Integer(strict=True, load_default=1, validate=validate.Range(1, 1_000_000))
    unit_price = money()
    amount = money(required=True)


class SaleSchema(StrictSchema):
    """Loads a sales.values.Sale. The rules about a sale as a whole (subtotal not below amount, no
    time in the future) are the service's: refused there, they are answered as this schema's are."""

    external_id = fields.String(required=True, validate=validate.Length(1, 128))
    member = fields.String(validate=validate.Length(1, 200))
    store_code = fields.String(validate=validate.Length(1, 32), metadata={"description": STORE_CODE_RULE})
    channel = fields.String(load_default="pos", validate=validate.OneOf(["pos", "online"]))
    occurred_at = UTCDateTime(required=True)
    currency = fields.String(required=True, validate=validate.Regexp(r"^[A-Z]{3}$"))
    amount = money(required=True, metadata={"description": "paid in money after every discount"})
    subtotal = money(metadata={"description": "basket before coupon and points discounts; defaults to amount"})
    lines = fields.List(fields.Nested(LineSchema), validate=validate.Length(max=500))
    coupons = fields.List(fields.String(validate=validate.Length(1, 64)), validate=validate.Length(max=20))
    points_redeemed = points(load_default=0)

    @ma.post_load
    def make_sale(self, data, **kwargs) -> Sale:
        return Sale(
            external_id=data["external_id"], occurred_at=data["occurred_at"], currency=data["currency"],
            amount=data["amount"], subtotal=data.get("subtotal"), member_code=data.get("member"),
            store_code=data.get("store_code"), channel=data["channel"],
            lines=tuple(BasketLine(**line) for line in data.get("lines", ())),
            coupon_codes=tuple(data.get("coupons", ())), points_redeemed=data["points_redeemed"],
        )


class BatchSchema(StrictSchema):
    # Items are validated one by one so that one bad sale fails alone (see transactions.post_batch).
    sales = fields.List(fields.Dict(), required=True, validate=validate.Length(1, 1000),
                        metadata={"description": "up to 1,000 Sale objects, each posted on its own"})


class CouponLineSchema(ma.Schema):
    code = fields.String()
    discount = fields.Integer()


class PromotionLineSchema(ma.Schema):
    id = fields.Integer()
    name = fields.String()
    points = fields.Integer()


class SaleResponseSchema(ma.Schema):
    """Dumped from a sales.services.RecordedSale."""

    external_id = fields.Function(lambda result: result.row.external_id)
    member_no = fields.Function(lambda result: result.member.member.member_no if result.member else None)
    amount = fields.Function(lambda result: result.row.amount)
    currency = fields.Function(lambda result: result.row.currency)
    occurred_at = fields.Function(lambda result: utc_text(result.row.occurred_at))
    points_earned = fields.Function(lambda result: result.row.points_earned)
    points_redeemed = fields.Function(lambda result: result.row.points_redeemed)
    coupons = fields.List(fields.Nested(CouponLineSchema))
    promotions = fields.List(fields.Nested(PromotionLineSchema),
                             metadata={"description": "what each promotion gave, included in points_earned"})
    member = fields.Nested(MemberSchema, allow_none=True)


class RefundSchema(StrictSchema):
    """Loads a sales.values.Refund (a time in the future is refused by the service)."""

    external_id = fields.String(required=True, validate=validate.Length(1, 128))
    amount = fields.Integer(strict=True, required=True, validate=validate.Range(1, MAX_MONEY))
    occurred_at = UTCDateTime()
    lines = fields.List(fields.Nested(LineSchema), validate=validate.Length(max=500))

    @ma.post_load
    def make_refund(self, data, **kwargs) -> Refund:
        return Refund(external_id=data["external_id"], amount=data["amount"], occurred_at=data.get("occurred_at"),
                      lines=tuple(BasketLine(**line) for line in data.get("lines", ())))


class RefundResponseSchema(ma.Schema):
    """Dumped from a sales.services.RecordedRefund."""

    external_id = fields.Function(lambda result: result.refund.external_id)
    transaction_external_id = fields.Function(lambda result: result.sale.external_id)
    amount = fields.Function(lambda result: result.refund.amount)
    points_reversed = fields.Function(lambda result: result.refund.points_reversed)
    points_restored = fields.Function(lambda result: result.refund.points_restored)
    member = fields.Nested(MemberSchema, allow_none=True)


class RefundLineSchema(ma.Schema):
    external_id = fields.String()
    amount = fields.Integer()
    occurred_at = UTCDateTime()
    points_reversed = fields.Integer()
    points_restored = fields.Integer()


class TransactionLineOutSchema(ma.Schema):
    sku = fields.String()
    category = fields.String(allow_none=True)
    quantity = fields.Integer()
    unit_price = fields.Integer()
    amount = fields.Integer()


class TransactionSchema(ma.Schema):
    """A sale with its refunds (GET /transactions/{external_id})."""

    external_id = fields.String()
    member_no = fields.String(allow_none=True)
    store_code = fields.String()
    channel = fields.String()
    occurred_at = UTCDateTime()
    currency = fields.String()
    amount = fields.Integer()
    subtotal = fields.Integer()
    points_earned = fields.Integer()
    points_redeemed = fields.Integer()
    refunded_amount = fields.Integer()
    points_reversed = fields.Integer()
    points_restored = fields.Integer()
    lines = fields.List(fields.Nested(TransactionLineOutSchema))
    refunds = fields.List(fields.Nested(RefundLineSchema))


class BatchItemSchema(ma.Schema):
    external_id = fields.String(allow_none=True)
    status = fields.Integer(metadata={"description": "the HTTP status this sale alone would have had"})
    replayed = fields.Boolean()
    transaction = fields.Nested(SaleResponseSchema)
    error = fields.Dict(metadata={"description": "an RFC 9457 problem"})


class BatchResponseSchema(ma.Schema):
    results = fields.List(fields.Nested(BatchItemSchema))


# --- coupons at the till (offer and coupon objects: loyalty.pos_api.offer_schemas) --------------------

class CouponValidateSchema(StrictSchema):
    code = fields.String(required=True, validate=validate.Length(1, 64))
    member = fields.String(validate=validate.Length(1, 200))
    amount = money(required=True, metadata={"description": "the basket before discounts: a sale's subtotal"})
    lines = fields.List(fields.Nested(LineSchema), validate=validate.Length(max=500))


class CouponValidationSchema(ma.Schema):
    code = fields.String()
    valid = fields.Boolean()
    reason = fields.String(allow_none=True)
    discount = fields.Integer()


member_schema = MemberSchema()
sale_response_schema = SaleResponseSchema()
refund_response_schema = RefundResponseSchema()
sale_schema = SaleSchema()
