"""A member's data rights: a copy of everything held about them, and the removal of their personal data
from what other tables hold (erasure itself is `services.erase_member`).

Both walk the schema instead of a fixed list of tables, so a table added later that points at a
member (notes, coupons, messages, campaign memberships) is exported and redacted without anyone having
to remember to come back here.
"""

import json
from datetime import date, datetime
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.orm import Session

from loyalty.db import Base
from loyalty.members.models import ConsentEvent, Member
from loyalty.points.models import PointsEntry, PointsLot, Tier, TierChange
from loyalty.sales.models import IdempotencyRecord, Transaction

REDACTED = "[erased]"
# The ledger is append-only (database triggers refuse UPDATE) and holds no personal data by design.
NEVER_REWRITTEN = {"members", "points_entries"}
# Exported in their own sections below; every other table with a member_id is exported generically.
EXPORTED_BY_NAME = {"members", "consent_events", "transactions", "transaction_lines", "points_entries",
                    "points_lots", "tier_changes", "lot_allocations"}
PERSONAL_KEYS = ("name", "email", "phone", "birthday")


def export_member_data(session: Session, member: Member, now: datetime) -> dict:
    """Everything held about the member, as JSON-ready data (the portal's "download my data")."""
    tiers = {tier.id: tier.code for tier in session.scalars(sa.select(Tier))}
    return {
        "exported_at": _iso(now),
        "profile": {
            "member_no": member.member_no, "name": member.name, "email": member.email, "phone": member.phone,
            "birthday": _iso(member.birthday), "status": member.status, "enrolled_at": _iso(member.enrolled_at),
            "home_store_id": member.home_store_id, "tier": tiers.get(member.tier_id),
            "tier_since": _iso(member.tier_since), "points_balance": member.points_balance,
            "has_password": member.password_hash is not None,
        },
        "consents": {"email_marketing": member.email_marketing, "sms_marketing": member.sms_marketing},
        "consent_events": [_row(event, "consent", "granted", "channel", "created_at") for event in session.scalars(
            sa.select(ConsentEvent).where(ConsentEvent.member_id == member.id).order_by(ConsentEvent.id))],
        "sales": [_sale(sale) for sale in session.scalars(
            sa.select(Transaction).where(Transaction.member_id == member.id, Transaction.kind == "sale")
            .order_by(Transaction.occurred_at, Transaction.id))],
        "ledger_entries": [_row(entry, "id", "kind", "points", "qualifying_points", "reason", "occurred_at",
                                "created_at", "transaction_id", "source") for entry in session.scalars(
            sa.select(PointsEntry).where(PointsEntry.member_id == member.id).order_by(PointsEntry.id))],
        "points_lots": [_row(lot, "id", "points", "remaining", "available_at", "expires_at", "transaction_id",
                             "created_at") for lot in session.scalars(
            sa.select(PointsLot).where(PointsLot.member_id == member.id).order_by(PointsLot.id))],
        "tier_changes": [
            {"from": tiers.get(change.from_tier_id), "to": tiers.get(change.to_tier_id), "reason": change.reason,
             "qualifying_points": change.qualifying_points, "created_at": _iso(change.created_at)}
            for change in session.scalars(
                sa.select(TierChange).where(TierChange.member_id == member.id).order_by(TierChange.id))],
        "other": _other_tables(session, member),
    }


def _sale(sale: Transaction) -> dict:
    data = _row(sale, "id", "external_id", "channel", "occurred_at", "currency", "amount", "subtotal",
                "points_earned", "points_redeemed", "refunded_amount", "points_reversed", "points_restored")
    data["store"] = sale.store.code if sale.store else None
    data["lines"] = [_row(line, "line_no", "sku", "category", "quantity", "unit_price", "amount")
                     for line in sale.lines]
    data["refunds"] = [_row(refund, "id", "external_id", "occurred_at", "amount", "points_reversed",
                            "points_restored") for refund in sale.refunds]
    return data


def _other_tables(session: Session, member: Member) -> dict:
    """Rows of every other table that names the member (staff notes, audit events, coupons, ...)."""
    found = {}
    for table in _member_tables():
        if table.name in EXPORTED_BY_NAME:
            continue
        rows = session.execute(sa.select(table).where(table.c.member_id == member.id)).mappings()
        found[table.name] = [{key: _json_value(value) for key, value in row.items()} for row in rows]
    return found


def redact_traces(session: Session, member: Member, personal_values: list[str]) -> None:
    """Remove the member's personal values from every other table that holds rows about them: text
    columns (a staff note saying "Wang Fang asked...") and JSON columns (an audit event's before/after),
    plus the stored API answers that replay their member object."""
    values = sorted({value for value in personal_values if value}, key=len, reverse=True)
    for table in _member_tables():
        if table.name in NEVER_REWRITTEN:
            continue
        _redact_rows(session, table, table.c.member_id == member.id, member.member_no, values)
    replies = IdempotencyRecord.__table__
    _redact_rows(session, replies, sa.cast(replies.c.response_body, sa.Text).like(f"%{member.member_no}%"),
                 member.member_no, values)


def _redact_rows(session: Session, table: sa.Table, where, member_no: str, values: list[str]) -> None:
    columns = [column for column in table.c if _rewritable(table, column)]
    if not columns:
        return
    keys = list(table.primary_key.columns)
    for row in session.execute(sa.select(*keys, *columns).where(where)).mappings().all():
        changes = {}
        for column in columns:
            original = row[column.name]
            cleaned = _redact(original, member_no, values)
            if cleaned != original:
                changes[column.name] = cleaned
        if changes:
            session.execute(sa.update(table).where(*(key == row[key.name] for key in keys)).values(**changes))


def _rewritable(table: sa.Table, column: sa.Column) -> bool:
    """Free text and JSON only: never keys, unique codes (a coupon code, an external id) or the short
    strings that hold kinds and codes ("points.adjust", "pos"), where a short name could match by chance."""
    if column.primary_key or column.foreign_keys or column.unique:
        return False
    if any(column.name in constraint.columns for constraint in table.constraints
           if isinstance(constraint, sa.UniqueConstraint)):
        return False
    if isinstance(column.type, sa.JSON):
        return True
    return isinstance(column.type, sa.String) and (column.type.length is None or column.type.length > 64)


def _redact(value, member_no: str, values: list[str]):
    if isinstance(value, str):
        for personal in values:
            value = value.replace(personal, REDACTED)
        return value
    if isinstance(value, list):
        return [_redact(item, member_no, values) for item in value]
    if isinstance(value, dict):
        cleaned = {key: _redact(item, member_no, values) for key, item in value.items()}
        if cleaned.get("member_no") == member_no:
            # A member object as the API rendered it (masked email and phone included).
            cleaned.update({key: None for key in PERSONAL_KEYS if key in cleaned})
        return cleaned
    return value


def _member_tables() -> list[sa.Table]:
    return [table for table in Base.metadata.sorted_tables
            if "member_id" in table.c and any(fk.column.table.name == "members"
                                              for fk in table.c.member_id.foreign_keys)]


def _row(obj, *fields) -> dict:
    return {name: _json_value(getattr(obj, name)) for name in fields}


def _json_value(value):
    if isinstance(value, datetime | date):
        return _iso(value)
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytes):
        return value.hex()
    return value


def _iso(value: datetime | date | None) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    return value.isoformat()


def export_filename(member: Member, now: datetime) -> str:
    return f"loyalty-{member.member_no}-{now:%Y%m%d}.json"


def dumps(data: dict) -> str:
    return json.dumps(data, ensure_ascii=False, indent=2)
