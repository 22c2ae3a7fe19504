"""Moderation: search a campaign's signatures, invalidate fraud by filter, undo (audited).

Every query here is limited to the signatures of the campaign's own demands. Searching by
email never decrypts the table: the address is turned into its keyed hash, which is indexed.
Invalidation keeps the rows (status "invalidated") and takes confirmed ones off the sharded
counts in the same transaction, so counts stay exact; the audit entry lists the affected ids
with their previous statuses, which is what an undo restores.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography.exceptions import InvalidTag
from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import Select, select, update
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from petition.crypto import DataCipher
from petition.db import begin_write
from petition.models import AuditEntry, Campaign, Channel, Demand, Signature, SignatureStatus
from petition.organiser import audit
from petition.signing import counts

PER_PAGE = 50
# Only signatures that still count or may still count can be invalidated.
INVALIDATABLE = (SignatureStatus.PENDING, SignatureStatus.CONFIRMED)
ACTION_INVALIDATE = "invalidate"
ACTION_UNDO = "invalidate.undo"
_CHUNK = 500  # ids per IN (...) list: well below SQLite's bound-parameter limit


class ModerationError(ValueError):
    """A clear, user-facing reason a moderation request was refused (nothing was written)."""


class PreviewOutdated(ModerationError):
    """The matching signatures changed between the preview and the confirmation."""

    def __init__(self, preview: Preview) -> None:
        super().__init__(_("The matching signatures changed since the preview. Nothing was "
                           "invalidated: check the new numbers and confirm again."))
        self.preview = preview


def cipher() -> DataCipher:
    """The application's PII cipher."""
    return current_app.extensions["petition.cipher"]


def campaign_demand_ids(campaign: Campaign) -> Select[tuple[int]]:
    """A subquery of the ids of the campaign's demands (the scope of every query here)."""
    return select(Demand.id).where(Demand.campaign_id == campaign.id)


def _chunks(ids: Sequence[int]) -> Iterable[Sequence[int]]:
    for start in range(0, len(ids), _CHUNK):
        yield ids[start:start + _CHUNK]


@dataclass(frozen=True)
class InvalidationFilter:
    """Which signatures to invalidate; at least one narrowing filter is required."""

    ip_hash: str | None = None
    email_domain: str | None = None
    source: str | None = None
    created_from: datetime | None = None  # inclusive
    created_before: datetime | None = None  # exclusive
    demand_id: int | None = None
    signature_id: int | None = None

    def narrows(self) -> bool:
        """True if a filter other than the demand is set (the demand alone is everything)."""
        return any(
            v is not None and v != ""
            for v in (self.ip_hash, self.email_domain, self.source, self.created_from,
                      self.created_before, self.signature_id)
        )

    def to_detail(self) -> dict[str, Any]:
        """The filter as JSON for the audit log (the email domain encrypted, like all PII)."""
        domain = None
        if self.email_domain:
            normalised = cipher().normalise_email(self.email_domain).rpartition("@")[2]
            blob = cipher().encrypt(normalised, "audit.email_domain") or b""
            domain = base64.b64encode(blob).decode()
        detail = {
            "ip_hash": self.ip_hash,
            "email_domain_enc": domain,
            "source": self.source,
            "created_from": self.created_from.isoformat() if self.created_from else None,
            "created_before": self.created_before.isoformat() if self.created_before else None,
            "demand_id": self.demand_id,
            "signature_id": self.signature_id,
        }
        return {k: v for k, v in detail.items() if v}


@dataclass(frozen=True)
class Preview:
    """What an invalidation would do: how many signatures, how many of them counted now."""

    total: int
    counted: int
    fingerprint: str = ""


