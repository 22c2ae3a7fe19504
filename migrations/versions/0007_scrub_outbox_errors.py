"""scrub outbox errors: no email address in last_error

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04 23:59:00.000000

Before this release a failed send's error was stored as the exception's text, and a mail
server's refusal usually names the recipient (and SMTPRecipientsRefused's text is the address
itself), so last_error could hold a signer's address in plain text next to the encrypted
recipient. Replace every address there by [address], as petition.mail.failure_text() now does
before storing (the pattern is copied here: a migration must not change with the app's code).
"""

import re
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0007'
down_revision: str | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ADDRESS = re.compile(r"[^\s<>()\[\]{}'\",;:]+@[^\s<>()\[\]{}'\",;:]+")


def upgrade() -> None:
    bind = op.get_bind()
    rows = bind.execute(sa.text(
        "SELECT id, last_error FROM outbox_messages WHERE last_error LIKE '%@%'")).all()
    for row_id, error in rows:
        scrubbed = _ADDRESS.sub("[address]", error)
        if scrubbed != error:
            bind.execute(sa.text("UPDATE outbox_messages SET last_error = :e WHERE id = :i"),
                         {"e": scrubbed, "i": row_id})


def downgrade() -> None:
    pass  # the addresses are gone on purpose
