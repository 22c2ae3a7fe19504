"""CSV exports of a campaign's signatures: filters, spreadsheet-safe cells, streaming, audit.

Rows are read per demand with a streaming cursor (`yield_per`) and decrypted one at a time,
so memory stays constant whatever the size of the export. The audit entry is written before
the first byte is sent (so an export is never unrecorded, even if the process dies) and
completed with the number of rows actually written when the stream ends.
"""

from __future__ import annotations

import csv
import io
import logging
import re
from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import select
from sqlalchemy.orm import Session

from petition.crypto import DataCipher
from petition.db import begin_write, new_session
from petition.models import AuditEntry, Campaign, Demand, Signature, SignatureStatus, utcnow
from petition.organiser import audit

log = logging.getLogger(__name__)

EXPORT_ACTION = "export.csv"
# Column names are stable identifiers for spreadsheets and scripts, so they are not translated.
COLUMNS = (
    "demand", "name", "country", "postcode", "source",
    "signed_at", "confirmed_at", "status", "email",
)
ALL_STATUSES = "all"
# A cell starting with one of these is read as a formula by Excel, LibreOffice or Sheets.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
BOM = "\ufeff"
_ROWS_PER_CHUNK = 500
_YIELD_PER = 1000
_UNSAFE_FILENAME = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class ExportFilters:
    """Which signatures an export contains; None means "any"."""

    demand_id: int | None = None
    status: str | None = SignatureStatus.CONFIRMED.value
    signed_from: date | None = None
    signed_to: date | None = None
    source: str | None = None
    country: str | None = None
    excel: bool = False

    def describe(self) -> dict[str, Any]:
        """The filters as JSON-ready values, for the audit log."""
        return {
            "demand_id": self.demand_id,
            "status": self.status or ALL_STATUSES,
            "signed_from": self.signed_from.isoformat() if self.signed_from else None,
            "signed_to": self.signed_to.isoformat() if self.signed_to else None,
            "source": self.source,
            "country": self.country,
            "excel": self.excel,
        }


def neutralise(value: str) -> str:
    """Prefix a single quote to a cell a spreadsheet would run as a formula."""
    return "'" + value if value.startswith(FORMULA_PREFIXES) else value


def _utc_text(moment: datetime | None) -> str:
    # "YYYY-MM-DD HH:MM:SS" (UTC) is read as a date by every spreadsheet, unlike ISO's "T...Z".
    # Values come from UTCDateTime columns, so they are already in UTC (isoformat is fast).
    return moment.isoformat(" ", "seconds")[:19] if moment else ""


