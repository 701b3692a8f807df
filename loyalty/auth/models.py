"""Stores, the API clients and staff accounts bound to them, and the audit trail of staff actions."""

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from loyalty.db import BigId, created_at_column, id_column
from loyalty.extensions import db

API_SCOPES = ("pos", "manage")
STAFF_ROLES = ("admin", "marketer", "cashier")


class Store(db.Model):
    __tablename__ = "stores"

    id: Mapped[int] = id_column()
    code: Mapped[str] = mapped_column(sa.String(32), unique=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    # IANA name; times are stored in UTC and shown in the store's zone.
    timezone: Mapped[str] = mapped_column(sa.String(64), default="Asia/Shanghai")
    created_at: Mapped[datetime] = created_at_column()


class ApiClient(db.Model):
    """A POS or e-commerce system. The key itself is never stored: only its prefix (to recognise it in
    logs and lists) and its SHA-256 (to authenticate it)."""

    __tablename__ = "api_clients"

    id: Mapped[int] = id_column()
    name: Mapped[str] = mapped_column(sa.String(200))
    store_id: Mapped[int] = mapped_column(sa.ForeignKey("stores.id"))
    key_prefix: Mapped[str] = mapped_column(sa.String(16))
    key_sha256: Mapped[str] = mapped_column(sa.String(64), unique=True)
    # Space-separated subset of API_SCOPES.
    scopes: Mapped[str] = mapped_column(sa.String(100), default="pos")
    created_at: Mapped[datetime] = created_at_column()
    revoked_at: Mapped[datetime | None] = mapped_column()
    # Coarse: written at most every few minutes per key and web process (pos_api.auth.authenticate_request).
    last_used_at: Mapped[datetime | None] = mapped_column()

    store: Mapped[Store] = relationship(lazy="joined")

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes.split()


class StaffUser(db.Model):
    __tablename__ = "staff_users"

    id: Mapped[int] = id_column()
    email: Mapped[str] = mapped_column(sa.String(320), unique=True)
    password_hash: Mapped[str] = mapped_column(sa.String(200))
    role: Mapped[str] = mapped_column(sa.String(16))
    store_id: Mapped[int | None] = mapped_column(sa.ForeignKey("stores.id"))
    active: Mapped[bool] = mapped_column(default=True)
    # Part of every session's credential stamp (web/access.py): signing out or being disabled bumps it,
    # which ends every session and remember-me cookie of the account.
    session_epoch: Mapped[int] = mapped_column(default=0, server_default="0")
    created_at: Mapped[datetime] = created_at_column()

    store: Mapped[Store | None] = relationship()

    __table_args__ = (sa.CheckConstraint("role IN ('admin', 'marketer', 'cashier')", name="role"),)


class AuditEvent(db.Model):
    """Who did what to whom, when, with the state before and after."""

    __tablename__ = "audit_events"

    id: Mapped[int] = id_column()
    staff_user_id: Mapped[int | None] = mapped_column(sa.ForeignKey("staff_users.id"))
    api_client_id: Mapped[int | None] = mapped_column(sa.ForeignKey("api_clients.id"))
    member_id: Mapped[int | None] = mapped_column(BigId, sa.ForeignKey("members.id"), index=True)
    action: Mapped[str] = mapped_column(sa.String(64))
    # A target that is not a member, e.g. "store:S001", "staff:ann@example.com", "api_key:lk_ab12cde".
    subject: Mapped[str | None] = mapped_column(sa.String(120))
    before: Mapped[dict | None] = mapped_column(sa.JSON)
    after: Mapped[dict | None] = mapped_column(sa.JSON)
    created_at: Mapped[datetime] = created_at_column()

    # The audit trail is read newest first, across members.
    __table_args__ = (sa.Index("ix_audit_events_created_at", "created_at"),)


class RateLimitCounter(db.Model):
    """A rate-limit counter that every web process must share although no Redis is there to hold it
    (loyalty/rate_limits.py): the guessing limits (sign-in, password reset, sign-up, the
    API's failed lookups). One row per limit and key, counting until `expires_at`, when the window
    starts over."""

    __tablename__ = "rate_limit_counters"

    key: Mapped[str] = mapped_column(sa.String(255), primary_key=True)
    count: Mapped[int]
    expires_at: Mapped[datetime] = mapped_column(index=True)
