"""outbox

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07

The outbox: each email or SMS hpms sends is a `message` row, written in the transaction of the
event that causes it and sent once by `hpms messages send`; the practice's sending identity
(`messaging_profile`).
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel
import hpms.db


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('message',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('org_id', sa.Integer(), nullable=False),
    sa.Column('patient_id', sa.Integer(), nullable=True),
    sa.Column('appointment_id', sa.Integer(), nullable=True),
    sa.Column('channel', sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
    sa.Column('template', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('recipient', sqlmodel.sql.sqltypes.AutoString(length=320), nullable=False),
    sa.Column('subject', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('state', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('due_at', hpms.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('next_attempt_at', hpms.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('claimed_by', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
    sa.Column('claimed_at', hpms.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('sent_at', hpms.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('provider_id', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
    sa.Column('error', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
    sa.Column('dedupe_key', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
    sa.Column('created_at', hpms.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.Integer(), nullable=True),
    sa.CheckConstraint("channel IN ('email', 'sms')", name='ck_message_channel'),
    sa.CheckConstraint("state IN ('queued', 'sending', 'sent', 'failed', 'cancelled', 'unknown', 'skipped')", name='ck_message_state'),
    sa.ForeignKeyConstraint(['appointment_id'], ['appointment.id'], ),
    sa.ForeignKeyConstraint(['created_by'], ['hpms_user.id'], ),
    sa.ForeignKeyConstraint(['org_id'], ['organization.id'], ),
    sa.ForeignKeyConstraint(['patient_id'], ['patient.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('org_id', 'dedupe_key', name='uq_message_dedupe')
    )
    op.create_index('ix_message_due', 'message', ['state', 'next_attempt_at'], unique=False)
    op.create_index('ix_message_patient', 'message', ['patient_id', 'created_at'], unique=False)
    op.create_index('ix_message_appointment', 'message', ['appointment_id'], unique=False)
    op.create_table('messaging_profile',
    sa.Column('org_id', sa.Integer(), nullable=False),
    sa.Column('email_from', sqlmodel.sql.sqltypes.AutoString(length=320), nullable=True),
    sa.Column('reply_to', sqlmodel.sql.sqltypes.AutoString(length=320), nullable=True),
    sa.Column('sms_from', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
    sa.Column('quiet_until', sqlmodel.sql.sqltypes.AutoString(length=5), server_default='08:00', nullable=False),
    sa.Column('quiet_from', sqlmodel.sql.sqltypes.AutoString(length=5), server_default='20:00', nullable=False),
    sa.Column('updated_at', hpms.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['org_id'], ['organization.id'], ),
    sa.PrimaryKeyConstraint('org_id')
    )
    op.create_table('message_template',
    sa.Column('org_id', sa.Integer(), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('channel', sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
    sa.Column('subject', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('updated_at', hpms.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['org_id'], ['organization.id'], ),
    sa.PrimaryKeyConstraint('org_id', 'name', 'channel')
    )
    op.create_table('reminder_rule',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('org_id', sa.Integer(), nullable=False),
    sa.Column('type_id', sa.Integer(), nullable=True),
    sa.Column('hours_before', sa.Integer(), nullable=False),
    sa.Column('channel', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('created_at', hpms.db.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint("channel IN ('email', 'sms', 'preferred', 'none')", name='ck_reminder_rule_channel'),
    sa.ForeignKeyConstraint(['org_id'], ['organization.id'], ),
    sa.ForeignKeyConstraint(['type_id'], ['appointment_type.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('org_id', 'type_id', 'hours_before', 'channel', name='uq_reminder_rule')
    )
    op.create_index(op.f('ix_reminder_rule_org_id'), 'reminder_rule', ['org_id'], unique=False)
    op.create_table('comm_entry',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('org_id', sa.Integer(), nullable=False),
    sa.Column('patient_id', sa.Integer(), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
    sa.Column('direction', sqlmodel.sql.sqltypes.AutoString(length=4), nullable=False),
    sa.Column('text', sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=False),
    sa.Column('at', hpms.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.CheckConstraint("direction IN ('in', 'out', 'none')", name='ck_comm_entry_direction'),
    sa.CheckConstraint("kind IN ('call', 'letter', 'note', 'visit')", name='ck_comm_entry_kind'),
    sa.ForeignKeyConstraint(['org_id'], ['organization.id'], ),
    sa.ForeignKeyConstraint(['patient_id'], ['patient.id'], ),
    sa.ForeignKeyConstraint(['user_id'], ['hpms_user.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_comm_entry_patient', 'comm_entry', ['patient_id', 'at'], unique=False)
    op.create_table('inbound_message',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('org_id', sa.Integer(), nullable=False),
    sa.Column('channel', sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
    sa.Column('sender', sqlmodel.sql.sqltypes.AutoString(length=320), nullable=False),
    sa.Column('subject', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('provider_id', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('received_at', hpms.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('patient_id', sa.Integer(), nullable=True),
    sa.Column('appointment_id', sa.Integer(), nullable=True),
    sa.Column('reply_to_id', sa.Integer(), nullable=True),
    sa.Column('outcome', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('note', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
    sa.Column('handled_at', hpms.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('handled_by', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['appointment_id'], ['appointment.id'], ),
    sa.ForeignKeyConstraint(['handled_by'], ['hpms_user.id'], ),
    sa.ForeignKeyConstraint(['org_id'], ['organization.id'], ),
    sa.ForeignKeyConstraint(['patient_id'], ['patient.id'], ),
    sa.ForeignKeyConstraint(['reply_to_id'], ['message.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('org_id', 'provider_id', name='uq_inbound_provider_id')
    )
    op.create_index('ix_inbound_open', 'inbound_message', ['org_id', 'outcome', 'handled_at'], unique=False)
    with op.batch_alter_table('patient', schema=None) as batch_op:
        batch_op.add_column(sa.Column('tz', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('patient', schema=None, recreate='never') as batch_op:
        batch_op.drop_column('tz')
    op.drop_index('ix_inbound_open', table_name='inbound_message')
    op.drop_table('inbound_message')
    op.drop_index('ix_comm_entry_patient', table_name='comm_entry')
    op.drop_table('comm_entry')
    op.drop_index(op.f('ix_reminder_rule_org_id'), table_name='reminder_rule')
    op.drop_table('reminder_rule')
    op.drop_table('message_template')
    op.drop_table('messaging_profile')
    op.drop_index('ix_message_patient', table_name='message')
    op.drop_index('ix_message_due', table_name='message')
    op.drop_table('message')