def _start_of(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def export_demands(campaign: Campaign, filters: ExportFilters) -> list[Demand]:
    """The campaign's demands the export covers, in the campaign's order."""
    return [d for d in campaign.demands if filters.demand_id in (None, d.id)]


def signature_query(demand_id: int, filters: ExportFilters) -> Any:
    """The SELECT of one demand's signatures matching the filters, oldest first."""
    query = select(
        Signature.name_enc,
        Signature.email_enc,
        Signature.postcode_enc,
        Signature.country,
        Signature.source,
        Signature.created_at,
        Signature.confirmed_at,
        Signature.status,
        Signature.contact_consent,
    ).where(Signature.demand_id == demand_id)
    if filters.status:
        query = query.where(Signature.status == filters.status)
    if filters.signed_from:
        query = query.where(Signature.created_at >= _start_of(filters.signed_from))
    if filters.signed_to and filters.signed_to < date.max:
        query = query.where(Signature.created_at < _start_of(filters.signed_to + timedelta(days=1)))
    if filters.source:
        query = query.where(Signature.source == filters.source)
    if filters.country:
        query = query.where(Signature.country == filters.country)
    return query.order_by(Signature.created_at, Signature.id)


def export_rows(
    session: Session, demands: Sequence[tuple[int, str]], filters: ExportFilters
) -> Generator[list[str], None, None]:
    """Decrypted, spreadsheet-safe CSV rows for (demand id, demand title) pairs, streamed.

    The email is filled in only for confirmed signers who agreed to be contacted: an
    unconfirmed address may have been typed by someone else, so its consent is not proven.
    """
    cipher = current_app.extensions["petition.cipher"]
    for demand_id, title in demands:
        # `with` closes the (server-side) cursor even when the download stops half-way.
        with session.execute(
            signature_query(demand_id, filters).execution_options(yield_per=_YIELD_PER)
        ) as result:
            yield from _cells(result, title, cipher)


def _cells(result: Any, title: str, cipher: DataCipher) -> Iterator[list[str]]:
    """One demand's rows as CSV cells (a hot loop: tuple unpacking, no per-cell lookups)."""
    decrypt = cipher.decrypt
    title = neutralise(title)
    confirmed = SignatureStatus.CONFIRMED.value
    for (name_enc, email_enc, postcode_enc, country, source, created_at, confirmed_at,
         status, contact_consent) in result:
        email = decrypt(email_enc, "signature.email") if contact_consent and status == confirmed \
            else None
        yield [
            title,
            neutralise(decrypt(name_enc, "signature.name") or ""),
            neutralise(country or ""),
            neutralise(decrypt(postcode_enc, "signature.postcode") or ""),
            neutralise(source or ""),
            _utc_text(created_at),
            _utc_text(confirmed_at),
            status,
            neutralise(email or ""),
        ]


def export_filename(campaign: Campaign, demand: Demand | None, filters: ExportFilters,
                    today: date | None = None) -> str:
    """A safe attachment filename: campaign, demand (or "all"), status and date."""
    parts = [campaign.slug, demand.slug if demand else "all", filters.status or ALL_STATUSES,
             (today or utcnow().date()).isoformat()]
    name = _UNSAFE_FILENAME.sub("-", "-".join(parts)).strip("-.")[:150]
    return f"{name or 'signatures'}.csv"


def start_export(
    session: Session, campaign: Campaign, organiser_id: int, filters: ExportFilters
) -> int:
    """Record the export in the audit log before it starts (row count still unknown); commits.

    Returns the audit entry's id, which finish_export() completes when the stream ends.
    """
    begin_write(session)
    entry = audit.record(
        session,
        campaign_id=campaign.id,
        organiser_id=organiser_id,
        action=EXPORT_ACTION,
        detail={"filters": filters.describe(), "complete": False},
        row_count=None,
    )
    session.commit()
    return entry.id


def finish_export(entry_id: int, rows: int, *, complete: bool) -> None:
    """Complete the export's audit entry with the rows written, in a fresh session."""
    session = new_session()
    try:
        begin_write(session)
        entry = session.get(AuditEntry, entry_id)
        if entry is not None:
            entry.row_count = rows
            entry.detail = {**entry.detail, "complete": complete, "finished_at": utcnow().isoformat()}
        session.commit()
    finally:
        session.close()


def stream_csv(
    demands: Sequence[tuple[int, str]], filters: ExportFilters, entry_id: int
) -> Iterator[bytes]:
    """Yield the CSV as UTF-8 chunks (BOM first for Excel) and complete the audit entry.

    Must run inside an app context (the view wraps it in stream_with_context). The rows
    are read in a session of their own; a row counts as written once its chunk was taken
    by the server, so a download cut short is logged with the rows actually sent.
    """
    written = 0
    complete = False
    session = new_session()
    rows = export_rows(session, demands, filters)
    try:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        if filters.excel:
            buffer.write(BOM)
        writer.writerow(COLUMNS)
        pending = 0
        for row in rows:
            writer.writerow(row)
            pending += 1
            if pending >= _ROWS_PER_CHUNK:
                chunk = buffer.getvalue().encode()
                buffer.seek(0)
                buffer.truncate()
                yield chunk
                written += pending
                pending = 0
        yield buffer.getvalue().encode()
        written += pending
        complete = True
    finally:
        rows.close()
        session.close()
        try:
            finish_export(entry_id, written, complete=complete)
        except Exception:  # noqa: BLE001 - never hide the stream's own error; the entry exists
            log.exception("could not complete audit entry %s of a CSV export", entry_id)