def invalidation_conditions(
    campaign: Campaign, filt: InvalidationFilter
) -> list[ColumnElement[bool]]:
    """SQL conditions for an invalidation; refuses a filter that would hit everything."""
    if not filt.narrows():
        raise ModerationError(_(
            "Choose at least one filter: IP address, email domain, source, time window or a "
            "single signature. Without one, every signature would be invalidated."))
    conditions: list[ColumnElement[bool]] = [
        Signature.demand_id.in_(campaign_demand_ids(campaign)),
        Signature.status.in_(INVALIDATABLE),
    ]
    if filt.ip_hash:
        conditions.append(Signature.ip_hash == filt.ip_hash)
    if filt.email_domain:
        conditions.append(Signature.email_domain_key == cipher().domain_key(filt.email_domain))
    if filt.source:
        conditions.append(Signature.source == filt.source)
    if filt.created_from:
        conditions.append(Signature.created_at >= filt.created_from)
    if filt.created_before:
        conditions.append(Signature.created_at < filt.created_before)
    if filt.demand_id:
        conditions.append(Signature.demand_id == filt.demand_id)
    if filt.signature_id:
        conditions.append(Signature.id == filt.signature_id)
    return conditions


def _fingerprint(rows: Sequence[tuple[int, int, str]]) -> str:
    digest = hashlib.sha256()
    for signature_id, _demand_id, status in rows:
        digest.update(f"{signature_id}:{status};".encode())
    return digest.hexdigest()[:32]


def _preview_of(rows: Sequence[tuple[int, int, str]]) -> Preview:
    counted = sum(1 for row in rows if row[2] == SignatureStatus.CONFIRMED)
    return Preview(total=len(rows), counted=counted, fingerprint=_fingerprint(rows))


def _matching(
    session: Session, campaign: Campaign, filt: InvalidationFilter, *, lock: bool
) -> list[tuple[int, int, str]]:
    query = (
        select(Signature.id, Signature.demand_id, Signature.status)
        .where(*invalidation_conditions(campaign, filt))
        .order_by(Signature.id)
    )
    if lock:
        query = query.with_for_update()
    return [(i, d, s) for i, d, s in session.execute(query)]


def preview(session: Session, campaign: Campaign, filt: InvalidationFilter) -> Preview:
    """Count what an invalidation with this filter would touch; writes nothing."""
    return _preview_of(_matching(session, campaign, filt, lock=False))


def invalidate(
    session: Session,
    campaign: Campaign,
    filt: InvalidationFilter,
    *,
    organiser_id: int,
    expected_fingerprint: str,
) -> AuditEntry:
    """Invalidate the matching signatures, fix the counts and audit it (the caller commits).

    The rows are locked first, so a confirmation racing with this either happened before
    (and is taken off the count here) or finds the signature invalidated and counts nothing.
    Raises PreviewOutdated if the matching set differs from the one the organiser previewed.
    """
    begin_write(session)
    rows = _matching(session, campaign, filt, lock=True)
    current = _preview_of(rows)
    if current.fingerprint != expected_fingerprint:
        raise PreviewOutdated(current)
    if not rows:
        raise ModerationError(_("No signatures match these filters; nothing was changed."))
    ids = [row[0] for row in rows]
    counted: list[tuple[int, Channel]] = []
    for chunk in _chunks(ids):
        counted += [(d, Channel(c)) for d, c in session.execute(
            update(Signature)
            .where(Signature.id.in_(chunk), Signature.status == SignatureStatus.CONFIRMED)
            .values(status=SignatureStatus.INVALIDATED)
            .returning(Signature.demand_id, Signature.channel)
            .execution_options(synchronize_session=False)
        )]
        session.execute(
            update(Signature)
            .where(Signature.id.in_(chunk), Signature.status.in_(INVALIDATABLE))
            .values(status=SignatureStatus.INVALIDATED)
            .execution_options(synchronize_session=False)
        )
    counts.add_many(session, counted, -1)
    previous = {
        status: [i for i, _d, s in rows if s == status] for status in INVALIDATABLE
    }
    return audit.record(
        session,
        campaign_id=campaign.id,
        organiser_id=organiser_id,
        action=ACTION_INVALIDATE,
        detail={
            "filter": filt.to_detail(),
            "signatures": {str(k): v for k, v in previous.items() if v},
            "counted": current.counted,
        },
        row_count=len(rows),
    )


