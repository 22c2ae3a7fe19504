"""The audit log: who exported, invalidated or changed what, and when."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from petition.models import AuditEntry


def record(
    session: Session,
    *,
    campaign_id: int | None,
    organiser_id: int | None,
    action: str,
    detail: dict[str, Any] | None = None,
    row_count: int | None = None,
) -> AuditEntry:
    """Add an audit entry in the caller's transaction."""
    entry = AuditEntry(
        campaign_id=campaign_id,
        organiser_id=organiser_id,
        action=action,
        detail=detail or {},
        row_count=row_count,
    )
    session.add(entry)
    session.flush()
    return entry


def entries(session: Session, campaign_id: int, limit: int = 200) -> list[AuditEntry]:
    """The campaign's latest audit entries, newest first."""
    return list(
        session.scalars(
            select(AuditEntry)
            .where(AuditEntry.campaign_id == campaign_id)
            .order_by(AuditEntry.created_at.desc(), AuditEntry.id.desc())
            .limit(limit)
        )
    )
