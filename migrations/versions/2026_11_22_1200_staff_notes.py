"""staff notes: what staff keep on a member in the console

Revision ID: 20261122st4f
Revises: 20261122p0rt
Create Date: 2026-11-22 12:00:00

"""
import sqlalchemy as sa
from alembic import op

revision = "20261122st4f"
down_revision = "20261122p0rt"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "staff_notes",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("member_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("staff_user_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["member_id"], ["members.id"], name=op.f("fk_staff_notes_member_id_members")),
        sa.ForeignKeyConstraint(["staff_user_id"], ["staff_users.id"],
                                name=op.f("fk_staff_notes_staff_user_id_staff_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_staff_notes")),
    )
    with op.batch_alter_table("staff_notes", schema=None) as batch_op:
        batch_op.create_index("ix_staff_notes_member_id_created_at", ["member_id", "created_at"], unique=False)


def downgrade():
    with op.batch_alter_table("staff_notes", schema=None) as batch_op:
        batch_op.drop_index("ix_staff_notes_member_id_created_at")
    op.drop_table("staff_notes")
