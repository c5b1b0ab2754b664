"""portal access

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07

The patient portal: one-time sign-in codes (hashed), signed-in sessions (hashed tokens), the
per-address throttle of sign-in attempts, and the guardians who may act for other patients.
"""
from alembic import op
import sqlalchemy as sa

import hpms.db

UTCDateTime = hpms.db.UTCDateTime


revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'portal_code',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('org_id', sa.Integer(), nullable=False),
        sa.Column('patient_id', sa.Integer(), nullable=False),
        sa.Column('challenge_hash', sa.String(length=64), nullable=False),
        sa.Column('code_hash', sa.String(length=64), nullable=False),
        sa.Column('channel', sa.String(length=8), nullable=False),
        sa.Column('created_at', UTCDateTime(timezone=True), nullable=False),
        sa.Column('expires_at', UTCDateTime(timezone=True), nullable=False),
        sa.Column('used_at', UTCDateTime(timezone=True), nullable=True),
        sa.Column('failed_tries', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['org_id'], ['organization.id']),
        sa.ForeignKeyConstraint(['patient_id'], ['patient.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('challenge_hash', name='uq_portal_code_challenge'),
    )
    op.create_index('ix_portal_code_patient', 'portal_code', ['patient_id', 'created_at'], unique=False)
    op.create_table(
        'portal_session',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('org_id', sa.Integer(), nullable=False),
        sa.Column('token_hash', sa.String(length=64), nullable=False),
        sa.Column('patient_id', sa.Integer(), nullable=False),
        sa.Column('acting_for_id', sa.Integer(), nullable=False),
        sa.Column('created_at', UTCDateTime(timezone=True), nullable=False),
        sa.Column('last_seen_at', UTCDateTime(timezone=True), nullable=False),
        sa.Column('idle_expires_at', UTCDateTime(timezone=True), nullable=False),
        sa.Column('expires_at', UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['org_id'], ['organization.id']),
        sa.ForeignKeyConstraint(['patient_id'], ['patient.id']),
        sa.ForeignKeyConstraint(['acting_for_id'], ['patient.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('token_hash', name='uq_portal_session_token'),
    )
    op.create_index(op.f('ix_portal_session_patient_id'), 'portal_session', ['patient_id'], unique=False)
    op.create_table(
        'portal_throttle',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('key_hash', sa.String(length=64), nullable=False),
        sa.Column('at', UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_portal_throttle_key', 'portal_throttle', ['key_hash', 'at'], unique=False)
    op.create_table(
        'portal_proxy',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('org_id', sa.Integer(), nullable=False),
        sa.Column('guardian_id', sa.Integer(), nullable=False),
        sa.Column('patient_id', sa.Integer(), nullable=False),
        sa.Column('created_at', UTCDateTime(timezone=True), nullable=False),
        sa.Column('created_by', sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(['org_id'], ['organization.id']),
        sa.ForeignKeyConstraint(['guardian_id'], ['patient.id']),
        sa.ForeignKeyConstraint(['patient_id'], ['patient.id']),
        sa.ForeignKeyConstraint(['created_by'], ['hpms_user.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('guardian_id', 'patient_id', name='uq_portal_proxy'),
    )
    op.create_index(op.f('ix_portal_proxy_patient_id'), 'portal_proxy', ['patient_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_portal_proxy_patient_id'), table_name='portal_proxy')
    op.drop_table('portal_proxy')
    op.drop_index('ix_portal_throttle_key', table_name='portal_throttle')
    op.drop_table('portal_throttle')
    op.drop_index(op.f('ix_portal_session_patient_id'), table_name='portal_session')
    op.drop_table('portal_session')
    op.drop_index('ix_portal_code_patient', table_name='portal_code')
    op.drop_table('portal_code')
