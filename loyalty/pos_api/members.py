"""/api/v1/members (docs/api.md "Members"): enrol, look up, a member's coupons and points. Thin: parse,
call a service, serialise, remember the answer, commit."""

import base64
from datetime import datetime

import sqlalchemy as sa
from flask import request

from loyalty.answer_once import fingerprint
from loyalty.auth.store_binding import store_for_key
from loyalty.campaigns.services import usable_coupons
from loyalty.clock import utcnow
from loyalty.db import MAX_ID
from loyalty.errors import NotFound, UnknownMember, ValidationFailed
from loyalty.extensions import db
from loyalty.members.services import enrol_member, get_member_by_no, resolve_member_code
from loyalty.points.ledger import load_wallet
from loyalty.points.models import PointsEntry
from loyalty.points.program import load_program
from loyalty.pos_api import offer_schemas, schemas
from loyalty.pos_api.auth import current_client, failed_lookup_limit, mark_failed_lookup, resource_blueprint
from loyalty.pos_api.idempotency import header_idempotency_key, run_idempotent
from loyalty.sales.services import MemberSnapshot

members = resource_blueprint("api_members", "/api/v1/members", "Members")


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
@members.response(200, offer_schemas.CouponPageSchema)
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
