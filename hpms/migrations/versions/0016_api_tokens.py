"""api tokens

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07

Bearer tokens of API clients (the FHIR read API): the SHA-256 of each token, its role, expiry,
revocation and last use.
"""
from alembic import op
import sqlalchemy as sa

import hpms.db

UTCDateTime = hpms.db.UTCDateTime


revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'api_token',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('org_id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=64), nullable=False),
        sa.Column('role', sa.String(length=32), nullable=False),
        sa.Column('token_hash', sa.String(length=64), nullable=False),
        sa.Column('created_at', UTCDateTime(timezone=True), nullable=False),
        sa.Column('created_by', sa.Integer(), nullable=True),
        sa.Column('expires_at', UTCDateTime(timezone=True), nullable=True),
        sa.Column('revoked_at', UTCDateTime(timezone=True), nullable=True),
        sa.Column('last_used_at', UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['org_id'], ['organization.id']),
        sa.ForeignKeyConstraint(['created_by'], ['hpms_user.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('token_hash', name='uq_api_token_hash'),
        sa.UniqueConstraint('org_id', 'name', name='uq_api_token_name'),
    )


def downgrade() -> None:
    op.drop_table('api_token')
