"""portal intake

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07

Registrations and pre-visit forms sent from the patient portal, staged for the front desk, and
the insurance card photos sent with them (encrypted).
"""
from alembic import op
import sqlalchemy as sa

import hpms.db

UTCDateTime = hpms.db.UTCDateTime


revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'intake_request',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('org_id', sa.Integer(), nullable=False),
        sa.Column('kind', sa.String(length=16), nullable=False),
        sa.Column('state', sa.String(length=16), nullable=False),
        sa.Column('patient_id', sa.Integer(), nullable=True),
        sa.Column('appointment_id', sa.Integer(), nullable=True),
        sa.Column('submitted_by', sa.String(length=120), nullable=False),
        sa.Column('fields_json', sa.Text(), nullable=False),
        sa.Column('member_id_enc', sa.Text(), nullable=True),
        sa.Column('created_at', UTCDateTime(timezone=True), nullable=False),
        sa.Column('decided_at', UTCDateTime(timezone=True), nullable=True),
        sa.Column('decided_by', sa.Integer(), nullable=True),
        sa.Column('decision_note', sa.String(length=500), nullable=True),
        sa.ForeignKeyConstraint(['org_id'], ['organization.id']),
        sa.ForeignKeyConstraint(['patient_id'], ['patient.id']),
        sa.ForeignKeyConstraint(['appointment_id'], ['appointment.id']),
        sa.ForeignKeyConstraint(['decided_by'], ['hpms_user.id']),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_intake_request_state', 'intake_request', ['org_id', 'state', 'created_at'], unique=False)
    op.create_index(op.f('ix_intake_request_patient_id'), 'intake_request', ['patient_id'], unique=False)
    op.create_table(
        'intake_upload',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('request_id', sa.Integer(), nullable=False),
        sa.Column('side', sa.String(length=8), nullable=False),
        sa.Column('content_type', sa.String(length=40), nullable=False),
        sa.Column('size', sa.Integer(), nullable=False),
        sa.Column('data_enc', sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(['request_id'], ['intake_request.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('request_id', 'side', name='uq_intake_upload_side'),
    )


def downgrade() -> None:
    op.drop_table('intake_upload')
    op.drop_index(op.f('ix_intake_request_patient_id'), table_name='intake_request')
    op.drop_index('ix_intake_request_state', table_name='intake_request')
    op.drop_table('intake_request')
