"""/api/v1 handlers (API.md). Thin: parse, call a service, serialise, remember the answer, commit."""

import base64
from collections.abc import Callable
from datetime import datetime

import sqlalchemy as sa
from flask import request
from sqlalchemy.exc import DBAPIError

from loyalty.auth.store_binding import store_for_key
from loyalty.campaigns.redemption import preview_coupon
from loyalty.campaigns.services import usable_coupons
from loyalty.clock import utcnow
from loyalty.db import MAX_ID
from loyalty.errors import DomainError, NotFound, UnknownMember, ValidationFailed
from loyalty.extensions import db
from loyalty.members.services import enrol_member, get_member_by_no, resolve_member_code
from loyalty.metrics import count_refund
from loyalty.points.ledger import load_wallet
from loyalty.points.models import PointsEntry
from loyalty.points.program import load_program
from loyalty.pos_api import offer_schemas as campaign_schemas
from loyalty.pos_api import schemas
from loyalty.pos_api.auth import (
    api_rate_limit,
    authenticate_request,
    current_client,
    failed_lookup_limit,
    mark_failed_lookup,
)
from loyalty.pos_api.idempotency import (
    ATTEMPTS,
    REPLAYED_HEADERS,
    find_stored,
    fingerprint,
    json_response,
    lost_race,
    remember,
    replay,
)
from loyalty.pos_api.sale_posting import SaleRequest, post_sale_batch, post_sale_together
from loyalty.request_json import ApiBlueprint
from loyalty.sales.services import MemberSnapshot, get_sale, post_refund

members = ApiBlueprint("api_members", __name__, url_prefix="/api/v1/members", description="Members")
transactions = ApiBlueprint("api_transactions", __name__, url_prefix="/api/v1/transactions",
                            description="Sales and refunds")
coupons = ApiBlueprint("api_coupons", __name__, url_prefix="/api/v1/coupons", description="Coupons")
blueprints = [members, transactions, coupons]

# Validation answers that tell a client its code names no coupon it may use: what guessing meets.
GUESSED_COUPON_REASONS = frozenset({"unknown", "not-this-member"})
# An `Idempotency-Key` is stored with its endpoint prefixed, in a column of 300 characters.
MAX_IDEMPOTENCY_KEY = 255

for _blueprint in blueprints:
    _blueprint.before_request(authenticate_request)
    api_rate_limit()(_blueprint)


def run_idempotent(key: str | None, request_sha256: str, work: Callable[[], tuple[int, dict]]):
    """Answer a POST once: do the work and store its answer in the same commit, or replay the stored
    answer / refuse a changed body. Optimistic: the stored answers are only read when the work fails
    (a retry fails on the unique keys, or on the state the first attempt left, such as points already
    spent), so a first attempt, by far the common case, costs no extra statement."""
    client = current_client()
    for attempt in range(ATTEMPTS):
        try:
            status, body = work()
            if key is not None:
                remember(db.session, client, key, request_sha256, status, body)
            db.session.commit()
            return json_response(body, status)
        except (DBAPIError, DomainError) as error:
            db.session.rollback()
            if isinstance(error, DBAPIError) and not lost_race(error):
                raise
            stored = find_stored(db.session, client, {key: request_sha256}).get(key) if key is not None else None
            if isinstance(stored, DomainError):
                raise stored from None
            if stored is not None:
                return replay(stored)
            if isinstance(error, DomainError) or attempt == ATTEMPTS - 1:
                raise


def header_idempotency_key(endpoint: str) -> str | None:
    """The request's `Idempotency-Key` named for its endpoint, or None; too long a key is refused here
    rather than by the database."""
    header_key = request.headers.get("Idempotency-Key")
    if not header_key:
        return None
    if len(header_key) > MAX_IDEMPOTENCY_KEY:
        raise ValidationFailed("Idempotency-Key is too long",
                               errors={"Idempotency-Key": [f"At most {MAX_IDEMPOTENCY_KEY} characters."]})
    return f"{endpoint}:{header_key}"


def member_snapshot(member) -> MemberSnapshot:
    tier = load_program(db.session).tier(member.tier_id)
    return MemberSnapshot(member=member, tier=tier, points=load_wallet(db.session, member).summary(utcnow()))


def find_member(member_no: str):
    member = get_member_by_no(db.session, member_no)
    if member is None:
        mark_failed_lookup()
        raise NotFound(f"no member has the number {member_no!r}")
    return member


def resolve_member(code: str, now: datetime):
    """The member a card token, member number or phone names; a code naming nobody is a failed lookup."""
    try:
        return resolve_member_code(db.session, code, now)
    except UnknownMember:
        mark_failed_lookup()
        raise


# --- members -----------------------------------------------------------------------------------

@members.route("", methods=["POST"])
@members.arguments(schemas.MemberCreateSchema)
@members.response(201, schemas.MemberSchema)
@members.alt_response(403, description="store_code names a store other than the key's")
@members.alt_response(409, description="duplicate-member or idempotency-conflict")
def enrol(data):
    """Enrol a member. An `Idempotency-Key` header makes retries safe."""
    key = header_idempotency_key("POST /members")

    def work():
        now = utcnow()
        store = store_for_key(current_client(), data.get("store_code"))
        consents = data.get("consents") or {}
        member = enrol_member(
            db.session, load_program(db.session), name=data["name"], email=data.get("email"),
            phone=data.get("phone"), birthday=data.get("birthday"), home_store=store, now=now,
            email_marketing=consents.get("email_marketing", False),
            sms_marketing=consents.get("sms_marketing", False),
        )
        return 201, schemas.member_schema.dump(member_snapshot(member))

    return run_idempotent(key, fingerprint(request.get_json()), work)


