"""Paper signatures: sheet rows typed in or imported from CSV (no request access here).

Decisions:

- A paper row needs an email address, like an online signature: it is the dedup key, a keyed
  HMAC of the normalised address, UNIQUE per demand. Rows without one are refused with a
  reason (the sheet marks the column as required).
- A duplicate (an address that already signed the demand online or on paper) is not added;
  unlike on the public form it is reported on the entry screen, since organisers are trusted
  and can see the signatures anyway.
- Paper signatures are stored confirmed (the signer signed in person; no email is sent to
  them), with source ``paper:<event code>`` and channel "paper", and counted at once in the
  demand's counter rows of the paper channel, so the total includes them and the paper part
  is read in O(1).
- Every typed row and every import is written to the audit log.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from petition.crypto import DataCipher
from petition.db import begin_write, insert_for
from petition.models import Campaign, Channel, Demand, Event, Signature, SignatureStatus, utcnow
from petition.organiser import audit
from petition.organiser.paper_csv import PaperRow, check_row, read_csv
from petition.signing import counts

PAPER_PREFIX = "paper:"
ENTRY_ACTION = "paper.entry"
IMPORT_ACTION = "paper.import"


class Outcome(enum.StrEnum):
    """What happened to one row."""

    ADDED = "added"
    DUPLICATE = "duplicate"


@dataclass(frozen=True)
class EntryResult:
    """One row's outcome; for a duplicate, the signature it duplicates and how that was made."""

    outcome: Outcome
    signature_id: int | None
    row_number: int | None = None
    email: str = ""
    same_as_row: int | None = None
    existing_status: str | None = None
    existing_channel: str | None = None
    existing_source: str | None = None

    @property
    def reason(self) -> str:
        """Why a duplicate was not added, for the entry screen."""
        return describe_duplicate(self.existing_status, self.existing_channel,
                                  self.existing_source, self.same_as_row)


@dataclass(frozen=True)
class RowError:
    """A CSV row that was not added, with its spreadsheet row number (header = row 1)."""

    row_number: int
    reasons: tuple[str, ...]


@dataclass
class ImportReport:
    """What a CSV import did."""

    added: list[EntryResult] = field(default_factory=list)
    duplicates: list[EntryResult] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    ignored_columns: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class EntryView:
    """A remembered entry of this session, decrypted for the running list."""

    signature_id: int
    outcome: str
    name: str
    email: str
    country: str
    postcode: str
    contact_consent: bool
    public_consent: bool
    status: str
    channel: str
    source: str


def _cipher() -> DataCipher:
    return current_app.extensions["petition.cipher"]


def paper_source(event: Event) -> str:
    """The source recorded on the event's paper signatures."""
    return f"{PAPER_PREFIX}{event.code}"


def entry_demand(campaign: Campaign, event: Event, demand_slug: str | None) -> Demand | None:
    """The demand rows go to: ?demand= (any of the campaign's) if given, else the event's."""
    if demand_slug:
        return next((d for d in campaign.demands if d.slug == demand_slug), None)
    if event.demand_id is not None:
        return next((d for d in campaign.demands if d.id == event.demand_id), None)
    return None


def describe_duplicate(status: str | None, channel: str | None, source: str | None,
                       same_as_row: int | None = None) -> str:
    """A sentence saying what an entered address duplicates."""
    if same_as_row is not None:
        return _("Same email address as row %(row)d of this file.", row=same_as_row)
    if status is None:
        return _("This email address has already signed.")
    if channel == Channel.PAPER:
        if status == SignatureStatus.INVALIDATED:
            return _("Already entered on paper (%(source)s) and invalidated since.",
                     source=source or "")
        return _("Already entered on paper (%(source)s).", source=source or "")
    if status == SignatureStatus.PENDING:
        return _("Already signed online; not yet confirmed by email.")
    if status == SignatureStatus.INVALIDATED:
        return _("Already signed online; that signature was invalidated.")
    return _("Already signed online and confirmed.")


def add_rows(
    session: Session, demand: Demand, event: Event, rows: Sequence[tuple[int | None, PaperRow]]
) -> list[EntryResult]:
    """Store rows as confirmed paper signatures of demand; duplicates are reported, not added.

    Inserted with ON CONFLICT DO NOTHING on (demand_id, email_key), like online signatures,
    so a concurrent online signature of the same address cannot make a second one. The
    demand's paper count grows by the number added. The caller commits.
    """
    begin_write(session)
    c = _cipher()
    now = utcnow()
    source = paper_source(event)
    seen: dict[str, EntryResult] = {}
    results: list[EntryResult] = []
    for number, row in rows:
        key = c.email_key(row.email)
        earlier = seen.get(key)
        if earlier is not None:
            results.append(EntryResult(
                Outcome.DUPLICATE, earlier.signature_id, number, row.email,
                same_as_row=earlier.row_number))
            continue
        new_id = session.execute(
            insert_for(session, Signature)
            .values(
                demand_id=demand.id, email_key=key, email_domain_key=c.domain_key(row.email),
                name_enc=c.encrypt(row.name, "signature.name"),
                email_enc=c.encrypt(row.email, "signature.email"),
                postcode_enc=c.encrypt(row.postcode, "signature.postcode") if row.postcode else None,
                country=row.country, contact_consent=row.contact_consent,
                public_consent=row.public_consent, source=source, channel=Channel.PAPER,
                ip_hash=None, status=SignatureStatus.CONFIRMED, emails_sent=0, created_at=now,
                confirmed_at=now,
            )
            .on_conflict_do_nothing(index_elements=["demand_id", "email_key"])
            .returning(Signature.id)
        ).scalar_one_or_none()
        if new_id is not None:
            result = EntryResult(Outcome.ADDED, new_id, number, row.email)
        else:
            existing = session.execute(
                select(Signature.id, Signature.status, Signature.channel, Signature.source)
                .where(Signature.demand_id == demand.id, Signature.email_key == key)
            ).one_or_none()
            result = EntryResult(
                Outcome.DUPLICATE, existing[0] if existing else None, number, row.email,
                existing_status=existing[1] if existing else None,
                existing_channel=existing[2] if existing else None,
                existing_source=existing[3] if existing else None,
            )
        seen[key] = result
        results.append(result)
    added = sum(1 for r in results if r.outcome == Outcome.ADDED)
    if added:
        counts.add(session, demand.id, added, Channel.PAPER)
    return results


