"""key fingerprints: the data key the stored signer data was made with

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04 23:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0006'
down_revision: str | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Filled by `init-db` after the upgrade (petition.keys.record), which first checks that the
    # configured key decrypts what is already stored.
    op.create_table(
        'key_fingerprints',
        sa.Column('name', sa.String(length=32), nullable=False),
        sa.Column('fingerprint', sa.String(length=64), nullable=False),
        sa.Column('recorded_at', sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint('name', name=op.f('pk_key_fingerprints')),
    )


def downgrade() -> None:
    op.drop_table('key_fingerprints')
