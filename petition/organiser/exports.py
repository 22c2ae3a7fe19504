"""CSV exports of a campaign's signatures: filters, spreadsheet-safe cells, streaming, audit.

Rows are read per demand as plain Core rows, streamed (psycopg's streaming on PostgreSQL,
`yield_per` elsewhere), and turned into CSV a batch at a time (`_ROWS_PER_CHUNK` rows, one
chunk of the response), so memory stays constant whatever the size of the export. The work
per row is kept in C where it can be, as an export of a million signatures spends its time
there: the database formats the dates and withholds the emails the export may not show, a
batch is decrypted and neutralised a column at a time (list comprehensions over one AES-GCM
object), and csv.writer writes the whole batch in one call.

The audit entry is written before the first byte is sent (so an export is never unrecorded,
even if the process dies) and completed with the number of rows actually written when the
stream ends.
"""

from __future__ import annotations

import csv
import io
import logging
import re
from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from itertools import islice, repeat
from typing import Any

from flask import current_app
from sqlalchemy import ColumnElement, Connection, Select, and_, case, func, select
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
_FORMULA_FIRST = "".join(FORMULA_PREFIXES)  # every prefix is one character
BOM = "\ufeff"
_ROWS_PER_CHUNK = 500  # rows per decrypted batch and per response chunk (about 60 KB)
_YIELD_PER = 5000  # rows per fetch from a server-side cursor (not PostgreSQL with psycopg)
_UNSAFE_FILENAME = re.compile(r"[^A-Za-z0-9._-]+")

Cells = tuple[str | None, ...]  # one CSV row in COLUMNS order; None is an empty cell


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


def _neutralised(values: Sequence[str | None]) -> list[str | None]:
    """neutralise() of a column (None kept: csv.writer writes it as an empty cell)."""
    return ["'" + v if v and v[0] in _FORMULA_FIRST else v for v in values]


def _utc_text(column: Any, dialect: str) -> ColumnElement[str]:
    """The column as "YYYY-MM-DD HH:MM:SS" text (UTC, seconds truncated), made by the database.

    That format is read as a date by every spreadsheet, unlike ISO's "T...Z". UTCDateTime
    stores naive UTC: on PostgreSQL a `timestamp` that to_char formats (whatever DateStyle),
    on SQLite SQLAlchemy's "YYYY-MM-DD HH:MM:SS.ffffff" text, whose first 19 characters it is.
    """
    if dialect == "postgresql":
        return func.to_char(column, "YYYY-MM-DD HH24:MI:SS")
    if dialect == "sqlite":
        return func.substr(column, 1, 19)
    raise NotImplementedError(f"CSV export dates on {dialect}")


def _start_of(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def export_demands(campaign: Campaign, filters: ExportFilters) -> list[Demand]:
    """The campaign's demands the export covers, in the campaign's order."""
    return [d for d in campaign.demands if filters.demand_id in (None, d.id)]


def signature_query(demand_id: int, filters: ExportFilters, dialect: str) -> Select[Any]:
    """The SELECT of one demand's signatures matching the filters, oldest first.

    Columns: name_enc, email_enc, postcode_enc, country, source, signed_at, confirmed_at,
    status. The email is selected only for confirmed signers who agreed to be contacted (NULL
    otherwise): an unconfirmed address may have been typed by someone else, so its consent is
    not proven, and an address the export may not show never leaves the database.
    """
    may_contact = and_(Signature.contact_consent.is_(True),
                       Signature.status == SignatureStatus.CONFIRMED.value)
    query = select(
        Signature.name_enc,
        case((may_contact, Signature.email_enc), else_=None),
        Signature.postcode_enc,
        Signature.country,
        Signature.source,
        _utc_text(Signature.created_at, dialect),
        _utc_text(Signature.confirmed_at, dialect),
        Signature.status,
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


def export_batches(
    session: Session, demands: Sequence[tuple[int, str]], filters: ExportFilters
) -> Generator[list[Cells], None, None]:
    """Decrypted, spreadsheet-safe CSV rows for (demand id, demand title) pairs, streamed
    in batches of at most _ROWS_PER_CHUNK rows."""
    cipher = current_app.extensions["petition.cipher"]
    connection = session.connection()
    for demand_id, title in demands:
        query = signature_query(demand_id, filters, connection.dialect.name)
        rows = _stream(connection, query)
        try:
            for batch in rows:
                yield _cells(batch, title, cipher)
        finally:
            rows.close()  # ends the query even when the download stops half-way


def _stream(connection: Connection, query: Select[Any]) -> Generator[Sequence[Any], None, None]:
    """The query's rows in batches of at most _ROWS_PER_CHUNK, read with bounded memory.

    On PostgreSQL with psycopg the query is streamed (one execution, rows sent in binary as
    the server produces them, `size` at a time), so the server works while this process
    turns the previous rows into CSV; a server-side cursor (SQLAlchemy's `yield_per`) would
    wait for a round trip per fetch instead. Elsewhere `yield_per` reads from the database's
    own cursor, which is in-process for SQLite.
    """
    size = _ROWS_PER_CHUNK
    dialect = connection.dialect
    if dialect.name == "postgresql" and dialect.driver == "psycopg":
        compiled = query.compile(dialect=dialect)
        params = {}
        for name, value in compiled.construct_params().items():
            process = compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect)
            params[name] = process(value) if process else value  # e.g. UTCDateTime to naive
        cursor = connection.connection.driver_connection.cursor(binary=True)
        rows = cursor.stream(compiled.string, params, size=size)
        try:
            while batch := list(islice(rows, size)):
                yield batch
        finally:
            rows.close()  # psycopg cancels an unfinished query and reads what is left
            cursor.close()
        return
    # `with` closes the (server-side) cursor even when the download stops half-way.
    with connection.execute(query.execution_options(yield_per=_YIELD_PER)) as result:
        yield from result.partitions(size)


def _cells(rows: Sequence[Any], title: str, cipher: DataCipher) -> list[Cells]:
    """A batch of signature_query() rows as CSV cells, a column at a time (the hot loop)."""
    (names, emails, postcodes, countries, sources, signed, confirmed,
     statuses) = zip(*rows, strict=True)
    decrypt = cipher.decrypt_many
    return list(zip(
        repeat(neutralise(title)),
        _neutralised(decrypt(names, "signature.name")),
        _neutralised(countries),
        _neutralised(decrypt(postcodes, "signature.postcode")),
        _neutralised(sources),
        signed,
        confirmed,
        statuses,
        _neutralised(decrypt(emails, "signature.email")),
    ))


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
    batches = export_batches(session, demands, filters)
    try:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        if filters.excel:
            buffer.write(BOM)
        writer.writerow(COLUMNS)
        pending = 0
        for batch in batches:
            writer.writerows(batch)
            pending += len(batch)
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
        batches.close()
        session.close()
        try:
            finish_export(entry_id, written, complete=complete)
        except Exception:  # noqa: BLE001 - never hide the stream's own error; the entry exists
            log.exception("could not complete audit entry %s of a CSV export", entry_id)
