"""session epochs: signing out (or being disabled) ends every session of the account

Revision ID: 20261203sess
Revises: 20261203oper
Create Date: 2026-12-03 19:00:00

"""
import sqlalchemy as sa
from alembic import op

revision = "20261203sess"
down_revision = "20261203oper"
branch_labels = None
depends_on = None


def upgrade():
    for table in ("staff_users", "members"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column("session_epoch", sa.Integer(), server_default="0", nullable=False))


def downgrade():
    for table in ("members", "staff_users"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column("session_epoch")
