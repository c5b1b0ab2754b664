"""revenue cycle

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06

A remittance is identified by its payer, trace number, amount and payment date (a payment
re-delivered in a new envelope posts nothing); payers carry their claim filing indicator
(SBR09); a coverage with Medicare as secondary payer carries the Medicare secondary type (SBR05).
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # plain ADD COLUMN on both backends: no table copy on SQLite (payer and coverage are referenced)
    op.execute("ALTER TABLE payer ADD COLUMN claim_filing VARCHAR(2) DEFAULT 'CI' NOT NULL")
    op.add_column('coverage', sa.Column('medicare_secondary_type', sqlmodel.sql.sqltypes.AutoString(length=2),
                                        nullable=True))
    op.create_index('uq_remittance_payment', 'remittance',
                    ['org_id', 'payer_identifier', 'trace_number', 'payment_cents', 'payment_date'], unique=True)


def downgrade() -> None:
    op.drop_index('uq_remittance_payment', table_name='remittance')
    with op.batch_alter_table('coverage', schema=None, recreate='never') as batch_op:
        batch_op.drop_column('medicare_secondary_type')
    with op.batch_alter_table('payer', schema=None, recreate='never') as batch_op:
        batch_op.drop_column('claim_filing')