@dataclass(frozen=True)
class UndoResult:
    """What an undo did: signatures restored, of which counted again; or already undone."""

    restored: int
    counted: int
    already_undone: bool = False


def undo_invalidation(
    session: Session, campaign: Campaign, entry_id: int, *, organiser_id: int
) -> UndoResult | None:
    """Restore the signatures of an invalidation that are still invalidated (caller commits).

    Confirmed ones are counted again. None if there is no such invalidation in the campaign;
    a second undo changes nothing and says so.
    """
    begin_write(session)
    entry = session.scalars(
        select(AuditEntry)
        .where(
            AuditEntry.id == entry_id,
            AuditEntry.campaign_id == campaign.id,
            AuditEntry.action == ACTION_INVALIDATE,
        )
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one_or_none()
    if entry is None:
        return None
    if entry.detail.get("undone_by"):
        return UndoResult(0, 0, already_undone=True)
    restored: dict[str, list[int]] = {}
    recount: list[tuple[int, Channel]] = []
    previous: dict[str, list[int]] = entry.detail.get("signatures", {})
    for status in INVALIDATABLE:
        ids = [int(i) for i in previous.get(str(status), [])]
        for chunk in _chunks(ids):
            back = session.execute(
                update(Signature)
                .where(
                    Signature.id.in_(chunk),
                    Signature.status == SignatureStatus.INVALIDATED,
                    Signature.demand_id.in_(campaign_demand_ids(campaign)),
                )
                .values(status=status)
                .returning(Signature.id, Signature.demand_id, Signature.channel)
                .execution_options(synchronize_session=False)
            ).all()
            restored.setdefault(str(status), []).extend(i for i, _d, _c in back)
            if status == SignatureStatus.CONFIRMED:
                recount += [(d, c) for _i, d, c in back]
    counts.add_many(session, recount, +1)
    total = sum(len(v) for v in restored.values())
    undo_entry = audit.record(
        session,
        campaign_id=campaign.id,
        organiser_id=organiser_id,
        action=ACTION_UNDO,
        detail={"entry_id": entry.id, "signatures": {k: v for k, v in restored.items() if v}},
        row_count=total,
    )
    entry.detail = {**entry.detail, "undone_by": undo_entry.id}
    session.flush()
    return UndoResult(restored=total, counted=len(recount))


# --- audit log display --------------------------------------------------------------------


def _audit_domain(value: str) -> str:
    try:
        return cipher().decrypt(base64.b64decode(value), "audit.email_domain") or ""
    except (InvalidTag, ValueError):
        return _("(unreadable)")


def describe_filter(detail: dict[str, Any], demands: dict[int, Demand]) -> list[tuple[str, str]]:
    """An invalidation filter from the audit log as (label, value) pairs for display."""
    filt = detail.get("filter") or {}
    out: list[tuple[str, str]] = []
    if filt.get("ip_hash"):
        out.append((_("IP address (hash)"), f"{filt['ip_hash'][:12]}…"))
    elif filt.get("ip_hash_erased"):
        out.append((_("IP address (hash)"), _("erased when the data key was changed")))
    if filt.get("email_domain_enc"):
        out.append((_("Email domain"), _audit_domain(filt["email_domain_enc"])))
    if filt.get("source"):
        out.append((_("Source"), str(filt["source"])))
    if filt.get("created_from"):
        out.append((_("Signed from"), str(filt["created_from"])[:16].replace("T", " ")))
    if filt.get("created_before"):
        out.append((_("Signed before"), str(filt["created_before"])[:16].replace("T", " ")))
    if filt.get("demand_id"):
        demand = demands.get(int(filt["demand_id"]))
        out.append((_("Demand"), demand.title if demand else str(filt["demand_id"])))
    if filt.get("signature_id"):
        out.append((_("Signature"), f"#{filt['signature_id']}"))
    return out


def counted_delta(entry: AuditEntry) -> int:
    """How many counted (confirmed) signatures an invalidation or undo entry moved."""
    signatures = entry.detail.get("signatures") or {}
    return len(signatures.get(str(SignatureStatus.CONFIRMED), []))
