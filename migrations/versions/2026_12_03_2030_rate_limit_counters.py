"""rate-limit counters in the database: the guessing limits hold across web processes without Redis

Revision ID: 20261203rlim
Revises: 20261203sess
Create Date: 2026-12-03 20:30:00

"""
import sqlalchemy as sa
from alembic import op

revision = "20261203rlim"
down_revision = "20261203sess"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "rate_limit_counters",
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_rate_limit_counters")),
    )
    op.create_index(op.f("ix_rate_limit_counters_expires_at"), "rate_limit_counters", ["expires_at"])


def downgrade():
    op.drop_index(op.f("ix_rate_limit_counters_expires_at"), table_name="rate_limit_counters")
    op.drop_table("rate_limit_counters")
