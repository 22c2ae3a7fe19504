"""Delivery report of one demand as a PDF (fpdf2): totals, countries and consenting names.

Only confirmed signers who agreed to be listed (public_consent) are named; everyone else is
counted but never named. Names may be in any script: the vendored DejaVu Sans (petition/fonts/)
covers Latin, Turkish, Cyrillic, Greek and Arabic script (Uyghur included), which is shaped
with HarfBuzz (uharfbuzz) when installed. Any further .ttf/.otf put into petition/fonts/ is
used as a fallback font (e.g. for CJK). A character no font can show is printed as U+FFFD,
and the report says so, rather than being silently dropped.
"""

from __future__ import annotations

import importlib.util
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from pathlib import Path

import pycountry
from flask import current_app
from flask_babel import format_decimal, ngettext
from flask_babel import gettext as _
from fontTools.ttLib import TTFont
from fpdf import FPDF
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from petition.crypto import DataCipher
from petition.db import begin_write
from petition.models import Demand, Signature, SignatureStatus, utcnow
from petition.organiser import audit
from petition.signing import counts

REPORT_ACTION = "report.pdf"
FONT_DIR = Path(__file__).resolve().parent.parent / "fonts"
REGULAR_FONT = FONT_DIR / "DejaVuSans.ttf"
BOLD_FONT = FONT_DIR / "DejaVuSans-Bold.ttf"
FAMILY = "DejaVuSans"
REPLACEMENT = "\ufffd"
SHAPING_AVAILABLE = importlib.util.find_spec("uharfbuzz") is not None
# Bidirectional embeddings, overrides and isolates could make a name display as another.
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_NAME_YIELD_PER = 2000


@dataclass(frozen=True)
class DeliveryData:
    """What a delivery report shows, before layout."""

    total: int
    by_country: list[tuple[str, int]]
    names: list[str]


@dataclass(frozen=True)
class DeliveryReport:
    """A rendered report and what it contains."""

    pdf: bytes
    total: int
    listed: int


def fallback_fonts() -> list[Path]:
    """Extra vendored fonts (anything in petition/fonts/ besides DejaVu Sans), sorted."""
    own = {REGULAR_FONT.name, BOLD_FONT.name}
    return sorted(p for p in FONT_DIR.iterdir()
                  if p.suffix.lower() in (".ttf", ".otf") and p.name not in own)


@cache
def covered_codepoints() -> frozenset[int]:
    """Code points the report's fonts (regular and fallbacks) have a glyph for."""
    covered: set[int] = set()
    for path in [REGULAR_FONT, *fallback_fonts()]:
        with TTFont(path, lazy=True) as font:
            covered.update(font.getBestCmap() or {})
    return frozenset(covered)


def country_name(code: str | None) -> str:
    """The English short name of an ISO 3166 alpha-2 code (the code if unknown)."""
    if not code:
        return _("Not given")
    country = pycountry.countries.get(alpha_2=code)
    if country is None:
        return code
    return getattr(country, "common_name", None) or country.name


def printable(text: str) -> tuple[str, bool]:
    """The text made safe to print: NFC, no control or bidi-override characters, and every
    character the fonts lack replaced by U+FFFD. Also says whether anything was replaced."""
    covered = covered_codepoints()
    out: list[str] = []
    replaced = False
    for char in unicodedata.normalize("NFC", text):
        category = unicodedata.category(char)
        if char in _BIDI_CONTROLS:
            continue
        if category in ("Cc", "Zl", "Zp"):
            out.append(" ")
        elif ord(char) in covered:
            out.append(char)
        elif category in ("Cf", "Mn") and not unicodedata.combining(char):
            continue  # invisible format characters and variation selectors
        else:
            out.append(REPLACEMENT)
            replaced = True
    return " ".join("".join(out).split()), replaced


