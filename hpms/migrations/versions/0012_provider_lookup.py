"""provider id lookup

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07

A delivery report names the provider's message id: an index finds the message without a scan.
"""
from alembic import op


revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_message_provider', 'message', ['provider_id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_message_provider', table_name='message')
