"""hl7 interfaces

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07

HL7 v2: the receivers of hpms's SIU/ADT messages, the outbox of those messages, and the ADT
messages received.
"""
from alembic import op
import sqlalchemy as sa

import hpms.db

UTCDateTime = hpms.db.UTCDateTime


revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'hl7_receiver',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('org_id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=64), nullable=False),
        sa.Column('kind', sa.String(length=8), nullable=False),
        sa.Column('host', sa.String(length=255), nullable=True),
        sa.Column('port', sa.Integer(), nullable=True),
        sa.Column('folder', sa.String(length=1000), nullable=True),
        sa.Column('events', sa.String(length=32), nullable=False),
        sa.Column('receiving_app', sa.String(length=64), nullable=False),
        sa.Column('receiving_facility', sa.String(length=64), nullable=False),
        sa.Column('active', sa.Boolean(), nullable=False),
        sa.Column('created_at', UTCDateTime(timezone=True), nullable=False),
        sa.Column('last_ack_at', UTCDateTime(timezone=True), nullable=True),
        sa.Column('last_ack_code', sa.String(length=2), nullable=True),
        sa.CheckConstraint("kind IN ('mllp', 'folder')", name='ck_hl7_receiver_kind'),
        sa.ForeignKeyConstraint(['org_id'], ['organization.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('org_id', 'name', name='uq_hl7_receiver_name'),
    )
    op.create_table(
        'hl7_message',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('org_id', sa.Integer(), nullable=False),
        sa.Column('receiver_id', sa.Integer(), nullable=False),
        sa.Column('patient_id', sa.Integer(), nullable=True),
        sa.Column('appointment_id', sa.Integer(), nullable=True),
        sa.Column('event', sa.String(length=8), nullable=False),
        sa.Column('control_id', sa.String(length=20), nullable=False),
        sa.Column('body', sa.Text(), nullable=False),
        sa.Column('state', sa.String(length=16), nullable=False),
        sa.Column('next_attempt_at', UTCDateTime(timezone=True), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('claimed_by', sa.String(length=200), nullable=True),
        sa.Column('claimed_at', UTCDateTime(timezone=True), nullable=True),
        sa.Column('sent_at', UTCDateTime(timezone=True), nullable=True),
        sa.Column('ack_code', sa.String(length=2), nullable=True),
        sa.Column('ack_at', UTCDateTime(timezone=True), nullable=True),
        sa.Column('error', sa.String(length=500), nullable=True),
        sa.Column('created_at', UTCDateTime(timezone=True), nullable=False),
        sa.Column('created_by', sa.Integer(), nullable=True),
        sa.CheckConstraint(
            "state IN ('queued', 'sending', 'sent', 'failed', 'cancelled', 'unknown')", name='ck_hl7_message_state'
        ),
        sa.ForeignKeyConstraint(['appointment_id'], ['appointment.id']),
        sa.ForeignKeyConstraint(['created_by'], ['hpms_user.id']),
        sa.ForeignKeyConstraint(['org_id'], ['organization.id']),
        sa.ForeignKeyConstraint(['patient_id'], ['patient.id']),
        sa.ForeignKeyConstraint(['receiver_id'], ['hl7_receiver.id']),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_hl7_message_due', 'hl7_message', ['state', 'next_attempt_at'], unique=False)
    op.create_index('ix_hl7_message_order', 'hl7_message', ['receiver_id', 'patient_id', 'id'], unique=False)
    op.create_table(
        'hl7_inbound',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('org_id', sa.Integer(), nullable=False),
        sa.Column('sending_app', sa.String(length=64), nullable=False),
        sa.Column('sending_facility', sa.String(length=64), nullable=False),
        sa.Column('control_id', sa.String(length=64), nullable=False),
        sa.Column('event', sa.String(length=8), nullable=False),
        sa.Column('raw_enc', sa.Text(), nullable=False),
        sa.Column('received_at', UTCDateTime(timezone=True), nullable=False),
        sa.Column('outcome', sa.String(length=16), nullable=False),
        sa.Column('patient_id', sa.Integer(), nullable=True),
        sa.Column('note', sa.String(length=500), nullable=True),
        sa.Column('handled_at', UTCDateTime(timezone=True), nullable=True),
        sa.Column('handled_by', sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(['handled_by'], ['hpms_user.id']),
        sa.ForeignKeyConstraint(['org_id'], ['organization.id']),
        sa.ForeignKeyConstraint(['patient_id'], ['patient.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint(
            'org_id', 'sending_app', 'sending_facility', 'control_id', name='uq_hl7_inbound_control'
        ),
    )
    op.create_index('ix_hl7_inbound_open', 'hl7_inbound', ['org_id', 'outcome', 'handled_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_hl7_inbound_open', table_name='hl7_inbound')
    op.drop_table('hl7_inbound')
    op.drop_index('ix_hl7_message_order', table_name='hl7_message')
    op.drop_index('ix_hl7_message_due', table_name='hl7_message')
    op.drop_table('hl7_message')
    op.drop_table('hl7_receiver')
