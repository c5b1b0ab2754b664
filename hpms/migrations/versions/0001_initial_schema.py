"""initial schema

Revision ID: 0001
Revises: 
Create Date: 2026-11-26

The audit trail is append-only: triggers on both backends refuse UPDATE and DELETE.
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel
import hpms.db


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('audit_event',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('at', hpms.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('org_id', sa.Integer(), nullable=True),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('username', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('action', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('entity', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('entity_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('patient_id', sa.Integer(), nullable=True),
    sa.Column('patient_ids', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('fields', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('detail', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
    sa.Column('prev_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('seq', name='uq_audit_seq')
    )
    with op.batch_alter_table('audit_event', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_audit_event_at'), ['at'], unique=False)
        batch_op.create_index(batch_op.f('ix_audit_event_patient_id'), ['patient_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_audit_event_username'), ['username'], unique=False)

    op.create_table('audit_head',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('last_seq', sa.Integer(), nullable=False),
    sa.Column('last_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('counter',
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('value', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('name')
    )
    op.create_table('key_state',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('active_kid', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('organization',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('is_demo', sa.Boolean(), nullable=False),
    sa.Column('created_at', hpms.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('hpms_user',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('org_id', sa.Integer(), nullable=False),
    sa.Column('username', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('full_name', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
    sa.Column('disabled', sa.Boolean(), nullable=False),
    sa.Column('token_hash', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
    sa.Column('token_created_at', hpms.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', hpms.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['org_id'], ['organization.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('username', name='uq_user_username')
    )
    with op.batch_alter_table('hpms_user', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_hpms_user_org_id'), ['org_id'], unique=False)

    op.create_table('location',
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('address_line1', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
    sa.Column('address_line2', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
    sa.Column('city', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
    sa.Column('state', sqlmodel.sql.sqltypes.AutoString(length=50), nullable=True),
    sa.Column('postal_code', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=True),
    sa.Column('country', sqlmodel.sql.sqltypes.AutoString(length=2), nullable=True),
    sa.Column('tz', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('phone', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
    sa.Column('npi', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=True),
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('org_id', sa.Integer(), nullable=False),
    sa.Column('created_at', hpms.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['org_id'], ['organization.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('location', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_location_org_id'), ['org_id'], unique=False)

    op.create_table('patient',
    sa.Column('first_name', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('middle_name', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
    sa.Column('last_name', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('preferred_name', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
    sa.Column('dob', sa.Date(), nullable=False),
    sa.Column('sex_at_birth', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True),
    sa.Column('gender_identity', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('phone', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
    sa.Column('phone_alt', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
    sa.Column('email', sqlmodel.sql.sqltypes.AutoString(length=254), nullable=True),
    sa.Column('address_line1', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
    sa.Column('address_line2', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
    sa.Column('city', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
    sa.Column('state', sqlmodel.sql.sqltypes.AutoString(length=50), nullable=True),
    sa.Column('postal_code', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=True),
    sa.Column('country', sqlmodel.sql.sqltypes.AutoString(length=2), nullable=True),
    sa.Column('preferred_channel', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True),
    sa.Column('consent_sms', sa.Boolean(), nullable=False),
    sa.Column('consent_email', sa.Boolean(), nullable=False),
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('org_id', sa.Integer(), nullable=False),
    sa.Column('mrn', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('last_norm', sa.String(100).with_variant(sa.String(100, collation='C'), 'postgresql'), nullable=False),
    sa.Column('first_norm', sa.String(100).with_variant(sa.String(100, collation='C'), 'postgresql'), nullable=False),
    sa.Column('phone_digits', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True),
    sa.Column('phone_alt_digits', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True),
    sa.Column('email_norm', sqlmodel.sql.sqltypes.AutoString(length=254), nullable=True),
    sa.Column('ssn_enc', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
    sa.Column('ssn_bidx', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('merged_into_id', sa.Integer(), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('created_at', hpms.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', hpms.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['merged_into_id'], ['patient.id'], ),
    sa.ForeignKeyConstraint(['org_id'], ['organization.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('org_id', 'mrn', name='uq_patient_mrn')
    )
    with op.batch_alter_table('patient', schema=None) as batch_op:
        batch_op.create_index('ix_patient_dob', ['org_id', 'dob'], unique=False)
        batch_op.create_index('ix_patient_email', ['org_id', 'email_norm'], unique=False)
        batch_op.create_index('ix_patient_first', ['org_id', 'first_norm'], unique=False)
        batch_op.create_index('ix_patient_last_first', ['org_id', 'last_norm', 'first_norm'], unique=False)
        batch_op.create_index('ix_patient_phone', ['org_id', 'phone_digits'], unique=False)
        batch_op.create_index('ix_patient_phone_alt', ['org_id', 'phone_alt_digits'], unique=False)
        batch_op.create_index('ix_patient_ssn_bidx', ['org_id', 'ssn_bidx'], unique=False)

    op.create_table('payer',
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('payer_id', sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
    sa.Column('address_line1', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
    sa.Column('address_line2', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
    sa.Column('city', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
    sa.Column('state', sqlmodel.sql.sqltypes.AutoString(length=50), nullable=True),
    sa.Column('postal_code', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=True),
    sa.Column('phone', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('org_id', sa.Integer(), nullable=False),
    sa.Column('created_at', hpms.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['org_id'], ['organization.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('org_id', 'payer_id', name='uq_payer_payer_id')
    )
    with op.batch_alter_table('payer', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_payer_org_id'), ['org_id'], unique=False)

    op.create_table('coverage',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('org_id', sa.Integer(), nullable=False),
    sa.Column('patient_id', sa.Integer(), nullable=False),
    sa.Column('payer_id', sa.Integer(), nullable=False),
    sa.Column('member_id_enc', sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
    sa.Column('member_id_bidx', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('group_number', sqlmodel.sql.sqltypes.AutoString(length=50), nullable=True),
    sa.Column('relationship', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('subscriber_first_name', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
    sa.Column('subscriber_last_name', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
    sa.Column('subscriber_dob', sa.Date(), nullable=True),
    sa.Column('priority', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('valid_from', sa.Date(), nullable=True),
    sa.Column('valid_to', sa.Date(), nullable=True),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', hpms.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['org_id'], ['organization.id'], ),
    sa.ForeignKeyConstraint(['patient_id'], ['patient.id'], ),
    sa.ForeignKeyConstraint(['payer_id'], ['payer.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('coverage', schema=None) as batch_op:
        batch_op.create_index('ix_coverage_member_bidx', ['org_id', 'member_id_bidx'], unique=False)
        batch_op.create_index(batch_op.f('ix_coverage_org_id'), ['org_id'], unique=False)
        batch_op.create_index('ix_coverage_patient', ['patient_id', 'priority'], unique=False)

    op.create_table('user_role',
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('role', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['hpms_user.id'], ),
    sa.PrimaryKeyConstraint('user_id', 'role')
    )
    op.execute("INSERT INTO audit_head (id, last_seq, last_hash) VALUES (1, 0, '%s')" % ("0" * 64))
    op.execute("INSERT INTO key_state (id, active_kid) VALUES (1, NULL)")
    if op.get_bind().dialect.name == "sqlite":
        for verb in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER audit_event_no_{verb.lower()} BEFORE {verb} ON audit_event "
                "BEGIN SELECT RAISE(ABORT, 'audit_event is append-only'); END"
            )
    else:
        op.execute(
            "CREATE FUNCTION hpms_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN RAISE EXCEPTION 'audit_event is append-only'; END $$"
        )
        op.execute(
            "CREATE TRIGGER audit_event_append_only BEFORE UPDATE OR DELETE ON audit_event "
            "FOR EACH ROW EXECUTE FUNCTION hpms_audit_append_only()"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TRIGGER IF EXISTS audit_event_no_update")
        op.execute("DROP TRIGGER IF EXISTS audit_event_no_delete")
    else:
        op.execute("DROP TRIGGER IF EXISTS audit_event_append_only ON audit_event")
        op.execute("DROP FUNCTION IF EXISTS hpms_audit_append_only()")
    op.drop_table('user_role')
    with op.batch_alter_table('coverage', schema=None) as batch_op:
        batch_op.drop_index('ix_coverage_patient')
        batch_op.drop_index(batch_op.f('ix_coverage_org_id'))
        batch_op.drop_index('ix_coverage_member_bidx')

    op.drop_table('coverage')
    with op.batch_alter_table('payer', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_payer_org_id'))

    op.drop_table('payer')
    with op.batch_alter_table('patient', schema=None) as batch_op:
        batch_op.drop_index('ix_patient_ssn_bidx')
        batch_op.drop_index('ix_patient_phone_alt')
        batch_op.drop_index('ix_patient_phone')
        batch_op.drop_index('ix_patient_last_first')
        batch_op.drop_index('ix_patient_first')
        batch_op.drop_index('ix_patient_email')
        batch_op.drop_index('ix_patient_dob')

    op.drop_table('patient')
    with op.batch_alter_table('location', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_location_org_id'))

    op.drop_table('location')
    with op.batch_alter_table('hpms_user', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_hpms_user_org_id'))

    op.drop_table('hpms_user')
    op.drop_table('organization')
    op.drop_table('counter')
    op.drop_table('key_state')
    op.drop_table('audit_head')
    with op.batch_alter_table('audit_event', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_audit_event_username'))
        batch_op.drop_index(batch_op.f('ix_audit_event_patient_id'))
        batch_op.drop_index(batch_op.f('ix_audit_event_at'))

    op.drop_table('audit_event')