def needs_shaping(text: str) -> bool:
    """True if text needs HarfBuzz: right-to-left scripts, combining marks, Indic scripts.

    Shaping costs about ten times as much as plain output, so Latin, Cyrillic, Greek and CJK
    text, which renders correctly without it, is written without.
    """
    for char in text:
        cp = ord(char)
        if unicodedata.combining(char):
            return True
        if cp < 0x0590:
            continue
        if unicodedata.bidirectional(char) in ("R", "AL", "AN"):
            return True
        if 0x0900 <= cp < 0x1100 or 0x1780 <= cp < 0x1800:
            return True
    return False


def delivery_data(session: Session, demand: Demand) -> DeliveryData:
    """The demand's confirmed total, confirmed signatures per country, and listed names."""
    total = counts.get(session, demand.id).value
    confirmed = (Signature.demand_id == demand.id, Signature.status == SignatureStatus.CONFIRMED)
    by_country = [
        (country_name(code), int(n))
        for code, n in session.execute(
            select(Signature.country, func.count()).where(*confirmed).group_by(Signature.country)
        )
    ]
    by_country.sort(key=lambda item: (-item[1], item[0]))
    cipher = _cipher()
    names: list[str] = []
    rows = session.execute(
        select(Signature.name_enc)
        .where(*confirmed, Signature.public_consent.is_(True), Signature.name_enc.is_not(None))
        .order_by(Signature.id)
        .execution_options(yield_per=_NAME_YIELD_PER)
    )
    for (blob,) in rows:
        name = (cipher.decrypt(blob, "signature.name") or "").strip()
        if name:
            names.append(name)
    names.sort(key=lambda n: unicodedata.normalize("NFKD", n).casefold())
    return DeliveryData(total=total, by_country=by_country, names=names)


def _cipher() -> DataCipher:
    return current_app.extensions["petition.cipher"]


class _ReportPDF(FPDF):
    """A4 report with a page footer."""

    footer_text = ""

    def footer(self) -> None:
        # Runs inside automatic page breaks: leave the page's text shaping as it was, whatever
        # graphics state the installed fpdf2 version restores afterwards.
        shaping = self.text_shaping
        self.set_y(-15)
        self.set_font(FAMILY, size=8)
        self.set_text_shaping(SHAPING_AVAILABLE and needs_shaping(self.footer_text))
        self.cell(0, 10, f"{self.footer_text} · {self.page_no()}", align="C")
        self.text_shaping = shaping


def _write(pdf: FPDF, text: str, *, size: float = 11, bold: bool = False,
           height: float | None = None) -> bool:
    """Write a block of text on its own line(s); returns whether characters were replaced."""
    clean, replaced = printable(text)
    pdf.set_font(FAMILY, "B" if bold else "", size)
    pdf.set_text_shaping(SHAPING_AVAILABLE and needs_shaping(clean))
    line = height or size * 0.5
    if pdf.get_string_width(clean) <= pdf.epw:
        pdf.cell(pdf.epw, line, clean, new_x="LMARGIN", new_y="NEXT")
    else:
        pdf.multi_cell(pdf.epw, line, clean, new_x="LMARGIN", new_y="NEXT")
    return replaced


def _write_names(pdf: FPDF, names: list[str]) -> bool:
    """One name per line (the hot loop of big reports); returns whether any was altered."""
    pdf.set_font(FAMILY, "", 10)
    shaping = False
    pdf.set_text_shaping(False)
    replaced = False
    for name in names:
        clean, altered = printable(name)
        replaced |= altered
        wanted = SHAPING_AVAILABLE and needs_shaping(clean)
        if wanted != shaping:
            pdf.set_text_shaping(wanted)
            shaping = wanted
        # Measuring is costly; up to 40 characters always fit a line of the A4 text width.
        if len(clean) <= 40 or pdf.get_string_width(clean) <= pdf.epw:
            pdf.cell(pdf.epw, 5.5, clean, new_x="LMARGIN", new_y="NEXT")
        else:
            pdf.multi_cell(pdf.epw, 5.5, clean, new_x="LMARGIN", new_y="NEXT")
    return replaced


