"""campaigns and the members each launch drew (one row per campaign and member)

Revision ID: 20261203camp
Revises: 20261203defer
Create Date: 2026-12-03 22:10:00

"""
import sqlalchemy as sa
from alembic import op

revision = "20261203camp"
down_revision = "20261203defer"
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade():
    op.create_table(
        "campaigns",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("segment_id", BIG_ID, nullable=False),
        sa.Column("action", sa.JSON(), nullable=False),
        sa.Column("control_percent", sa.Integer(), nullable=False),
        sa.Column("conversion_window_days", sa.Integer(), nullable=False),
        sa.Column("trigger", sa.JSON(), nullable=True),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("members_count", sa.Integer(), nullable=False),
        sa.Column("treatment_count", sa.Integer(), nullable=False),
        sa.Column("control_count", sa.Integer(), nullable=False),
        sa.Column("acted_count", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_by_client_id", BIG_ID, nullable=True),
        sa.Column("created_by_staff_id", BIG_ID, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("launched_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("progress_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('draft', 'launching', 'running', 'ended')", name=op.f("ck_campaigns_status")
        ),
        sa.CheckConstraint(
            "control_percent >= 0 AND control_percent <= 50", name=op.f("ck_campaigns_control_percent")
        ),
        sa.CheckConstraint("conversion_window_days >= 1", name=op.f("ck_campaigns_conversion_window")),
        sa.CheckConstraint(
            "members_count >= 0 AND treatment_count >= 0 AND control_count >= 0 AND acted_count >= 0",
            name=op.f("ck_campaigns_counts_not_negative"),
        ),
        sa.ForeignKeyConstraint(
            ["created_by_client_id"], ["api_clients.id"], name=op.f("fk_campaigns_created_by_client_id_api_clients")
        ),
        sa.ForeignKeyConstraint(
            ["created_by_staff_id"], ["staff_users.id"], name=op.f("fk_campaigns_created_by_staff_id_staff_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaigns")),
    )
    op.create_index(op.f("ix_campaigns_segment_id"), "campaigns", ["segment_id"], unique=False)
    op.create_table(
        "campaign_members",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("campaign_id", BIG_ID, nullable=False),
        sa.Column("member_id", BIG_ID, nullable=False),
        sa.Column("arm", sa.String(length=10), nullable=False),
        sa.Column("drawn_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("acted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("coupon_id", BIG_ID, nullable=True),
        sa.Column("points_entry_id", BIG_ID, nullable=True),
        sa.CheckConstraint("arm IN ('treatment', 'control')", name=op.f("ck_campaign_members_arm")),
        sa.CheckConstraint(
            "arm = 'treatment' OR acted_at IS NULL", name=op.f("ck_campaign_members_control_gets_nothing")
        ),
        sa.ForeignKeyConstraint(
            ["campaign_id"], ["campaigns.id"], name=op.f("fk_campaign_members_campaign_id_campaigns")
        ),
        sa.ForeignKeyConstraint(["member_id"], ["members.id"], name=op.f("fk_campaign_members_member_id_members")),
        sa.ForeignKeyConstraint(["coupon_id"], ["coupons.id"], name=op.f("fk_campaign_members_coupon_id_coupons")),
        sa.ForeignKeyConstraint(
            ["points_entry_id"], ["points_entries.id"],
            name=op.f("fk_campaign_members_points_entry_id_points_entries"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaign_members")),
        sa.UniqueConstraint("campaign_id", "member_id", name=op.f("uq_campaign_members_campaign_id_member_id")),
    )
    op.create_index(op.f("ix_campaign_members_member_id"), "campaign_members", ["member_id"], unique=False)
    op.create_index(
        "ix_campaign_members_campaign_id_arm_id", "campaign_members", ["campaign_id", "arm", "id"], unique=False
    )


def downgrade():
    op.drop_index("ix_campaign_members_campaign_id_arm_id", table_name="campaign_members")
    op.drop_index(op.f("ix_campaign_members_member_id"), table_name="campaign_members")
    op.drop_table("campaign_members")
    op.drop_index(op.f("ix_campaigns_segment_id"), table_name="campaigns")
    op.drop_table("campaigns")
