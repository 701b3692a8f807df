"""Rules behind the staff console: the 360° view of a member, hand-recorded sales, staff notes,
enrolment at the counter and the audit trail. Like every service they flush and never commit; each
staff action on a member writes an AuditEvent (who, what, when, before/after).

Audit rows hold no personal data (no names, contacts or note text): erasing a member must leave
nothing personal behind, and the audit trail has to outlive the erasure.
"""

import hashlib
import re
import secrets
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from loyalty.audit import record_audit
from loyalty.auth.models import ApiClient, AuditEvent, StaffUser, Store
from loyalty.auth.services import store_by_code
from loyalty.campaigns.models import Coupon
from loyalty.campaigns.services import usable_coupons
from loyalty.errors import DomainError, UnknownMember, ValidationFailed
from loyalty.insights.crosssell import next_purchase_suggestions
from loyalty.insights.wording import describe_churn_facts
from loyalty.members.models import Member, StaffNote
from loyalty.members.services import enrol_member, normalize_phone, resolve_member_code, set_consents
from loyalty.points.ledger import PointsSummary, load_wallet
from loyalty.points.models import Tier
from loyalty.points.program import Program
from loyalty.sales.models import Transaction
from loyalty.sales.services import record_sales
from loyalty.sales.values import Sale

CONSOLE_CLIENT_PREFIX = "staff-console:"
CONSOLE_EXTERNAL_ID = re.compile(r"^console-[A-Za-z0-9_-]{1,32}-[0-9a-f]{32}$")
PHONE_LIKE = re.compile(r"^\+?\d{5,20}$")
NOTE_MAX_CHARS = 2000
RECENT_TRANSACTIONS = 10
RECENT_NOTES = 20
RECENT_COUPONS = 20
EXPIRING_SOON_DAYS = 90
SUGGESTIONS = 5


# --- finding the member at the till ---------------------------------------------------------------

def find_member_at_till(session: Session, code: str, now: datetime) -> Member:
    """The member a scanned or typed code names: card token, member number or phone. Cashiers type
    phones as people say them ("138 0013 8000"), so a code that names nobody as given is tried once
    more as a phone number of the program's region before giving up."""
    code = (code or "").strip()
    try:
        return resolve_member_code(session, code, now)
    except UnknownMember:
        digits = re.sub(r"[\s()-]", "", code)
        if not PHONE_LIKE.fullmatch(digits):
            raise
        try:
            phone = normalize_phone(digits)
        except ValidationFailed:
            raise UnknownMember(f"no member has the code {code!r}") from None
        if phone == code:
            raise
        return resolve_member_code(session, phone, now)


# --- the console's API client ---------------------------------------------------------------------

def console_store(session: Session, staff: StaffUser) -> Store:
    """The store a staff user records sales and enrols members for: their own, else the first store."""
    return staff.store or store_by_code(session, None)


def console_client(session: Session, store: Store) -> ApiClient:
    """The store's internal API client that hand-recorded sales are posted under, created on first use.
    Its key is random and thrown away, so nothing can authenticate as it over the API."""
    client = _find_console_client(session, store)
    if client is not None:
        return client
    # First use: lock the store row so two tills cannot create two clients (and split idempotency).
    # FOR NO KEY UPDATE, so the POS's sales in this store (whose foreign keys share-lock it) go on.
    session.execute(sa.select(Store.id).where(Store.id == store.id).with_for_update(key_share=True))
    client = _find_console_client(session, store)
    if client is None:
        unusable_key = secrets.token_urlsafe(32)
        client = ApiClient(name=CONSOLE_CLIENT_PREFIX + store.code, store=store, key_prefix="console",
                           scopes="pos", key_sha256=hashlib.sha256(unusable_key.encode()).hexdigest())
        session.add(client)
        session.flush()
    return client


def _find_console_client(session: Session, store: Store) -> ApiClient | None:
    return session.scalar(sa.select(ApiClient).where(
        ApiClient.name == CONSOLE_CLIENT_PREFIX + store.code, ApiClient.store_id == store.id,
    ).order_by(ApiClient.id).limit(1))


