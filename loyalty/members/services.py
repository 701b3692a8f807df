"""Member rules: enrolment, finding a member by any of their codes, and their card tokens."""

from collections.abc import Iterable, Sequence
from datetime import date, datetime, timedelta

import phonenumbers
import sqlalchemy as sa
from flask import current_app
from sqlalchemy.orm import Session, load_only

from loyalty.audit import record_audit
from loyalty.auth.models import StaffUser, Store
from loyalty.errors import CardTokenExpired, DuplicateMember, UnknownMember, ValidationFailed
from loyalty.members import cards
from loyalty.members.models import CONSENTS, ConsentEvent, Member
from loyalty.members.numbers import is_valid_member_no, random_member_no
from loyalty.points.models import TierChange
from loyalty.points.program import Program

# The column's length, as the forms and the API schema say.
MAX_EMAIL = 320


def normalize_phone(raw: str, default_region: str = "CN") -> str:
    """E.164 form of a phone number, or ValidationFailed."""
    try:
        parsed = phonenumbers.parse(raw, default_region)
    except phonenumbers.NumberParseException:
        parsed = None
    if parsed is None or not phonenumbers.is_valid_number(parsed):
        raise ValidationFailed("invalid phone number", errors={"phone": ["Not a valid phone number."]})
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def normalize_email(email: str) -> str:
    """What is stored and looked up: trimmed, in lower case, and then no longer than its column. Lower
    case can be longer than what was typed ("İ" becomes two characters), so a form's length check on
    the typed text does not settle it."""
    email = email.strip().lower()
    if len(email) > MAX_EMAIL:
        raise ValidationFailed("email too long", errors={"email": [f"At most {MAX_EMAIL} characters."]})
    return email


def enrol_member(session: Session, program: Program, *, name: str, now: datetime, email: str | None = None,
                 phone: str | None = None, birthday: date | None = None, home_store: Store | None = None,
                 email_marketing: bool = False, sms_marketing: bool = False,
                 consent_channel: str = "enrolment") -> Member:
    """A new active member in the entry tier. Email or phone is required; each belongs to one member.
    Consents given at enrolment are recorded as ConsentEvents with `consent_channel` (portal, staff, api)."""
    if not name.strip():
        # Every channel comes through here; the API's schema alone lets a name of spaces through.
        raise ValidationFailed("a name is required", errors={"name": ["Must not be blank."]})
    if not email and not phone:
        raise ValidationFailed("email or phone is required", errors={"email": ["Email or phone is required."]})
    email = normalize_email(email) if email else None
    phone = normalize_phone(phone) if phone else None
    _refuse_taken_contact(session, email, phone)
    member = Member(
        member_no=_unused_member_no(session), name=name.strip(), email=email, phone=phone, birthday=birthday,
        home_store_id=home_store.id if home_store else None, status="active", enrolled_at=now,
        tier_id=program.entry_tier.id, tier_since=now, points_balance=0, card_secret=cards.new_card_secret(),
        email_marketing=email_marketing, sms_marketing=sms_marketing,
    )
    session.add(member)
    session.flush()
    session.add(TierChange(member_id=member.id, to_tier_id=program.entry_tier.id, reason="enrolment",
                           created_at=now))
    for consent, granted in (("email_marketing", email_marketing), ("sms_marketing", sms_marketing)):
        if granted:
            session.add(ConsentEvent(member_id=member.id, consent=consent, granted=True, channel=consent_channel,
                                     created_at=now))
    return member


def _refuse_taken_contact(session: Session, email: str | None, phone: str | None) -> None:
    # The unique constraints are the real guard against a race; this gives the clear message.
    if email and session.scalar(sa.select(Member.id).where(Member.email == email)):
        raise DuplicateMember("a member with this email already exists")
    if phone and session.scalar(sa.select(Member.id).where(Member.phone == phone)):
        raise DuplicateMember("a member with this phone number already exists")


def _unused_member_no(session: Session) -> str:
    while True:
        candidate = random_member_no()
        if not session.scalar(sa.select(Member.id).where(Member.member_no == candidate)):
            return candidate


def get_member_by_no(session: Session, member_no: str) -> Member | None:
    return session.scalar(sa.select(Member).where(Member.member_no == member_no, Member.status != "erased"))


