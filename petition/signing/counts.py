"""Sharded signature counters: exact, O(1) to read and free of a single hot row."""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from flask import current_app
from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from petition.db import insert_for
from petition.models import DemandCountShard, Signature, SignatureStatus, utcnow


@dataclass(frozen=True)
class Count:
    """A demand's confirmed count and when it last changed."""

    value: int
    updated_at: datetime | None


def _shards() -> int:
    return int(current_app.config["COUNT_SHARDS"])


def create_shards(session: Session, demand_id: int) -> None:
    """Create the demand's counter rows, all at zero (idempotent)."""
    now = utcnow()
    stmt = insert_for(session, DemandCountShard).values(
        [{"demand_id": demand_id, "shard": i, "count": 0, "updated_at": now} for i in range(_shards())]
    )
    session.execute(stmt.on_conflict_do_nothing(index_elements=["demand_id", "shard"]))


def add(session: Session, demand_id: int, delta: int) -> None:
    """Add delta to one randomly chosen shard of the demand, so writers rarely collide."""
    shard = random.randrange(_shards())
    now = utcnow()
    stmt = insert_for(session, DemandCountShard).values(
        demand_id=demand_id, shard=shard, count=delta, updated_at=now
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=["demand_id", "shard"],
        set_={"count": DemandCountShard.count + delta, "updated_at": now},
    )
    session.execute(stmt)


def add_many(session: Session, demand_ids: Iterable[int], delta: int) -> None:
    """Add delta once per occurrence of a demand id, in id order (avoids lock-order deadlocks)."""
    for demand_id in sorted(demand_ids):
        add(session, demand_id, delta)


def get(session: Session, demand_id: int) -> Count:
    """The demand's confirmed count: a sum over a fixed number of shard rows."""
    return get_many(session, [demand_id]).get(demand_id, Count(0, None))


def get_many(session: Session, demand_ids: Iterable[int]) -> dict[int, Count]:
    """Counts of several demands in one query."""
    ids = list(demand_ids)
    if not ids:
        return {}
    rows = session.execute(
        select(
            DemandCountShard.demand_id,
            func.sum(DemandCountShard.count),
            func.max(DemandCountShard.updated_at),
        )
        .where(DemandCountShard.demand_id.in_(ids))
        .group_by(DemandCountShard.demand_id)
    )
    counts = {demand_id: Count(0, None) for demand_id in ids}
    for demand_id, total, updated in rows:
        counts[demand_id] = Count(int(total or 0), updated)
    return counts


@dataclass(frozen=True)
class Drift:
    """A demand whose stored count differed from the recount."""

    demand_id: int
    stored: int
    actual: int


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
    stored = get(session, demand_id).value
    actual = session.scalar(
        select(func.count())
        .select_from(Signature)
        .where(Signature.demand_id == demand_id, Signature.status == SignatureStatus.CONFIRMED)
    ) or 0
    if stored == actual:
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
        add(session, demand_id, actual)
    return Drift(demand_id, stored, actual)
