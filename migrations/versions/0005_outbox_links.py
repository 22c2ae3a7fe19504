"""outbox links: signature ids for the links made at sending time

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-21 21:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0005'
down_revision: str | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Messages queued before this have their links in the bodies already (links NULL).
    with op.batch_alter_table('outbox_messages', schema=None) as batch_op:
        batch_op.add_column(sa.Column('links', sa.JSON(), nullable=True))


def downgrade() -> None:
    # A pending message whose links were still to be made cannot be sent without them.
    op.execute("UPDATE outbox_messages SET status = 'failed', recipient_enc = NULL, "
               "body_text = '', body_html = '', last_error = 'downgraded before sending' "
               "WHERE links IS NOT NULL AND status = 'pending'")
    with op.batch_alter_table('outbox_messages', schema=None) as batch_op:
        batch_op.drop_column('links')