def render_pdf(demand: Demand, data: DeliveryData, generated_at: datetime) -> bytes:
    """Lay out the delivery report and return the PDF bytes."""
    campaign = demand.campaign
    pdf = _ReportPDF(format="A4")
    pdf.footer_text = printable(_("%(demand)s · generated %(when)s UTC", demand=demand.title,
                                  when=f"{generated_at:%Y-%m-%d %H:%M}"))[0]
    pdf.set_title(demand.title)
    pdf.set_author(campaign.organisation or campaign.title)
    pdf.set_creator("petition")
    pdf.add_font(FAMILY, "", str(REGULAR_FONT))
    pdf.add_font(FAMILY, "B", str(BOLD_FONT))
    fallbacks = []
    for i, path in enumerate(fallback_fonts()):
        pdf.add_font(f"Fallback{i}", "", str(path))
        fallbacks.append(f"Fallback{i}")
    if fallbacks:
        pdf.set_fallback_fonts(fallbacks)
    pdf.set_auto_page_break(True, margin=20)
    pdf.add_page()

    replaced = _write(pdf, demand.title, size=18, bold=True, height=9)
    pdf.ln(2)
    if demand.target:
        replaced |= _write(pdf, _("Addressed to: %(target)s", target=demand.target))
    replaced |= _write(pdf, _("Campaign: %(campaign)s", campaign=campaign.title))
    if campaign.organisation:
        replaced |= _write(pdf, _("Organisation: %(organisation)s",
                                  organisation=campaign.organisation))
    _write(pdf, _("Report generated on %(when)s UTC", when=f"{generated_at:%Y-%m-%d %H:%M}"),
           size=9)
    pdf.ln(4)
    _write(pdf, ngettext("%(count)s confirmed signature", "%(count)s confirmed signatures",
                         data.total, count=format_decimal(data.total)), size=16, bold=True, height=9)
    pdf.ln(4)

    _write(pdf, _("Confirmed signatures by country"), size=13, bold=True, height=8)
    pdf.set_font(FAMILY, "", 10)
    pdf.set_text_shaping(False)
    number_width = 35
    for name, n in data.by_country:
        pdf.cell(pdf.epw - number_width, 6, printable(name)[0])
        pdf.cell(number_width, 6, format_decimal(n), align="R", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)

    _write(pdf, _("Signers who agreed to be listed (%(num)s)",
                  num=format_decimal(len(data.names))), size=13, bold=True, height=8)
    _write(pdf, _("Only confirmed signers who agreed to have their name listed are named here; "
                  "everyone else is counted above but not named."), size=9, height=5)
    pdf.ln(2)
    replaced |= _write_names(pdf, data.names)
    if replaced:
        pdf.ln(4)
        _write(pdf, _("Some characters could not be shown with this report's fonts and are "
                      "printed as %(mark)s.", mark=REPLACEMENT), size=9, height=5)
    return finish(pdf)


def finish(pdf: FPDF) -> bytes:
    """The PDF's bytes; then its font files are closed (fpdf2 keeps them open while it may
    still subset them, and an unclosed file is a ResourceWarning when collected)."""
    try:
        return bytes(pdf.output())
    finally:
        for font in pdf.fonts.values():
            close = getattr(font, "close", None)
            if close is not None:
                close()


def build_delivery_report(session: Session, demand: Demand) -> DeliveryReport:
    """Collect the demand's data and render its delivery report."""
    data = delivery_data(session, demand)
    pdf = render_pdf(demand, data, utcnow())
    return DeliveryReport(pdf=pdf, total=data.total, listed=len(data.names))


def record_report(
    session: Session, demand: Demand, organiser_id: int, built: DeliveryReport
) -> None:
    """Add the audit entry for a delivered report (row_count = names listed); caller commits."""
    begin_write(session)
    audit.record(
        session,
        campaign_id=demand.campaign_id,
        organiser_id=organiser_id,
        action=REPORT_ACTION,
        detail={"demand_id": demand.id, "demand": demand.slug, "total": built.total},
        row_count=built.listed,
    )
