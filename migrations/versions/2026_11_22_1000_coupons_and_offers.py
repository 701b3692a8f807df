"""coupons and offers: offers, coupons, coupon batches, redemptions, per-member uses

Revision ID: 20261122c0up
Revises: cd68729b8879
Create Date: 2026-11-22 10:00:00

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '20261122c0up'
down_revision = 'cd68729b8879'
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade():
    op.create_table('offers',
    sa.Column('id', ID, nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('value', sa.BigInteger(), nullable=False),
    sa.Column('min_spend', sa.BigInteger(), nullable=False),
    sa.Column('max_discount', sa.BigInteger(), nullable=True),
    sa.Column('skus', sa.JSON(), nullable=False),
    sa.Column('categories', sa.JSON(), nullable=False),
    sa.Column('valid_from', sa.DateTime(timezone=True), nullable=True),
    sa.Column('valid_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('valid_days', sa.Integer(), nullable=True),
    sa.Column('tiers', sa.JSON(), nullable=False),
    sa.Column('per_member_limit', sa.Integer(), nullable=True),
    sa.Column('budget_count', sa.BigInteger(), nullable=True),
    sa.Column('budget_amount', sa.BigInteger(), nullable=True),
    sa.Column('stackable', sa.Boolean(), nullable=False),
    sa.Column('redeemed_count', sa.BigInteger(), nullable=False),
    sa.Column('discount_given', sa.BigInteger(), nullable=False),
    sa.Column('created_by_client_id', ID, nullable=True),
    sa.Column('created_by_staff_id', ID, nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("kind IN ('amount_off', 'percent_off', 'free_item', 'bonus_points', 'points_multiplier')",
                       name=op.f('ck_offers_kind')),
    sa.CheckConstraint('redeemed_count >= 0 AND discount_given >= 0', name=op.f('ck_offers_counters_not_negative')),
    sa.CheckConstraint('budget_count IS NULL OR redeemed_count <= budget_count',
                       name=op.f('ck_offers_within_budget_count')),
    sa.CheckConstraint('budget_amount IS NULL OR discount_given <= budget_amount',
                       name=op.f('ck_offers_within_budget_amount')),
    sa.ForeignKeyConstraint(['created_by_client_id'], ['api_clients.id'],
                            name=op.f('fk_offers_created_by_client_id_api_clients')),
    sa.ForeignKeyConstraint(['created_by_staff_id'], ['staff_users.id'],
                            name=op.f('fk_offers_created_by_staff_id_staff_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_offers'))
    )
    op.create_table('coupon_batches',
    sa.Column('id', ID, nullable=False),
    sa.Column('offer_id', ID, nullable=False),
    sa.Column('requested', sa.Integer(), nullable=False),
    sa.Column('issued', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('member_ids', sa.JSON(), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('created_by_staff_id', ID, nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("status IN ('queued', 'running', 'done', 'failed')", name=op.f('ck_coupon_batches_status')),
    sa.CheckConstraint('issued >= 0 AND issued <= requested', name=op.f('ck_coupon_batches_progress')),
    sa.ForeignKeyConstraint(['offer_id'], ['offers.id'], name=op.f('fk_coupon_batches_offer_id_offers')),
    sa.ForeignKeyConstraint(['created_by_staff_id'], ['staff_users.id'],
                            name=op.f('fk_coupon_batches_created_by_staff_id_staff_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_coupon_batches'))
    )
    with op.batch_alter_table('coupon_batches', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_coupon_batches_offer_id'), ['offer_id'], unique=False)

    op.create_table('coupons',
    sa.Column('id', ID, nullable=False),
    sa.Column('code', sa.String(length=32), nullable=False),
    sa.Column('offer_id', ID, nullable=False),
    sa.Column('member_id', ID, nullable=True),
    sa.Column('batch_id', ID, nullable=True),
    sa.Column('generic', sa.Boolean(), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('uses_limit', sa.Integer(), nullable=False),
    sa.Column('uses_count', sa.Integer(), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('issued_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('redeemed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('voided_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("status IN ('issued', 'redeemed', 'void', 'expired')", name=op.f('ck_coupons_status')),
    sa.CheckConstraint('uses_limit >= 1 AND uses_count >= 0 AND uses_count <= uses_limit',
                       name=op.f('ck_coupons_uses')),
    sa.ForeignKeyConstraint(['batch_id'], ['coupon_batches.id'], name=op.f('fk_coupons_batch_id_coupon_batches')),
    sa.ForeignKeyConstraint(['member_id'], ['members.id'], name=op.f('fk_coupons_member_id_members')),
    sa.ForeignKeyConstraint(['offer_id'], ['offers.id'], name=op.f('fk_coupons_offer_id_offers')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_coupons')),
    sa.UniqueConstraint('code', name=op.f('uq_coupons_code'))
    )
    with op.batch_alter_table('coupons', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_coupons_offer_id'), ['offer_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_coupons_batch_id'), ['batch_id'], unique=False)
        batch_op.create_index('ix_coupons_member_id_status', ['member_id', 'status'], unique=False)
        batch_op.create_index('ix_coupons_issued_by_expiry', ['expires_at'], unique=False,
                              postgresql_where=sa.text("status = 'issued'"),
                              sqlite_where=sa.text("status = 'issued'"))

    op.create_table('coupon_redemptions',
    sa.Column('id', ID, nullable=False),
    sa.Column('coupon_id', ID, nullable=False),
    sa.Column('offer_id', ID, nullable=False),
    sa.Column('member_id', ID, nullable=True),
    sa.Column('transaction_id', ID, nullable=False),
    sa.Column('discount', sa.BigInteger(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('reversed_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['coupon_id'], ['coupons.id'], name=op.f('fk_coupon_redemptions_coupon_id_coupons')),
    sa.ForeignKeyConstraint(['member_id'], ['members.id'], name=op.f('fk_coupon_redemptions_member_id_members')),
    sa.ForeignKeyConstraint(['offer_id'], ['offers.id'], name=op.f('fk_coupon_redemptions_offer_id_offers')),
    sa.ForeignKeyConstraint(['transaction_id'], ['transactions.id'],
                            name=op.f('fk_coupon_redemptions_transaction_id_transactions')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_coupon_redemptions')),
    sa.UniqueConstraint('transaction_id', 'coupon_id', name=op.f('uq_coupon_redemptions_transaction_id_coupon_id'))
    )
    with op.batch_alter_table('coupon_redemptions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_coupon_redemptions_coupon_id'), ['coupon_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_coupon_redemptions_offer_id'), ['offer_id'], unique=False)

    op.create_table('offer_member_uses',
    sa.Column('offer_id', ID, nullable=False),
    sa.Column('member_id', ID, nullable=False),
    sa.Column('uses', sa.Integer(), nullable=False),
    sa.CheckConstraint('uses >= 0', name=op.f('ck_offer_member_uses_uses_not_negative')),
    sa.ForeignKeyConstraint(['member_id'], ['members.id'], name=op.f('fk_offer_member_uses_member_id_members')),
    sa.ForeignKeyConstraint(['offer_id'], ['offers.id'], name=op.f('fk_offer_member_uses_offer_id_offers')),
    sa.PrimaryKeyConstraint('offer_id', 'member_id', name=op.f('pk_offer_member_uses'))
    )


def downgrade():
    op.drop_table('offer_member_uses')
    with op.batch_alter_table('coupon_redemptions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_coupon_redemptions_offer_id'))
        batch_op.drop_index(batch_op.f('ix_coupon_redemptions_coupon_id'))

    op.drop_table('coupon_redemptions')
    with op.batch_alter_table('coupons', schema=None) as batch_op:
        batch_op.drop_index('ix_coupons_issued_by_expiry', postgresql_where=sa.text("status = 'issued'"),
                            sqlite_where=sa.text("status = 'issued'"))
        batch_op.drop_index('ix_coupons_member_id_status')
        batch_op.drop_index(batch_op.f('ix_coupons_batch_id'))
        batch_op.drop_index(batch_op.f('ix_coupons_offer_id'))

    op.drop_table('coupons')
    with op.batch_alter_table('coupon_batches', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_coupon_batches_offer_id'))

    op.drop_table('coupon_batches')
    op.drop_table('offers')
