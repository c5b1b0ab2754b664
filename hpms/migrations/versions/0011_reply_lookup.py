"""replies by visit and by patient

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07

Indexes on `inbound_message`: by appointment (the scheduler's day view asks, for a whole day at
once, which visits a patient's reply confirmed) and by patient and time (a patient's
communication log lists their replies).
"""
from alembic import op


revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_inbound_appointment', 'inbound_message', ['appointment_id'], unique=False)
    op.create_index('ix_inbound_patient', 'inbound_message', ['patient_id', 'received_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_inbound_patient', table_name='inbound_message')
    op.drop_index('ix_inbound_appointment', table_name='inbound_message')
