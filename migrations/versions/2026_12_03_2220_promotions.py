"""promotions: earning rules in time with budgets and per-member limits, and what each gave each sale

Revision ID: 20261203prom
Revises: 20261203camp, 20261203segm
Create Date: 2026-12-03 22:20:00

"""
import sqlalchemy as sa
from alembic import op

revision = "20261203prom"
down_revision = ("20261203camp", "20261203segm")
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade():
    op.create_table(
        "promotions",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("multiplier_percent", sa.Integer(), nullable=True),
        sa.Column("bonus_points", sa.BigInteger(), nullable=True),
        sa.Column("tiers", sa.JSON(), nullable=False),
        sa.Column("segment_id", BIG_ID, nullable=True),
        sa.Column("stores", sa.JSON(), nullable=False),
        sa.Column("channels", sa.JSON(), nullable=False),
        sa.Column("skus", sa.JSON(), nullable=False),
        sa.Column("categories", sa.JSON(), nullable=False),
        sa.Column("min_spend", sa.BigInteger(), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("days_of_week", sa.JSON(), nullable=False),
        sa.Column("hours_from", sa.String(length=5), nullable=True),
        sa.Column("hours_to", sa.String(length=5), nullable=True),
        sa.Column("per_member_limit", sa.BigInteger(), nullable=True),
        sa.Column("budget_points", sa.BigInteger(), nullable=True),
        sa.Column("points_given", sa.BigInteger(), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_by_client_id", BIG_ID, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("budget_points IS NULL OR points_given <= budget_points",
                           name=op.f("ck_promotions_within_budget")),
        sa.ForeignKeyConstraint(["created_by_client_id"], ["api_clients.id"],
                                name=op.f("fk_promotions_created_by_client_id_api_clients")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_promotions")),
    )
    op.create_table(
        "promotion_member_points",
        sa.Column("promotion_id", BIG_ID, nullable=False),
        sa.Column("member_id", BIG_ID, nullable=False),
        sa.Column("points", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["member_id"], ["members.id"],
                                name=op.f("fk_promotion_member_points_member_id_members")),
        sa.ForeignKeyConstraint(["promotion_id"], ["promotions.id"],
                                name=op.f("fk_promotion_member_points_promotion_id_promotions")),
        sa.PrimaryKeyConstraint("promotion_id", "member_id", name=op.f("pk_promotion_member_points")),
    )
    op.create_table(
        "promotion_grants",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("transaction_id", BIG_ID, nullable=False),
        sa.Column("promotion_id", BIG_ID, nullable=False),
        sa.Column("member_id", BIG_ID, nullable=False),
        sa.Column("points", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["member_id"], ["members.id"], name=op.f("fk_promotion_grants_member_id_members")),
        sa.ForeignKeyConstraint(["promotion_id"], ["promotions.id"],
                                name=op.f("fk_promotion_grants_promotion_id_promotions")),
        sa.ForeignKeyConstraint(["transaction_id"], ["transactions.id"],
                                name=op.f("fk_promotion_grants_transaction_id_transactions")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_promotion_grants")),
    )
    op.create_index(op.f("ix_promotion_grants_transaction_id"), "promotion_grants", ["transaction_id"])
    op.create_index(op.f("ix_promotion_grants_promotion_id"), "promotion_grants", ["promotion_id"])


def downgrade():
    op.drop_index(op.f("ix_promotion_grants_promotion_id"), table_name="promotion_grants")
    op.drop_index(op.f("ix_promotion_grants_transaction_id"), table_name="promotion_grants")
    op.drop_table("promotion_grants")
    op.drop_table("promotion_member_points")
    op.drop_table("promotions")
