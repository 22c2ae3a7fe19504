"""Sharded signature counters: exact, O(1) to read and free of a single hot row.

Each demand has counter rows per channel: online signatures (confirmed by email) and paper
signatures (typed in by organisers). A demand's count is the sum of all its rows; the paper
rows alone give the paper part, so "N online, M on paper" costs no extra query.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

from flask import current_app
from sqlalchemy import bindparam, case, delete, func, select, update
from sqlalchemy.orm import Session

from petition.db import dialect_insert, insert_for
from petition.models import Channel, DemandCountShard, Signature, SignatureStatus, utcnow


@dataclass(frozen=True)
class Count:
    """A demand's confirmed count (paper included) and when it last changed."""

    value: int
    updated_at: datetime | None
    paper: int = 0  # the part of value that was signed on paper

    @property
    def online(self) -> int:
        """The part of the count that was signed online."""
        return self.value - self.paper


def _shards() -> int:
    return int(current_app.config["COUNT_SHARDS"])


_KEY = ["demand_id", "channel", "shard"]
_COLUMNS = (*_KEY, "count", "updated_at")


def create_shards(session: Session, demand_id: int) -> None:
    """Create the demand's online counter rows, all at zero (idempotent)."""
    now = utcnow()
    stmt = insert_for(session, DemandCountShard).values(
        [{"demand_id": demand_id, "channel": Channel.ONLINE, "shard": i, "count": 0,
          "updated_at": now} for i in range(_shards())]
    )
    session.execute(stmt.on_conflict_do_nothing(index_elements=_KEY))


def shard() -> int:
    """A random one of the demand's counter rows, so concurrent writers rarely collide."""
    return random.randrange(_shards())


def add_on_conflict(insert: Any) -> Any:
    """insert (of shard rows, by values or from a SELECT) adding its count to a row that
    exists already: ON CONFLICT DO UPDATE count = count + the new row's count."""
    new = insert.excluded
    return insert.on_conflict_do_update(
        index_elements=_KEY,
        set_={"count": DemandCountShard.count + new.count, "updated_at": new.updated_at},
    )


@cache
def _add_statement(dialect: str) -> Any:
    """add()'s upsert, built once per dialect and run with parameters."""
    columns = DemandCountShard.__table__.c
    return add_on_conflict(dialect_insert(dialect, DemandCountShard).values(
        {name: bindparam(f"c_{name}", type_=columns[name].type) for name in _COLUMNS}
    ))


def add(session: Session, demand_id: int, delta: int, channel: Channel = Channel.ONLINE) -> None:
    """Add delta to one randomly chosen shard of the demand, so writers rarely collide."""
    session.execute(
        _add_statement(session.get_bind().dialect.name),
        {"c_demand_id": demand_id, "c_channel": str(channel), "c_shard": shard(),
         "c_count": delta, "c_updated_at": utcnow()},
    )


def add_many(
    session: Session, keys: Iterable[int | tuple[int, Channel]], delta: int
) -> None:
    """Add delta once per occurrence of a demand id or (demand id, channel) pair.

    Equal keys are merged into one update, applied in key order (avoids lock-order deadlocks).
    """
    totals: Counter[tuple[int, str]] = Counter(
        (key, Channel.ONLINE) if isinstance(key, int) else key for key in keys
    )
    for (demand_id, channel), n in sorted(totals.items()):
        add(session, demand_id, delta * n, Channel(channel))


def get(session: Session, demand_id: int) -> Count:
    """The demand's confirmed count: a sum over a fixed number of shard rows."""
    return get_many(session, [demand_id]).get(demand_id, Count(0, None))


def get_many(session: Session, demand_ids: Iterable[int]) -> dict[int, Count]:
    """Counts of several demands in one query."""
    ids = list(demand_ids)
    if not ids:
        return {}
    paper = case((DemandCountShard.channel == Channel.PAPER, DemandCountShard.count), else_=0)
    rows = session.execute(
        select(
            DemandCountShard.demand_id,
            func.sum(DemandCountShard.count),
            func.max(DemandCountShard.updated_at),
            func.sum(paper),
        )
        .where(DemandCountShard.demand_id.in_(ids))
        .group_by(DemandCountShard.demand_id)
    )
    counts = {demand_id: Count(0, None) for demand_id in ids}
    for demand_id, total, updated, on_paper in rows:
        counts[demand_id] = Count(int(total or 0), updated, int(on_paper or 0))
    return counts


@dataclass(frozen=True)
class Drift:
    """A demand whose stored count (total, or its paper part) differed from the recount."""

    demand_id: int
    stored: int
    actual: int
    stored_paper: int = 0
    actual_paper: int = 0


def recount(session: Session, demand_id: int, *, repair: bool) -> Drift | None:
    """Compare the stored count with a count of confirmed signatures; optionally repair it.

    The shard rows are locked first (PostgreSQL), so a confirmation running at the same time
    either finished before the recount (and is counted) or increments after the repair.
    """
    session.execute(
        select(DemandCountShard.shard)
        .where(DemandCountShard.demand_id == demand_id)
        .with_for_update()
    ).all()
    stored = get(session, demand_id)
    by_channel: dict[str, int] = {
        channel: int(n)
        for channel, n in session.execute(
            select(Signature.channel, func.count())
            .where(Signature.demand_id == demand_id, Signature.status == SignatureStatus.CONFIRMED)
            .group_by(Signature.channel)
        )
    }
    actual = sum(by_channel.values())
    actual_paper = by_channel.get(Channel.PAPER, 0)
    if stored.value == actual and stored.paper == actual_paper:
        return None
    if repair:
        session.execute(
            update(DemandCountShard)
            .where(DemandCountShard.demand_id == demand_id)
            .values(count=0, updated_at=utcnow())
        )
        session.execute(
            delete(DemandCountShard).where(
                DemandCountShard.demand_id == demand_id, DemandCountShard.shard >= _shards()
            )
        )
        add(session, demand_id, actual - actual_paper)
        if actual_paper:
            add(session, demand_id, actual_paper, Channel.PAPER)
    return Drift(demand_id, stored.value, actual, stored.paper, actual_paper)
