"""online booking

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07

Patients' online booking: the policy per appointment type with per-provider overrides
(`online_booking_policy`), the practice's cancellation window (`online_booking_profile`), and
the visits booked online (`online_booking`, what the daily cap counts).
"""
from alembic import op
import sqlalchemy as sa
import hpms.db


revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('online_booking_policy',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('org_id', sa.Integer(), nullable=False),
    sa.Column('type_id', sa.Integer(), nullable=False),
    sa.Column('provider_id', sa.Integer(), nullable=True),
    sa.Column('enabled', sa.Boolean(), nullable=True),
    sa.Column('lead_minutes', sa.Integer(), nullable=True),
    sa.Column('horizon_days', sa.Integer(), nullable=True),
    sa.Column('daily_cap', sa.Integer(), nullable=True),
    sa.Column('new_patients_allowed', sa.Boolean(), nullable=True),
    sa.Column('updated_at', hpms.db.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint('lead_minutes IS NULL OR lead_minutes >= 0', name='ck_online_policy_lead'),
    sa.CheckConstraint('horizon_days IS NULL OR horizon_days >= 1', name='ck_online_policy_horizon'),
    sa.CheckConstraint('daily_cap IS NULL OR daily_cap >= 0', name='ck_online_policy_cap'),
    sa.ForeignKeyConstraint(['org_id'], ['organization.id'], ),
    sa.ForeignKeyConstraint(['type_id'], ['appointment_type.id'], ),
    sa.ForeignKeyConstraint(['provider_id'], ['provider.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('org_id', 'type_id', 'provider_id', name='uq_online_booking_policy')
    )
    op.create_index(op.f('ix_online_booking_policy_org_id'), 'online_booking_policy', ['org_id'], unique=False)
    op.create_table('online_booking_profile',
    sa.Column('org_id', sa.Integer(), nullable=False),
    sa.Column('cancel_window_hours', sa.Integer(), server_default='24', nullable=False),
    sa.Column('updated_at', hpms.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['org_id'], ['organization.id'], ),
    sa.PrimaryKeyConstraint('org_id')
    )
    op.create_table('online_booking',
    sa.Column('appointment_id', sa.Integer(), nullable=False),
    sa.Column('org_id', sa.Integer(), nullable=False),
    sa.Column('patient_id', sa.Integer(), nullable=False),
    sa.Column('booked_at', hpms.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['appointment_id'], ['appointment.id'], ),
    sa.ForeignKeyConstraint(['org_id'], ['organization.id'], ),
    sa.ForeignKeyConstraint(['patient_id'], ['patient.id'], ),
    sa.PrimaryKeyConstraint('appointment_id')
    )
    op.create_index(op.f('ix_online_booking_org_id'), 'online_booking', ['org_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_online_booking_org_id'), table_name='online_booking')
    op.drop_table('online_booking')
    op.drop_table('online_booking_profile')
    op.drop_index(op.f('ix_online_booking_policy_org_id'), table_name='online_booking_policy')
    op.drop_table('online_booking_policy')
