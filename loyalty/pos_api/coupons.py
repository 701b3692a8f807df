"""/api/v1/coupons/validate (docs/api.md "Coupons at the till"): preview a coupon against a basket. The
coupon endpoints of `manage` keys are in loyalty.pos_api.offers."""

from loyalty.campaigns.redemption import preview_coupon
from loyalty.clock import utcnow
from loyalty.extensions import db
from loyalty.pos_api import schemas
from loyalty.pos_api.auth import failed_lookup_limit, mark_failed_lookup, resource_blueprint
from loyalty.pos_api.members import resolve_member

coupons = resource_blueprint("api_coupons", "/api/v1/coupons", "Coupons")

# Validation answers that tell a client its code names no coupon it may use: what guessing meets.
GUESSED_COUPON_REASONS = frozenset({"unknown", "not-this-member"})


@coupons.route("/validate", methods=["POST"])
@coupons.arguments(schemas.CouponValidateSchema)
@coupons.response(200, schemas.CouponValidationSchema)
@failed_lookup_limit()
def validate_coupon(data):
    """Preview a coupon against a basket (`amount` is the subtotal, as in a sale); changes nothing.
    An unknown code, another member's coupon or an unknown member is a failed lookup: the answers a
    guesser walks through. Expired, used, min-spend and the like are not: those name a real coupon
    the till holds, a cashier meets them every day, and reaching one by guessing cost failures first."""
    now = utcnow()
    member = resolve_member(data["member"], now) if data.get("member") else None
    answer = preview_coupon(db.session, data["code"], member, subtotal=data["amount"],
                            lines=data.get("lines") or [], now=now)
    if answer["reason"] in GUESSED_COUPON_REASONS:
        mark_failed_lookup()
    return answer
