"""Paper signature sheets as CSV: reading a file and checking each row like an online
signature (no request access, nothing written). Adding the rows is petition/organiser/paper.py.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

from flask_babel import gettext as _

from petition.organiser.paper_forms import ROW_FIELDS, PaperRowForm, validate_row

CSV_MAX_ROWS = 5000
REQUIRED_COLUMNS = ("name", "email", "country")
CONSENT_COLUMNS = ("contact_consent", "public_consent")
_TRUE = {"1", "y", "yes", "true", "x", "✓", "✔"}
_FALSE = {"", "0", "n", "no", "false", "-"}
_DELIMITERS = (",", ";", "\t")


class PaperFileError(ValueError):
    """A CSV file that cannot be read at all; the message is shown to the organiser."""


@dataclass(frozen=True)
class PaperRow:
    """One valid sheet row."""

    name: str
    email: str
    country: str
    postcode: str | None = None
    contact_consent: bool = False
    public_consent: bool = False

    @classmethod
    def from_form(cls, form: PaperRowForm) -> PaperRow:
        """The row of a validated form."""
        return cls(
            name=form.name.data, email=form.email.data, country=form.country.data,
            postcode=form.postcode.data or None, contact_consent=bool(form.contact_consent.data),
            public_consent=bool(form.public_consent.data),
        )


def _parse_consent(column: str, raw: str) -> tuple[bool, str | None]:
    value = raw.strip().casefold()
    if value in _TRUE:
        return True, None
    if value in _FALSE:
        return False, None
    return False, _("%(column)s: “%(value)s” is not yes or no (use 1 or 0, yes or no, x, or "
                    "leave it empty).", column=column, value=raw.strip()[:20])


def _header_name(cell: str) -> str:
    return cell.strip().lower().replace(" ", "_").replace("-", "_")


def read_csv(data: bytes) -> tuple[list[tuple[int, dict[str, str]]], list[str]]:
    """The data rows of a CSV file as (row number, column -> text), and ignored columns.

    UTF-8 with or without a byte order mark; comma, semicolon or tab separated (as found in
    the header row). Row numbers count the header as row 1, as a spreadsheet shows them;
    blank rows are skipped. Raises PaperFileError for a file that cannot be used at all.
    """
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise PaperFileError(_("The file is not UTF-8 text. Save it from your spreadsheet as "
                               "“CSV UTF-8” and try again.")) from exc
    if "\x00" in text:
        raise PaperFileError(_("The file is not a CSV text file."))
    first_line = text.split("\n", 1)[0]
    delimiter = max(_DELIMITERS, key=first_line.count)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=False)
    try:
        header = [_header_name(cell) for cell in next(reader, [])]
        missing = [c for c in REQUIRED_COLUMNS if c not in header]
        if missing:
            raise PaperFileError(_(
                "The first row must name the columns: %(expected)s (the last three are "
                "optional). Missing: %(missing)s.",
                expected=", ".join(ROW_FIELDS), missing=", ".join(missing)))
        doubled = sorted({h for h in header if h and header.count(h) > 1})
        if doubled:
            raise PaperFileError(_("These columns appear twice: %(columns)s.",
                                   columns=", ".join(doubled)))
        ignored = [h for h in header if h and h not in ROW_FIELDS]
        rows: list[tuple[int, dict[str, str]]] = []
        for number, record in enumerate(reader, start=2):
            if not any(cell.strip() for cell in record):
                continue
            if len(rows) >= CSV_MAX_ROWS:
                raise PaperFileError(_("The file has more than %(max)d rows. Please split it.",
                                       max=CSV_MAX_ROWS))
            values = {h: (record[i] if i < len(record) else "") for i, h in enumerate(header)}
            if any(cell.strip() for cell in record[len(header):]):
                values["\x00extra"] = "1"
            rows.append((number, values))
    except csv.Error as exc:
        raise PaperFileError(_("The file could not be read as CSV near line %(line)d: %(error)s",
                               line=reader.line_num, error=str(exc))) from exc
    return rows, ignored


def check_row(values: dict[str, str]) -> tuple[PaperRow | None, list[str]]:
    """Validate one CSV row like an online signature: (the row, []) or (None, reasons)."""
    form, reasons = validate_row(values)
    consents: dict[str, bool] = {}
    for column in CONSENT_COLUMNS:
        consents[column], problem = _parse_consent(column, values.get(column, ""))
        if problem:
            reasons.append(problem)
    if values.get("\x00extra"):
        reasons.append(_("The row has more cells than the header row has columns."))
    if form is None or reasons:
        return None, reasons
    row = PaperRow.from_form(form)
    return PaperRow(row.name, row.email, row.country, row.postcode,
                    consents["contact_consent"], consents["public_consent"]), []
