"""/api/v1 offer and coupon endpoints for `manage` keys (API.md "Offers and coupons"): integrators
issue welcome and service-recovery coupons from their own systems. Thin: parse, call a service,
serialise, commit. The till's endpoints (validate, a member's coupons) live in loyalty.pos_api.api."""

from flask import request

from loyalty.campaigns import services
from loyalty.clock import utcnow
from loyalty.db import MAX_ID
from loyalty.extensions import db
from loyalty.members.services import resolve_member_code
from loyalty.pos_api import offer_schemas as schemas
from loyalty.pos_api.api import header_idempotency_key, run_idempotent
from loyalty.pos_api.auth import api_rate_limit, authenticate_request, current_client, require_scope
from loyalty.pos_api.idempotency import fingerprint, json_response
from loyalty.request_json import ApiBlueprint

offers = ApiBlueprint("api_offers", __name__, url_prefix="/api/v1/offers", description="Offers (manage scope)")
coupon_admin = ApiBlueprint("api_coupon_admin", __name__, url_prefix="/api/v1/coupons",
                            description="Coupons (manage scope)")
blueprints = [offers, coupon_admin]

for _blueprint in blueprints:
    _blueprint.before_request(authenticate_request)
    api_rate_limit()(_blueprint)


def _idempotency_key(route: str) -> str | None:
    # The POS endpoints' reading of the header, with its length cap: the stored key has a 300-character
    # column, and a longer one would fail in the database (a 500) instead of as a validation error.
    return header_idempotency_key(route)


@offers.route("", methods=["POST"])
@require_scope("manage")
@offers.arguments(schemas.OfferCreateSchema)
@offers.response(201, schemas.OfferSchema)
def create_offer(data):
    """Create an offer. An `Idempotency-Key` header makes retries safe."""

    def work():
        offer = services.create_offer(db.session, data, now=utcnow(), api_client=current_client())
        return 201, schemas.offer_schema.dump(services.offer_report(db.session, offer))

    return run_idempotent(_idempotency_key("POST /offers"), fingerprint(request.get_json()), work)


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
    return run_idempotent(_idempotency_key("POST /offers/coupons"), request_sha256, work)


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
