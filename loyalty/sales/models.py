"""Sales and refunds as clients posted them, and the stored first answers that make retries safe."""

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from loyalty.db import BigId, created_at_column, id_column
from loyalty.extensions import db


class Transaction(db.Model):
    """A sale, or a refund of one (`sale_id` set). On a sale row the refund figures are cumulative;
    on a refund row they are that refund's own."""

    __tablename__ = "transactions"

    id: Mapped[int] = id_column()
    client_id: Mapped[int] = mapped_column(sa.ForeignKey("api_clients.id"))
    kind: Mapped[str] = mapped_column(sa.String(8))
    external_id: Mapped[str] = mapped_column(sa.String(128))
    sale_id: Mapped[int | None] = mapped_column(BigId, sa.ForeignKey("transactions.id"), index=True)
    # Nullable: anonymous sales are kept for analytics and earn nothing.
    member_id: Mapped[int | None] = mapped_column(BigId, sa.ForeignKey("members.id"))
    store_id: Mapped[int] = mapped_column(sa.ForeignKey("stores.id"))
    channel: Mapped[str] = mapped_column(sa.String(16), default="pos")
    occurred_at: Mapped[datetime] = mapped_column()
    currency: Mapped[str] = mapped_column(sa.String(3))
    # Money paid, integer minor units; subtotal is the basket before coupon and points discounts.
    amount: Mapped[int] = mapped_column(sa.BigInteger)
    subtotal: Mapped[int] = mapped_column(sa.BigInteger)
    points_earned: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    qualifying_points: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    points_redeemed: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    refunded_amount: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    points_reversed: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    qualifying_reversed: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    points_restored: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    created_at: Mapped[datetime] = created_at_column()

    lines: Mapped[list["TransactionLine"]] = relationship(
        order_by="TransactionLine.line_no", cascade="all, delete-orphan"
    )
    refunds: Mapped[list["Transaction"]] = relationship(order_by="Transaction.id")
    member = relationship("Member")
    store = relationship("Store")

    __table_args__ = (
        sa.UniqueConstraint("client_id", "kind", "external_id"),
        sa.CheckConstraint("kind IN ('sale', 'refund')", name="kind"),
        sa.CheckConstraint("amount >= 0", name="amount_not_negative"),
        sa.CheckConstraint("refunded_amount <= amount", name="refunds_within_sale"),
        sa.CheckConstraint(
            "kind = 'refund' OR points_reversed <= points_earned", name="reversal_within_earning"
        ),
        sa.Index("ix_transactions_member_id_occurred_at", "member_id", "occurred_at"),
    )


class TransactionLine(db.Model):
    __tablename__ = "transaction_lines"

    id: Mapped[int] = id_column()
    transaction_id: Mapped[int] = mapped_column(BigId, sa.ForeignKey("transactions.id"), index=True)
    line_no: Mapped[int] = mapped_column()
    sku: Mapped[str] = mapped_column(sa.String(64))
    category: Mapped[str | None] = mapped_column(sa.String(64))
    quantity: Mapped[int] = mapped_column(default=1)
    unit_price: Mapped[int] = mapped_column(sa.BigInteger)
    amount: Mapped[int] = mapped_column(sa.BigInteger)


class IdempotencyRecord(db.Model):
    """The first answer to a client's POST, replayed for any identical retry. Inserted in the same DB
    transaction as the work, so a crash leaves neither; the unique key makes concurrent twins wait
    for the first and then replay it."""

    __tablename__ = "idempotency_records"

    id: Mapped[int] = id_column()
    client_id: Mapped[int] = mapped_column(sa.ForeignKey("api_clients.id"))
    key: Mapped[str] = mapped_column(sa.String(300))
    request_sha256: Mapped[str] = mapped_column(sa.String(64))
    response_status: Mapped[int] = mapped_column()
    response_body: Mapped[dict] = mapped_column(sa.JSON)
    created_at: Mapped[datetime] = created_at_column()

    __table_args__ = (sa.UniqueConstraint("client_id", "key"),)