def resolve_member_codes(session: Session, codes: Iterable[str], now: datetime, *, lock: bool = False,
                         columns: Sequence | None = None) -> dict[str, Member | Exception]:
    """Map each code (card token, member number or E.164 phone) to its member, or to the error that
    says why it names nobody. One query whatever the mix of codes, so a batch of sales resolves
    cheaply; with `lock` it also locks the members found, in id order (the order every unit of work
    locks members in, so concurrent ones cannot deadlock). `columns` (Member attributes) loads only
    those; any other is read when first used."""
    by_code: dict[str, Member | Exception] = {}
    numbers, phones, tokens = {}, {}, {}
    for code in set(codes):
        cleaned = code.strip()
        if cleaned.isdigit() and is_valid_member_no(cleaned):
            numbers[cleaned] = code
        elif cleaned.startswith("+"):
            phones[cleaned] = code
        elif (decoded := cards.decode_card_token(cleaned)) is not None:
            tokens[code] = decoded
        by_code[code] = UnknownMember(f"no member has the code {code!r}")
    named = [condition for condition in (
        Member.member_no.in_(numbers) if numbers else None,
        Member.phone.in_(phones) if phones else None,
        Member.id.in_({decoded.member_id for decoded in tokens.values()}) if tokens else None,
    ) if condition is not None]
    if not named:
        return by_code
    query = sa.select(Member).where(sa.or_(*named), Member.status != "erased").order_by(Member.id)
    if columns:
        query = query.options(load_only(*columns, Member.member_no, Member.phone, Member.card_secret))
    if lock:
        query = query.with_for_update(of=Member).execution_options(populate_existing=True)
    by_id = {}
    for member in session.scalars(query):
        by_id[member.id] = member
        if member.member_no in numbers:
            by_code[numbers[member.member_no]] = member
        if member.phone in phones:
            by_code[phones[member.phone]] = member
    for code, decoded in tokens.items():
        by_code[code] = _check_token(by_id.get(decoded.member_id), decoded, now)
    return by_code


def resolve_member_code(session: Session, code: str, now: datetime) -> Member:
    found = resolve_member_codes(session, [code], now)[code]
    if isinstance(found, Exception):
        raise found
    return found


def _check_token(member: Member | None, decoded: cards.DecodedToken, now: datetime) -> Member | Exception:
    config = current_app.config
    if member is None or not cards.token_is_genuine(config["SECRET_KEY"], decoded, member.card_secret):
        return UnknownMember("the card token is not genuine")
    age = now - decoded.issued_at
    if age > timedelta(seconds=config["CARD_TOKEN_MAX_AGE_SECONDS"]):
        return CardTokenExpired("the card token is too old: ask the member to refresh their card")
    if age < -timedelta(seconds=config["CARD_TOKEN_STEP_SECONDS"]):
        return UnknownMember("the card token is from the future")
    return member


def current_card_token(member: Member, now: datetime) -> cards.CardToken:
    config = current_app.config
    return cards.issue_card_token(
        config["SECRET_KEY"], member.id, member.card_secret, now,
        step_seconds=config["CARD_TOKEN_STEP_SECONDS"], max_age_seconds=config["CARD_TOKEN_MAX_AGE_SECONDS"],
    )


def set_consents(session: Session, member: Member, choices: dict[str, bool], *, channel: str, now: datetime,
                 staff_user_id: int | None = None) -> list[ConsentEvent]:
    """Give or withdraw marketing consents; each actual change is recorded with its time and channel."""
    events = []
    for consent, granted in choices.items():
        if consent not in CONSENTS:
            raise ValidationFailed(f"unknown consent {consent!r}", errors={consent: ["Unknown consent."]})
        if getattr(member, consent) == bool(granted):
            continue
        setattr(member, consent, bool(granted))
        event = ConsentEvent(member_id=member.id, consent=consent, granted=bool(granted), channel=channel,
                             staff_user_id=staff_user_id, created_at=now)
        session.add(event)
        events.append(event)
    session.flush()
    return events


def erase_member(session: Session, member: Member, *, now: datetime, channel: str = "portal",
                 actor: StaffUser | None = None) -> None:
    """Right to erasure (docs/architecture.md invariant 8). Personal fields are removed from the member and from
    what other tables hold about them; the ledger, lots and transactions stay, tied to a member row that
    now names nobody, so the books still balance. Clearing the card secret kills every QR token ever
    shown; without a password hash and email nobody can sign in; the member number resolves to nobody.
    Idempotent."""
    from loyalty.members import gdpr

    if member.status == "erased":
        return
    personal = [member.name, member.email, member.phone, member.birthday.isoformat() if member.birthday else None]
    set_consents(session, member, {consent: False for consent in CONSENTS}, channel="erasure", now=now,
                 staff_user_id=actor.id if actor else None)
    gdpr.redact_traces(session, member, [value for value in personal if value])
    member.name = member.email = member.phone = member.birthday = None
    member.password_hash = member.card_secret = None
    member.status, member.erased_at = "erased", now
    record_audit(session, action="member.erase", actor=actor, member_id=member.id, at=now,
                 after={"status": "erased", "channel": channel})
    session.flush()
