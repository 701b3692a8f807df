"""insights scores: RFM and churn on members, dated RFM snapshots, association rules, job runs

Revision ID: 20261122insi
Revises: 20261122st4f
Create Date: 2026-11-22 13:00:00

"""
import sqlalchemy as sa
from alembic import op

revision = "20261122insi"
down_revision = "20261122st4f"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
MEMBER_COLUMNS = (
    ("rfm_recency_days", sa.Integer()),
    ("rfm_frequency", sa.Integer()),
    ("rfm_monetary", sa.BigInteger()),
    ("rfm_r", sa.SmallInteger()),
    ("rfm_f", sa.SmallInteger()),
    ("rfm_m", sa.SmallInteger()),
    ("rfm_code", sa.String(length=3)),
    ("rfm_segment", sa.String(length=32)),
    ("rfm_scored_at", sa.DateTime(timezone=True)),
    ("churn_risk_bp", sa.Integer()),
    ("churn_band", sa.String(length=8)),
    ("churn_explanation", sa.String(length=200)),
    ("churn_scored_at", sa.DateTime(timezone=True)),
)


def upgrade():
    with op.batch_alter_table("members", schema=None) as batch_op:
        for name, type_ in MEMBER_COLUMNS:
            batch_op.add_column(sa.Column(name, type_, nullable=True))

    op.create_table(
        "rfm_snapshots",
        sa.Column("id", BigId, nullable=False),
        sa.Column("taken_on", sa.Date(), nullable=False),
        sa.Column("as_of", sa.DateTime(timezone=True), nullable=False),
        sa.Column("window_days", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rfm_snapshots")),
        sa.UniqueConstraint("taken_on", name=op.f("uq_rfm_snapshots_taken_on")),
    )
    op.create_table(
        "rfm_snapshot_members",
        sa.Column("snapshot_id", BigId, nullable=False),
        sa.Column("member_id", BigId, nullable=False),
        sa.Column("recency_days", sa.Integer(), nullable=True),
        sa.Column("frequency", sa.Integer(), nullable=True),
        sa.Column("monetary", sa.BigInteger(), nullable=True),
        sa.Column("r", sa.SmallInteger(), nullable=True),
        sa.Column("f", sa.SmallInteger(), nullable=True),
        sa.Column("m", sa.SmallInteger(), nullable=True),
        sa.Column("segment", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("snapshot_id", "member_id", name=op.f("pk_rfm_snapshot_members")),
    )
    op.create_table(
        "association_rules",
        sa.Column("id", BigId, nullable=False),
        sa.Column("level", sa.String(length=16), nullable=False),
        sa.Column("antecedent", sa.String(length=64), nullable=False),
        sa.Column("consequent", sa.String(length=64), nullable=False),
        sa.Column("together", sa.BigInteger(), nullable=False),
        sa.Column("antecedent_baskets", sa.BigInteger(), nullable=False),
        sa.Column("consequent_baskets", sa.BigInteger(), nullable=False),
        sa.Column("baskets", sa.BigInteger(), nullable=False),
        sa.Column("support", sa.Float(), nullable=False),
        sa.Column("confidence", sa.Float(), nullable=False),
        sa.Column("lift", sa.Float(), nullable=False),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("level IN ('sku', 'category')", name=op.f("ck_association_rules_level")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_association_rules")),
        sa.UniqueConstraint("level", "antecedent", "consequent",
                            name=op.f("uq_association_rules_level_antecedent_consequent")),
    )
    op.create_table(
        "insight_job_runs",
        sa.Column("id", BigId, nullable=False),
        sa.Column("job", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("duration_ms", sa.Integer(), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.CheckConstraint("status IN ('running', 'succeeded', 'failed')", name=op.f("ck_insight_job_runs_status")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_insight_job_runs")),
    )
    with op.batch_alter_table("insight_job_runs", schema=None) as batch_op:
        batch_op.create_index("ix_insight_job_runs_job_started_at", ["job", "started_at"], unique=False)


def downgrade():
    with op.batch_alter_table("insight_job_runs", schema=None) as batch_op:
        batch_op.drop_index("ix_insight_job_runs_job_started_at")
    op.drop_table("insight_job_runs")
    op.drop_table("association_rules")
    op.drop_table("rfm_snapshot_members")
    op.drop_table("rfm_snapshots")
    with op.batch_alter_table("members", schema=None) as batch_op:
        for name, _ in reversed(MEMBER_COLUMNS):
            batch_op.drop_column(name)
