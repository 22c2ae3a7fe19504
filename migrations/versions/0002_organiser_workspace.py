"""organiser workspace: audit log, moderation keys

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21 07:28:53.411144
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0002'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

def upgrade() -> None:
    op.create_table('audit_entries',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('campaign_id', sa.Integer(), nullable=True),
    sa.Column('organiser_id', sa.Integer(), nullable=True),
    sa.Column('action', sa.String(length=40), nullable=False),
    sa.Column('detail', sa.JSON(), nullable=False),
    sa.Column('row_count', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaigns.id'], name=op.f('fk_audit_entries_campaign_id_campaigns'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['organiser_id'], ['organisers.id'], name=op.f('fk_audit_entries_organiser_id_organisers'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_entries'))
    )
    with op.batch_alter_table('audit_entries', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_audit_entries_campaign_id'), ['campaign_id', 'created_at'], unique=False)

    with op.batch_alter_table('organisers', schema=None) as batch_op:
        batch_op.add_column(sa.Column('session_version', sa.Integer(), nullable=False, server_default='1'))

    with op.batch_alter_table('signatures', schema=None) as batch_op:
        batch_op.add_column(sa.Column('email_domain_key', sa.String(length=64), nullable=True))
        batch_op.create_index(batch_op.f('ix_signatures_email_domain_key'), ['email_domain_key'], unique=False)
        batch_op.create_index(batch_op.f('ix_signatures_ip_hash'), ['ip_hash'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('signatures', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_signatures_ip_hash'))
        batch_op.drop_index(batch_op.f('ix_signatures_email_domain_key'))
        batch_op.drop_column('email_domain_key')

    with op.batch_alter_table('organisers', schema=None) as batch_op:
        batch_op.drop_column('session_version')

    with op.batch_alter_table('audit_entries', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_audit_entries_campaign_id'))

    op.drop_table('audit_entries')