def _audit_detail(demand: Demand, event: Event) -> dict[str, object]:
    return {"event_id": event.id, "event": event.code, "demand_id": demand.id,
            "demand": demand.slug}


def enter_row(
    session: Session, demand: Demand, event: Event, row: PaperRow, *, organiser_id: int
) -> EntryResult:
    """Add one typed row (or report it as a duplicate) and audit it; the caller commits."""
    result = add_rows(session, demand, event, [(None, row)])[0]
    audit.record(
        session, campaign_id=demand.campaign_id, organiser_id=organiser_id, action=ENTRY_ACTION,
        detail={**_audit_detail(demand, event), "result": str(result.outcome),
                "signature_id": result.signature_id},
        row_count=1 if result.outcome == Outcome.ADDED else 0,
    )
    return result


def import_csv(
    session: Session, demand: Demand, event: Event, data: bytes, *, organiser_id: int
) -> ImportReport:
    """Add a CSV file's valid rows, report bad rows and duplicates, audit it; caller commits.

    Raises PaperFileError (and adds nothing) if the file as a whole cannot be read.
    """
    records, ignored = read_csv(data)
    report = ImportReport(ignored_columns=ignored)
    good: list[tuple[int | None, PaperRow]] = []
    for number, values in records:
        row, reasons = check_row(values)
        if row is None:
            report.errors.append(RowError(number, tuple(reasons)))
        else:
            good.append((number, row))
    results = add_rows(session, demand, event, good) if good else []
    for result in results:
        (report.added if result.outcome == Outcome.ADDED else report.duplicates).append(result)
    audit.record(
        session, campaign_id=demand.campaign_id, organiser_id=organiser_id,
        action=IMPORT_ACTION,
        detail={**_audit_detail(demand, event), "rows": len(records),
                "added": len(report.added), "duplicates": len(report.duplicates),
                "rejected": len(report.errors)},
        row_count=len(report.added),
    )
    return report


def event_paper_count(session: Session, demand: Demand, event: Event) -> int:
    """Confirmed paper signatures of the event on demand (a count over its rows only)."""
    return session.scalar(
        select(func.count()).select_from(Signature).where(
            Signature.demand_id == demand.id,
            Signature.status == SignatureStatus.CONFIRMED,
            Signature.channel == Channel.PAPER,
            Signature.source == paper_source(event),
        )
    ) or 0


def paper_counts_by_source(session: Session, campaign: Campaign) -> dict[str, int]:
    """Confirmed paper signatures of the campaign per source (paper:<event code>)."""
    rows = session.execute(
        select(Signature.source, func.count())
        .where(
            Signature.demand_id.in_([d.id for d in campaign.demands]),
            Signature.channel == Channel.PAPER,
            Signature.status == SignatureStatus.CONFIRMED,
        )
        .group_by(Signature.source)
    )
    return {source: int(n) for source, n in rows if source}


def entry_views(
    session: Session, campaign: Campaign, remembered: Sequence[tuple[int, str]]
) -> list[EntryView]:
    """The remembered entries (signature id, outcome) that belong to the campaign, decrypted."""
    ids = [signature_id for signature_id, _outcome in remembered]
    if not ids:
        return []
    demand_ids = [d.id for d in campaign.demands]
    found = {
        s.id: s for s in session.scalars(
            select(Signature).where(Signature.id.in_(ids), Signature.demand_id.in_(demand_ids)))
    }
    c = _cipher()
    views = []
    for signature_id, outcome in remembered:
        s = found.get(signature_id)
        if s is None:
            continue
        views.append(EntryView(
            signature_id=s.id, outcome=outcome,
            name=c.decrypt(s.name_enc, "signature.name") or "",
            email=c.decrypt(s.email_enc, "signature.email") or "",
            country=s.country or "", postcode=c.decrypt(s.postcode_enc, "signature.postcode") or "",
            contact_consent=s.contact_consent, public_consent=s.public_consent,
            status=s.status, channel=s.channel, source=s.source or "",
        ))
    return views