def new_console_external_id(store: Store) -> str:
    """A one-time id put in the sale form when it is rendered: submitting that form twice names the
    same sale, which is then recorded once."""
    return f"console-{store.code}-{uuid.uuid4().hex}"


# --- hand-recorded sales ---------------------------------------------------------------------------

@dataclass(frozen=True)
class HandSale:
    """What the cashier is told of a sale recorded by hand (stored as its answer, so a double submit
    tells the same)."""

    amount: int
    points_earned: int
    points_redeemed: int
    # The coupons the sale redeemed, as record_sales answers them: [{"code", "discount"}].
    coupons: list[dict] = field(default_factory=list)


def record_hand_sale(session: Session, program: Program, *, staff: StaffUser, client: ApiClient, member: Member,
                     sale: Sale, now: datetime) -> HandSale:
    """Record a sale typed in at the till, through the same `record_sales` as the POS API (same earning,
    redemption, coupon and tier rules), under the store's console client (`console_client`), with an
    audit event. A double submit of the form is answered once by the caller (loyalty.answer_once)."""
    if not CONSOLE_EXTERNAL_ID.fullmatch(sale.external_id or ""):
        raise ValidationFailed("malformed form id", errors={"external_id": ["Reload the form and try again."]})
    member = session.scalar(sa.select(Member).where(Member.id == member.id).with_for_update()
                            .execution_options(populate_existing=True))
    before = member.points_balance
    result = record_sales(session, program, client, [sale], now)[0]
    if isinstance(result, DomainError):
        raise result
    transaction = result.row
    _audit(session, staff, member, "sale.record", {"points_balance": before}, {
        "points_balance": member.points_balance, "external_id": sale.external_id, "store": client.store.code,
        "amount": transaction.amount, "subtotal": transaction.subtotal, "currency": transaction.currency,
        "points_earned": transaction.points_earned, "points_redeemed": transaction.points_redeemed,
        "coupons": result.coupons,
    }, now, api_client=client)
    session.flush()
    return HandSale(amount=transaction.amount, points_earned=transaction.points_earned,
                    points_redeemed=transaction.points_redeemed, coupons=result.coupons)


# --- notes, enrolment, audit ---------------------------------------------------------------------

def add_staff_note(session: Session, *, staff: StaffUser, member: Member, body: str, now: datetime) -> StaffNote:
    body = (body or "").strip()
    if not body:
        raise ValidationFailed("empty note", errors={"body": ["Write something first."]})
    if len(body) > NOTE_MAX_CHARS:
        raise ValidationFailed("note too long", errors={"body": [f"At most {NOTE_MAX_CHARS} characters."]})
    note = StaffNote(member_id=member.id, staff_user_id=staff.id, body=body, created_at=now)
    session.add(note)
    session.flush()
    _audit(session, staff, member, "note.add", None, {"note_id": note.id, "chars": len(body)}, now)
    session.flush()
    return note


def enrol_at_counter(session: Session, program: Program, *, staff: StaffUser, name: str, now: datetime,
                     email: str | None = None, phone: str | None = None, email_marketing: bool = False,
                     sms_marketing: bool = False) -> Member:
    """Enrol a member in the staff user's store. Consents are given through `set_consents`, so each one
    granted at the counter is recorded with its time, the staff channel and who asked."""
    if not (name or "").strip():
        raise ValidationFailed("name required", errors={"name": ["Required."]})
    store = console_store(session, staff)
    member = enrol_member(session, program, name=name, now=now, email=email or None, phone=phone or None,
                          home_store=store)
    set_consents(session, member, {"email_marketing": email_marketing, "sms_marketing": sms_marketing},
                 channel="staff", now=now, staff_user_id=staff.id)
    _audit(session, staff, member, "member.enrol", None, {
        "member_no": member.member_no, "store": store.code, "has_email": bool(member.email),
        "has_phone": bool(member.phone), "email_marketing": email_marketing, "sms_marketing": sms_marketing,
        "channel": "staff-console",
    }, now)
    session.flush()
    return member


