"""segments: stored member rules, their current members, and entered/left history

Revision ID: 20261203segm
Revises: 20261203camp
Create Date: 2026-12-03 22:00:00

"""
import sqlalchemy as sa
from alembic import op

revision = "20261203segm"
down_revision = "20261203camp"
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade():
    op.create_table(
        "segments",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("rule", sa.JSON(), nullable=False),
        sa.Column("member_count", sa.BigInteger(), nullable=False),
        sa.Column("evaluated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_segments")),
    )
    op.create_table(
        "segment_members",
        sa.Column("segment_id", BIG_ID, nullable=False),
        sa.Column("member_id", BIG_ID, nullable=False),
        sa.Column("entered_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["member_id"], ["members.id"], name=op.f("fk_segment_members_member_id_members")),
        sa.ForeignKeyConstraint(["segment_id"], ["segments.id"], name=op.f("fk_segment_members_segment_id_segments")),
        sa.PrimaryKeyConstraint("segment_id", "member_id", name=op.f("pk_segment_members")),
    )
    op.create_index("ix_segment_members_member_id", "segment_members", ["member_id"], unique=False)
    op.create_table(
        "segment_changes",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("segment_id", BIG_ID, nullable=False),
        sa.Column("member_id", BIG_ID, nullable=False),
        sa.Column("change", sa.String(length=8), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("change IN ('entered', 'left')", name=op.f("ck_segment_changes_change")),
        sa.ForeignKeyConstraint(["member_id"], ["members.id"], name=op.f("fk_segment_changes_member_id_members")),
        sa.ForeignKeyConstraint(["segment_id"], ["segments.id"], name=op.f("fk_segment_changes_segment_id_segments")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_segment_changes")),
    )
    op.create_index("ix_segment_changes_segment_id_at", "segment_changes", ["segment_id", "at"], unique=False)
    op.create_index("ix_segment_changes_member_id", "segment_changes", ["member_id"], unique=False)


def downgrade():
    op.drop_index("ix_segment_changes_member_id", table_name="segment_changes")
    op.drop_index("ix_segment_changes_segment_id_at", table_name="segment_changes")
    op.drop_table("segment_changes")
    op.drop_index("ix_segment_members_member_id", table_name="segment_members")
    op.drop_table("segment_members")
    op.drop_table("segments")
