"""fhir import

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-07

Imports from other systems: the map of their records (source, FHIR resource type and id) to
hpms records, and the visits patients had elsewhere.
"""
from alembic import op
import sqlalchemy as sa

import hpms.db

UTCDateTime = hpms.db.UTCDateTime


revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'external_ref',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('org_id', sa.Integer(), nullable=False),
        sa.Column('source', sa.String(length=200), nullable=False),
        sa.Column('resource_type', sa.String(length=40), nullable=False),
        sa.Column('external_id', sa.String(length=64), nullable=False),
        sa.Column('entity', sa.String(length=32), nullable=False),
        sa.Column('entity_id', sa.Integer(), nullable=False),
        sa.Column('digest', sa.String(length=64), nullable=False),
        sa.Column('created_at', UTCDateTime(timezone=True), nullable=False),
        sa.Column('updated_at', UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['org_id'], ['organization.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('org_id', 'source', 'resource_type', 'external_id', name='uq_external_ref'),
    )
    op.create_index('ix_external_ref_entity', 'external_ref', ['entity', 'entity_id'], unique=False)
    op.create_table(
        'external_visit',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('org_id', sa.Integer(), nullable=False),
        sa.Column('patient_id', sa.Integer(), nullable=False),
        sa.Column('provider_id', sa.Integer(), nullable=True),
        sa.Column('start_utc', UTCDateTime(timezone=True), nullable=False),
        sa.Column('end_utc', UTCDateTime(timezone=True), nullable=True),
        sa.Column('status', sa.String(length=20), nullable=False),
        sa.Column('visit_class', sa.String(length=20), nullable=True),
        sa.Column('kind', sa.String(length=200), nullable=True),
        sa.Column('reason', sa.String(length=500), nullable=True),
        sa.Column('practitioner', sa.String(length=200), nullable=True),
        sa.Column('facility', sa.String(length=200), nullable=True),
        sa.Column('created_at', UTCDateTime(timezone=True), nullable=False),
        sa.Column('updated_at', UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['org_id'], ['organization.id']),
        sa.ForeignKeyConstraint(['patient_id'], ['patient.id']),
        sa.ForeignKeyConstraint(['provider_id'], ['provider.id']),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index(op.f('ix_external_visit_org_id'), 'external_visit', ['org_id'], unique=False)
    op.create_index('ix_external_visit_patient', 'external_visit', ['patient_id', 'start_utc'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_external_visit_patient', table_name='external_visit')
    op.drop_index(op.f('ix_external_visit_org_id'), table_name='external_visit')
    op.drop_table('external_visit')
    op.drop_index('ix_external_ref_entity', table_name='external_ref')
    op.drop_table('external_ref')
