"""deferred jobs (kept while Redis is unreachable) and coupon batch progress time (to resume stalled batches)

Revision ID: 20261203defer
Revises: 20261203rlim
Create Date: 2026-12-03 20:40:00

"""
import sqlalchemy as sa
from alembic import op

revision = "20261203defer"
down_revision = "20261203rlim"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "deferred_jobs",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("func", sa.String(length=200), nullable=False),
        sa.Column("args", sa.JSON(), nullable=False),
        sa.Column("queue", sa.String(length=40), nullable=False),
        sa.Column("job_id", sa.String(length=200), nullable=True),
        sa.Column("timeout", sa.Integer(), nullable=False),
        sa.Column("retry_intervals", sa.JSON(), nullable=True),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deferred_jobs")),
        sa.UniqueConstraint("job_id", name=op.f("uq_deferred_jobs_job_id")),
    )
    with op.batch_alter_table("coupon_batches", schema=None) as batch_op:
        batch_op.add_column(sa.Column("progress_at", sa.DateTime(timezone=True), nullable=True))


def downgrade():
    with op.batch_alter_table("coupon_batches", schema=None) as batch_op:
        batch_op.drop_column("progress_at")
    op.drop_table("deferred_jobs")
