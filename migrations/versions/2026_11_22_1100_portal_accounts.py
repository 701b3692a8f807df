"""portal accounts: consent events (each marketing consent change with its time and channel)

Revision ID: 20261122p0rt
Revises: 20261122c0up
Create Date: 2026-11-22 11:00:00

"""
import sqlalchemy as sa
from alembic import op

revision = "20261122p0rt"
down_revision = "20261122c0up"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "consent_events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("member_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("consent", sa.String(length=32), nullable=False),
        sa.Column("granted", sa.Boolean(), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("staff_user_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("consent IN ('email_marketing', 'sms_marketing')",
                           name=op.f("ck_consent_events_consent")),
        sa.ForeignKeyConstraint(["member_id"], ["members.id"], name=op.f("fk_consent_events_member_id_members")),
        sa.ForeignKeyConstraint(["staff_user_id"], ["staff_users.id"],
                                name=op.f("fk_consent_events_staff_user_id_staff_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consent_events")),
    )
    with op.batch_alter_table("consent_events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_consent_events_member_id"), ["member_id"], unique=False)


def downgrade():
    with op.batch_alter_table("consent_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_consent_events_member_id"))
    op.drop_table("consent_events")
