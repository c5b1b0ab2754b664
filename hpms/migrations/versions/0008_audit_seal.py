"""audit seal

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07

Audit events are sealed with an HMAC under a key derived from the practice key, which is not in
the database; each event names the key that sealed it, and the head row carries its own seal.
Events written before this revision are sealed by the first `init` or `db upgrade` that has
the key (hpms.services.platform.audit.seal).
"""
from alembic import op
import sqlalchemy as sa


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('audit_event', sa.Column('key_id', sa.String(length=16), nullable=True))
    op.add_column('audit_head', sa.Column('mac', sa.String(length=64), nullable=True))
    op.add_column('audit_head', sa.Column('key_id', sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('audit_head', schema=None, recreate='never') as batch_op:
        batch_op.drop_column('key_id')
        batch_op.drop_column('mac')
    with op.batch_alter_table('audit_event', schema=None, recreate='never') as batch_op:
        batch_op.drop_column('key_id')
