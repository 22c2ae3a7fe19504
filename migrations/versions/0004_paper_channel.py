"""paper signatures: a channel on signatures and on the counter shards

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-21 11:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Existing rows are all online signatures and online counters: the server default.
    with op.batch_alter_table('signatures', schema=None) as batch_op:
        batch_op.add_column(sa.Column('channel', sa.String(length=8), nullable=False, server_default='online'))
        batch_op.create_check_constraint(op.f('ck_signatures_channel'), "channel IN ('online', 'paper')")

    # The channel becomes part of the counter's key: (demand_id, channel, shard).
    with op.batch_alter_table('demand_count_shards', schema=None, recreate='always') as batch_op:
        batch_op.add_column(sa.Column('channel', sa.String(length=8), nullable=False, server_default='online'))
        batch_op.drop_constraint(batch_op.f('pk_demand_count_shards'), type_='primary')
        batch_op.create_primary_key(batch_op.f('pk_demand_count_shards'), ['demand_id', 'channel', 'shard'])
        batch_op.create_check_constraint(op.f('ck_demand_count_shards_channel'), "channel IN ('online', 'paper')")


def downgrade() -> None:
    # Paper counts fold back into the online rows of the same shard, so totals are kept.
    op.execute(
        "UPDATE demand_count_shards SET count = count + (SELECT COALESCE(SUM(p.count), 0) "
        "FROM demand_count_shards p WHERE p.demand_id = demand_count_shards.demand_id "
        "AND p.shard = demand_count_shards.shard AND p.channel = 'paper') "
        "WHERE channel = 'online'"
    )
    op.execute(
        "INSERT INTO demand_count_shards (demand_id, channel, shard, count, updated_at) "
        "SELECT p.demand_id, 'online', p.shard, p.count, p.updated_at FROM demand_count_shards p "
        "WHERE p.channel = 'paper' AND NOT EXISTS (SELECT 1 FROM demand_count_shards o "
        "WHERE o.demand_id = p.demand_id AND o.shard = p.shard AND o.channel = 'online')"
    )
    op.execute("DELETE FROM demand_count_shards WHERE channel = 'paper'")
    with op.batch_alter_table('demand_count_shards', schema=None, recreate='always') as batch_op:
        batch_op.drop_constraint(op.f('ck_demand_count_shards_channel'), type_='check')
        batch_op.drop_constraint(batch_op.f('pk_demand_count_shards'), type_='primary')
        batch_op.create_primary_key(batch_op.f('pk_demand_count_shards'), ['demand_id', 'shard'])
        batch_op.drop_column('channel')

    with op.batch_alter_table('signatures', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_signatures_channel'), type_='check')
        batch_op.drop_column('channel')
