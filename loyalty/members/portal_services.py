"""Rules behind the member portal: accounts (sign-up, sign-in, passwords and their reset links), the
profile, and what the dashboard and history show. Plain functions taking a session; the view commits."""

import hashlib
from dataclasses import dataclass
from datetime import date, datetime

import sqlalchemy as sa
from flask import current_app
from itsdangerous import BadSignature, TimestampSigner, URLSafeTimedSerializer
from sqlalchemy.orm import Session, selectinload

from loyalty.auth import services as auth_services
from loyalty.auth.services import PASSWORD_MIN_LENGTH, verify_password_or_waste_time
from loyalty.clock import utcnow
from loyalty.db import MAX_ID
from loyalty.errors import DuplicateMember, NotFound, ValidationFailed
from loyalty.members.models import ConsentEvent, Member
from loyalty.members.services import enrol_member, normalize_email, normalize_phone
from loyalty.points.models import PointsEntry, Tier
from loyalty.points.program import Program
from loyalty.points.tiers import qualifying_points
from loyalty.sales.models import Transaction

HISTORY_PAGE_SIZE = 20


# --- accounts ----------------------------------------------------------------------------------

def sign_up(session: Session, program: Program, *, name: str, email: str, password: str, now: datetime,
            phone: str | None = None, email_marketing: bool = False, sms_marketing: bool = False) -> Member:
    """A member enrolled from the portal, with a password to sign in with."""
    _check_new_password(password)
    member = enrol_member(session, program, name=name, email=email, phone=phone or None, now=now,
                          email_marketing=email_marketing, sms_marketing=sms_marketing, consent_channel="portal")
    member.password_hash = auth_services.password_hasher.hash(password)
    session.flush()
    return member


def authenticate_member(session: Session, email: str, password: str) -> Member | None:
    """The active member with this email and password; None for wrong, unknown, erased or suspended."""
    member = session.scalar(sa.select(Member).where(Member.email == email.strip().lower()))
    if not verify_password_or_waste_time(member.password_hash if member else None, password):
        return None
    return member if member.status == "active" else None


def set_password(member: Member, password: str) -> None:
    _check_new_password(password)
    member.password_hash = auth_services.password_hasher.hash(password)


def change_password(member: Member, current: str, new: str) -> None:
    if not verify_password_or_waste_time(member.password_hash, current):
        raise ValidationFailed("wrong password", errors={"current_password": ["Wrong password."]})
    set_password(member, new)


def _check_new_password(password: str) -> None:
    if len(password) < PASSWORD_MIN_LENGTH:
        raise ValidationFailed("password too short",
                               errors={"password": [f"At least {PASSWORD_MIN_LENGTH} characters."]})


class _ClockSigner(TimestampSigner):
    """Timestamps from the program clock, so link expiry follows the same time as everything else."""

    def get_timestamp(self) -> int:
        return int(utcnow().timestamp())


def _reset_serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="portal-password-reset",
                                  signer=_ClockSigner)


def _password_fingerprint(member: Member) -> str:
    # Part of the signed link: once the password changes (the link was used), the link is dead.
    return hashlib.sha256((member.password_hash or "no password").encode()).hexdigest()[:16]


def password_reset_token(member: Member) -> str:
    """A signed, expiring, single-use token for the reset link."""
    return _reset_serializer().dumps({"member": member.id, "password": _password_fingerprint(member)})


def member_for_reset_token(session: Session, token: str) -> Member | None:
    """The active member a reset link was made for; None when it is forged, expired or already used."""
    try:
        data = _reset_serializer().loads(token, max_age=current_app.config["PASSWORD_RESET_MAX_AGE_SECONDS"])
    except BadSignature:
        return None
    member = session.get(Member, data.get("member")) if isinstance(data, dict) else None
    if member is None or member.status != "active" or data.get("password") != _password_fingerprint(member):
        return None
    return member


def member_for_reset_request(session: Session, email: str) -> Member | None:
    """Whom a "forgot password" request is for: an active member with this email (counter-enrolled
    members without a password yet may set one this way)."""
    return session.scalar(sa.select(Member).where(Member.email == email.strip().lower(), Member.status == "active"))


# --- profile -----------------------------------------------------------------------------------

def update_profile(session: Session, member: Member, *, name: str, email: str, phone: str | None,
                   birthday: date | None) -> None:
    """Change the member's own details; email and phone stay unique, and sign-in needs the email."""
    if not name.strip():
        raise ValidationFailed("name is required", errors={"name": ["Required."]})
    email = normalize_email(email)
    phone = normalize_phone(phone) if phone else None
    others = sa.select(Member.id).where(Member.id != member.id)
    if session.scalar(others.where(Member.email == email)):
        raise DuplicateMember("a member with this email already exists")
    if phone and session.scalar(others.where(Member.phone == phone)):
        raise DuplicateMember("a member with this phone number already exists")
    member.name, member.email, member.phone, member.birthday = name.strip(), email, phone, birthday
    session.flush()


def consent_history(session: Session, member: Member, limit: int = 20) -> list[ConsentEvent]:
    """The member's latest consent changes, newest first."""
    return list(session.scalars(sa.select(ConsentEvent).where(ConsentEvent.member_id == member.id)
                                .order_by(ConsentEvent.id.desc()).limit(limit)))


# --- what the dashboard and history show ------------------------------------------------------

@dataclass(frozen=True)
class TierProgress:
    tier: Tier
    next_tier: Tier | None
    qualifying: int
    # Qualifying points still needed for the next tier (0 at the top tier).
    points_to_next: int


def tier_progress(session: Session, program: Program, member: Member, now: datetime) -> TierProgress:
    qualifying = qualifying_points(session, [member.id], program.qualifying_window_start(now))[member.id]
    following = program.next_tier(member.tier)
    needed = max(0, following.threshold - qualifying) if following else 0
    return TierProgress(tier=member.tier, next_tier=following, qualifying=qualifying, points_to_next=needed)


@dataclass(frozen=True)
class HistoryPage:
    entries: list[PointsEntry]
    page: int
    has_next: bool


def points_history(session: Session, member: Member, page: int = 1,
                   per_page: int = HISTORY_PAGE_SIZE) -> HistoryPage:
    """The member's ledger, newest first, one page at a time. A page beyond the last is empty, and so
    is one so far beyond that its offset would not fit the database's 64-bit integers."""
    page = min(max(1, page), MAX_ID // per_page)
    rows = session.scalars(
        sa.select(PointsEntry).where(PointsEntry.member_id == member.id)
        .order_by(PointsEntry.occurred_at.desc(), PointsEntry.id.desc())
        .offset((page - 1) * per_page).limit(per_page + 1)
        # Each line names its sale: load them together, not one query per line.
        .options(selectinload(PointsEntry.transaction))
    ).all()
    return HistoryPage(entries=list(rows[:per_page]), page=page, has_next=len(rows) > per_page)


def member_transaction(session: Session, member: Member, transaction_id: int) -> Transaction:
    """One of the member's own sales or refunds; anybody else's is NotFound, exactly like a missing one."""
    found = session.scalar(sa.select(Transaction).where(Transaction.id == transaction_id,
                                                        Transaction.member_id == member.id))
    if found is None:
        raise NotFound("no such transaction")
    return found
