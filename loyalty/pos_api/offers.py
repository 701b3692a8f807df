"""/api/v1 offer and coupon endpoints for `manage` keys (docs/api.md "Offers and coupons"): integrators
issue welcome and service-recovery coupons from their own systems. Thin: parse, call a service,
serialise, commit. The till's endpoints live in loyalty.pos_api.coupons (validate) and
loyalty.pos_api.members (a member's coupons)."""

from flask import request

from loyalty.answer_once import fingerprint
from loyalty.campaigns import services
from loyalty.clock import utcnow
from loyalty.db import MAX_ID
from loyalty.extensions import db
from loyalty.members.services import resolve_member_code
from loyalty.pos_api import offer_schemas as schemas
from loyalty.pos_api.auth import current_client, require_scope, resource_blueprint
from loyalty.pos_api.idempotency import header_idempotency_key, json_response, run_idempotent

offers = resource_blueprint("api_offers", "/api/v1/offers", "Offers (manage scope)")
coupon_admin = resource_blueprint("api_coupon_admin", "/api/v1/coupons", "Coupons (manage scope)")


@offers.route("", methods=["POST"])
@require_scope("manage")
@offers.arguments(schemas.OfferCreateSchema)
@offers.response(201, schemas.OfferSchema)
def create_offer(data):
    """Create an offer. An `Idempotency-Key` header makes retries safe."""

    def work():
        offer = services.create_offer(db.session, data, now=utcnow(), api_client=current_client())
        return 201, schemas.offer_schema.dump(services.offer_report(db.session, offer))

    return run_idempotent(header_idempotency_key("POST /offers"), fingerprint(request.get_json()), work)


@offers.route(f"/<int(max={MAX_ID}):offer_id>")
@require_scope("manage")
@offers.response(200, schemas.OfferSchema)
def get_offer(offer_id):
    """The offer with the coupons issued, the redemptions and the discount given so far."""
    return services.offer_report(db.session, services.get_offer(db.session, offer_id))


@offers.route(f"/<int(max={MAX_ID}):offer_id>/coupons", methods=["POST"])
@require_scope("manage")
@offers.arguments(schemas.CouponIssueSchema)
@offers.response(201, schemas.CouponSchema)
@offers.alt_response(422, description="validation-error, unknown-member")
def issue_coupon(data, offer_id):
    """`{"member": code}`: one personal coupon; `{"code": "SUMMER10", "limit": 10}`: one generic code
    usable `limit` times in all."""

    def work():
        now = utcnow()
        offer = services.get_offer(db.session, offer_id)
        if "member" in data:
            member = resolve_member_code(db.session, data["member"], now)
            coupon = services.issue_personal_coupon(db.session, offer, member, now=now, api_client=current_client())
        else:
            coupon = services.create_generic_code(db.session, offer, limit=data["limit"], code=data.get("code"),
                                                  now=now, api_client=current_client())
        return 201, schemas.coupon_schema.dump(coupon)

    request_sha256 = fingerprint({"offer": offer_id, "body": request.get_json()})
    return run_idempotent(header_idempotency_key("POST /offers/coupons"), request_sha256, work)


@coupon_admin.route("/<code>")
@require_scope("manage")
@coupon_admin.response(200, schemas.CouponSchema)
def get_coupon(code):
    return services.get_coupon(db.session, code)


@coupon_admin.route("/<code>/void", methods=["POST"])
@require_scope("manage")
@coupon_admin.response(200, schemas.CouponSchema)
@coupon_admin.alt_response(422, description="coupon-invalid: already used or expired")
def void_coupon(code):
    """Void a coupon that has not been used up. Voiding a void coupon again changes nothing."""
    coupon = services.void_coupon(db.session, code, now=utcnow(), api_client=current_client())
    body = schemas.coupon_schema.dump(coupon)
    db.session.commit()
    return json_response(body)
