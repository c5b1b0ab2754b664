"""delivery reports and attachments

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07

A message can be `delivered` (the SMS provider's status callback says it reached the handset,
at `delivered_at`), and an email can carry files (`message_attachment`: a statement's PDF,
kept encrypted until it is sent).
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel
import hpms.db


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None

OLD_STATES = "state IN ('queued', 'sending', 'sent', 'failed', 'cancelled', 'unknown', 'skipped')"
NEW_STATES = "state IN ('queued', 'sending', 'sent', 'delivered', 'failed', 'cancelled', 'unknown', 'skipped')"


def _states(check: str) -> None:
    # SQLite changes a CHECK only by copying the table (batch mode does that).
    with op.batch_alter_table('message', schema=None) as batch_op:
        batch_op.drop_constraint('ck_message_state', type_='check')
        batch_op.create_check_constraint('ck_message_state', check)


def upgrade() -> None:
    with op.batch_alter_table('message', schema=None) as batch_op:
        batch_op.add_column(sa.Column('delivered_at', hpms.db.UTCDateTime(timezone=True), nullable=True))
    _states(NEW_STATES)
    op.create_table('message_attachment',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('message_id', sa.Integer(), nullable=False),
    sa.Column('filename', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('content_type', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('data_enc', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['message_id'], ['message.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_message_attachment_message_id'), 'message_attachment', ['message_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_message_attachment_message_id'), table_name='message_attachment')
    op.drop_table('message_attachment')
    op.execute("UPDATE message SET state = 'sent' WHERE state = 'delivered'")
    _states(OLD_STATES)
    with op.batch_alter_table('message', schema=None) as batch_op:
        batch_op.drop_column('delivered_at')
