"""operator self-service: audit subjects, the audit trail by time, when each API key was last used

Revision ID: 20261203oper
Revises: 20261122insi
Create Date: 2026-12-03 09:00:00

"""
import sqlalchemy as sa
from alembic import op

revision = "20261203oper"
down_revision = "20261122insi"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("subject", sa.String(length=120), nullable=True))
        batch_op.create_index("ix_audit_events_created_at", ["created_at"], unique=False)
    with op.batch_alter_table("api_clients", schema=None) as batch_op:
        batch_op.add_column(sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True))


def downgrade():
    with op.batch_alter_table("api_clients", schema=None) as batch_op:
        batch_op.drop_column("last_used_at")
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_events_created_at")
        batch_op.drop_column("subject")