def _audit(session: Session, staff: StaffUser, member: Member, action: str, before: dict | None,
           after: dict | None, now: datetime, api_client: ApiClient | None = None) -> None:
    record_audit(session, action=action, actor=staff, api_client=api_client, member_id=member.id, before=before,
                 after=after, at=now)


@dataclass(frozen=True)
class AuditLine:
    event: AuditEvent
    staff_email: str | None


def audit_trail(session: Session, member: Member, limit: int = 200) -> list[AuditLine]:
    """What staff did to this member, newest first, with who did it. Looks at the member's data
    (member.view) are the admin console's data-access log, not changes."""
    rows = session.execute(
        sa.select(AuditEvent, StaffUser.email)
        .outerjoin(StaffUser, StaffUser.id == AuditEvent.staff_user_id)
        .where(AuditEvent.member_id == member.id, AuditEvent.action != "member.view")
        .order_by(AuditEvent.created_at.desc(), AuditEvent.id.desc()).limit(limit)
    ).all()
    return [AuditLine(event=event, staff_email=email) for event, email in rows]


# --- the 360° view --------------------------------------------------------------------------------

@dataclass(frozen=True)
class MemberOverview:
    member: Member
    tier: Tier
    next_tier: Tier | None
    points: PointsSummary
    # (points, expires_at) of lots expiring within EXPIRING_SOON_DAYS, soonest first.
    expiring_soon: list[tuple[int, datetime]]
    transactions: list[Transaction]
    notes: list[StaffNote]
    coupons: list[Coupon]
    # The insights jobs' latest scores; None until the member is first scored (shown as "—").
    rfm_segment: str | None
    rfm_code: str | None
    churn_band: str | None
    # Whole percent, rounded half up from the stored basis points.
    churn_risk_percent: int | None
    churn_explanation: str | None
    # Cross-sell: what to offer next (item, because_of, together, confidence, lift), best first; empty
    # until the cross-sell job has computed rules.
    suggestions: list[dict] = field(default_factory=list)


def member_overview(session: Session, program: Program, member: Member, now: datetime) -> MemberOverview:
    """Everything the console's member page shows, read without locks."""
    summary = load_wallet(session, member).summary(now, expiry_dates=12)
    soon = now + timedelta(days=EXPIRING_SOON_DAYS)
    return MemberOverview(
        member=member, tier=member.tier, next_tier=program.next_tier(member.tier), points=summary,
        expiring_soon=[(points, at) for points, at in summary.expiring if at <= soon],
        transactions=recent_transactions(session, member),
        notes=list(session.scalars(
            sa.select(StaffNote).where(StaffNote.member_id == member.id)
            .order_by(StaffNote.created_at.desc(), StaffNote.id.desc()).limit(RECENT_NOTES))),
        coupons=member_coupons(session, member, now),
        rfm_segment=member.rfm_segment, rfm_code=member.rfm_code, churn_band=member.churn_band,
        churn_risk_percent=None if member.churn_risk_bp is None else (member.churn_risk_bp + 50) // 100,
        churn_explanation=describe_churn_facts(member.churn_explanation),
        suggestions=next_purchase_suggestions(session, member.id, now, limit=SUGGESTIONS),
    )


def recent_transactions(session: Session, member: Member, limit: int = RECENT_TRANSACTIONS) -> list[Transaction]:
    """The member's latest sales and refunds, newest first."""
    return list(session.scalars(
        sa.select(Transaction).where(Transaction.member_id == member.id)
        .order_by(Transaction.occurred_at.desc(), Transaction.id.desc()).limit(limit)))


def member_coupons(session: Session, member: Member, now: datetime) -> list[Coupon]:
    """The member's coupons usable now (the first page of what the POS API lists)."""
    coupons, _next_cursor = usable_coupons(session, member, now, limit=RECENT_COUPONS)
    return coupons