@members.route("/lookup")
@members.arguments(schemas.LookupQuerySchema, location="query")
@members.response(200, schemas.MemberSchema)
@members.alt_response(410, description="card-token-expired")
@failed_lookup_limit()
def lookup(query):
    """Resolve a card token, member number or E.164 phone to the member."""
    try:
        member = resolve_member(query["code"], utcnow())
    except UnknownMember as error:
        raise NotFound(error.detail) from error
    return member_snapshot(member)


@members.route("/<member_no>")
@members.response(200, schemas.MemberSchema)
@failed_lookup_limit()
def get_member(member_no):
    return member_snapshot(find_member(member_no))


@members.route("/<member_no>/coupons")
@members.arguments(schemas.PageQuerySchema, location="query")
@members.response(200, campaign_schemas.CouponPageSchema)
@failed_lookup_limit()
def member_coupons(query, member_no):
    """Coupons the member can use now (whatever the basket: min spend and SKU conditions still apply
    at the till), oldest first."""
    member = find_member(member_no)
    after_id = decode_cursor(query["cursor"]) if "cursor" in query else None
    page, last_id = usable_coupons(db.session, member, utcnow(), limit=query["limit"], after_id=after_id)
    return {"data": page, "next_cursor": encode_cursor(last_id) if last_id is not None else None}


@members.route("/<member_no>/points")
@members.arguments(schemas.PageQuerySchema, location="query")
@members.response(200, schemas.PointsPageSchema)
@failed_lookup_limit()
def member_points(query, member_no):
    """Ledger entries, newest first."""
    member = find_member(member_no)
    statement = sa.select(PointsEntry).where(PointsEntry.member_id == member.id)
    if "cursor" in query:
        statement = statement.where(PointsEntry.id < decode_cursor(query["cursor"]))
    entries = db.session.scalars(statement.order_by(PointsEntry.id.desc()).limit(query["limit"] + 1)).all()
    page = entries[: query["limit"]]
    more = len(entries) > query["limit"]
    return {"data": page, "next_cursor": encode_cursor(page[-1].id) if more else None}


def encode_cursor(last_id: int) -> str:
    return base64.urlsafe_b64encode(f"id:{last_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    """The id a cursor of `encode_cursor` holds; anything else, an id outside the 64-bit ids the
    database hands out included, is a validation error (not an overflow in the query)."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        prefix, _, value = raw.partition(":")
        if prefix != "id" or not value.isascii() or not value.isdigit() or not 0 < int(value) <= MAX_ID:
            raise ValueError(raw)
        return int(value)
    except (ValueError, UnicodeDecodeError):
        raise ValidationFailed("invalid cursor", errors={"cursor": ["Not a cursor this API returned."]}) from None


# --- sales and refunds ---------------------------------------------------------------------------

@transactions.route("", methods=["POST"])
@transactions.arguments(schemas.sale_schema)
@transactions.response(201, schemas.sale_response_schema)
@transactions.alt_response(403, description="store_code names a store other than the key's")
@transactions.alt_response(409, description="idempotency-conflict")
@transactions.alt_response(422, description="unknown-member, insufficient-points, coupon-invalid, ...")
def post_sale(sale):
    """Post a sale: coupons, points redemption, earning and tier upgrade in one DB transaction.
    Posting the same `external_id` with the same body again replays the first response."""
    outcome = post_sale_together(SaleRequest(current_client(), request.get_json(), sale))
    if outcome.error is not None:
        raise outcome.error
    return json_response(outcome.transaction, outcome.status, headers=REPLAYED_HEADERS if outcome.replayed else None)


@transactions.route("/batch", methods=["POST"])
@transactions.arguments(schemas.BatchSchema)
@transactions.response(200, schemas.BatchResponseSchema)
def post_batch(body):
    """Post up to 1,000 sales, each on its own: one failing does not stop the others."""
    client = current_client()
    outcomes = post_sale_batch([SaleRequest.parse(client, item) for item in body["sales"]])
    return json_response({"results": [outcome.as_batch_item() for outcome in outcomes]})


@transactions.route("/<external_id>")
@transactions.response(200, schemas.TransactionSchema)
def get_transaction(external_id):
    """A sale with its refunds."""
    sale = get_sale(db.session, current_client(), external_id)
    return {
        "external_id": sale.external_id, "member_no": sale.member.member_no if sale.member else None,
        "store_code": sale.store.code,
        "channel": sale.channel, "occurred_at": sale.occurred_at, "currency": sale.currency, "amount": sale.amount,
        "subtotal": sale.subtotal, "points_earned": sale.points_earned, "points_redeemed": sale.points_redeemed,
        "refunded_amount": sale.refunded_amount, "points_reversed": sale.points_reversed,
        "points_restored": sale.points_restored, "lines": sale.lines, "refunds": sale.refunds,
    }


@transactions.route("/<external_id>/refunds", methods=["POST"])
@transactions.arguments(schemas.RefundSchema)
@transactions.response(201, schemas.RefundResponseSchema)
@transactions.alt_response(422, description="refund-exceeds-sale")
def post_refund_view(refund, external_id):
    """Refund part or all of a sale; points are reversed and restored in proportion (API.md)."""

    posted: list[dict] = []

    def work():
        result = post_refund(db.session, load_program(db.session), current_client(), external_id, refund, utcnow())
        posted[:] = [schemas.refund_response_schema.dump(result)]
        return 201, posted[0]

    request_sha256 = fingerprint({"sale": external_id, "refund": request.get_json()})
    response = run_idempotent("refund:" + refund["external_id"], request_sha256, work)
    if posted and "Idempotent-Replayed" not in response.headers:  # committed now, not replayed
        count_refund(posted[0]["points_reversed"], posted[0]["points_restored"])
    return response


# --- coupons -----------------------------------------------------------------------------------

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
