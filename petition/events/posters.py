"""Printable posters (fpdf2): the title, a large vector QR code, the short URL and the count.

A poster is made for a petition (one demand), a campaign, or an event, whose poster encodes
the event's short link `/e/<code>` so that signatures are credited to it. Sizes are A4 and A3
(`?size=a4|a3`); the A3 layout is the A4 one scaled by √2. The QR code is drawn with filled
rectangles, so it stays sharp at any print size. Text uses the delivery report's vendored
DejaVu Sans (petition/fonts/) and its helpers, so names and titles in any of its scripts
print, right-to-left ones shaped.

This module also holds the small PDF helpers the signature sheet (sheets.py) shares. It never
reads the request: views pass in what they know.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from types import ModuleType

import qrcode
import qrcode.constants
from flask_babel import format_date, format_decimal, get_locale, ngettext
from flask_babel import gettext as _
from fpdf import FPDF
from sqlalchemy.orm import Session

from petition.links import public_url
from petition.models import Campaign, Demand, Event, utcnow
from petition.signing import counts
from petition.signing.services import PUBLIC_DEMAND

SIZES: Mapping[str, tuple[float, float]] = {"a4": (210.0, 297.0), "a3": (297.0, 420.0)}
SIZE_DEFAULT = "a4"
PT = 25.4 / 72  # millimetres per typographic point
CACHE_SIZE = 64
_EC = {"L": qrcode.constants.ERROR_CORRECT_L, "M": qrcode.constants.ERROR_CORRECT_M,
       "Q": qrcode.constants.ERROR_CORRECT_Q, "H": qrcode.constants.ERROR_CORRECT_H}
_GREY = (85, 85, 85)
_BLACK = (0, 0, 0)


class PosterOptionError(ValueError):
    """An option value that cannot be used; the message is shown to the user as is."""


def parse_size(raw: str | None) -> str:
    """The paper size from ?size=: a4 (default when missing or empty) or a3, any case."""
    value = (raw or "").strip().lower() or SIZE_DEFAULT
    if value not in SIZES:
        raise PosterOptionError(_("size must be a4 or a3."))
    return value


# --- shared PDF helpers ---------------------------------------------------------------------


def _report() -> ModuleType:
    """The delivery report module, whose fonts and text helpers posters share.

    Imported on use: importing petition.organiser loads its views, which import this module.
    """
    from petition.organiser import report

    return report


def new_pdf(size: str, title: str, author: str) -> FPDF:
    """A one-size PDF (portrait, millimetres) with the vendored fonts, no automatic breaks."""
    report = _report()
    pdf = FPDF(orientation="P", unit="mm", format=SIZES[size])
    pdf.set_title(title)
    pdf.set_author(author)
    pdf.set_creator("petition")
    pdf.add_font(report.FAMILY, "", str(report.REGULAR_FONT))
    pdf.add_font(report.FAMILY, "B", str(report.BOLD_FONT))
    fallbacks = []
    for i, path in enumerate(report.fallback_fonts()):
        pdf.add_font(f"Fallback{i}", "", str(path))
        fallbacks.append(f"Fallback{i}")
    if fallbacks:
        pdf.set_fallback_fonts(fallbacks)
    pdf.set_auto_page_break(False)
    pdf.set_margins(0, 0, 0)
    return pdf


def finish(pdf: FPDF) -> bytes:
    """The PDF's bytes, with its font files closed (see report.finish)."""
    return bytes(_report().finish(pdf))


def clean(text: str) -> str:
    """Text safe to print with the vendored fonts (see report.printable)."""
    return str(_report().printable(text or "")[0])


def set_font(pdf: FPDF, size: float, *, bold: bool = False, text: str = "") -> None:
    """Select the house font, with shaping only when the text needs it (it is slow)."""
    report = _report()
    pdf.set_font(report.FAMILY, "B" if bold else "", size)
    pdf.set_text_shaping(bool(report.SHAPING_AVAILABLE and report.needs_shaping(text)))


def line_height(size: float) -> float:
    """The height of one line of text of size points, in millimetres."""
    return size * PT * 1.2


def fit_lines(
    pdf: FPDF, text: str, width: float, *, max_size: float, min_size: float, max_lines: int,
    max_height: float | None = None, bold: bool = False,
) -> tuple[float, list[str]]:
    """The largest font size (points) at which text fits in max_lines lines of width.

    Shrinks in steps of about 6 %; if even min_size needs more lines, the text is cut after
    max_lines lines and the last one ends with an ellipsis.
    """
    text = clean(text)
    if not text:
        return min_size, []
    size = max_size
    while True:
        set_font(pdf, size, bold=bold, text=text)
        lines = [str(line) for line in pdf.multi_cell(
            width, line_height(size), text, dry_run=True, output="LINES")]
        fits = len(lines) <= max_lines and (
            max_height is None or len(lines) * line_height(size) <= max_height)
        if fits or size <= min_size:
            break
        size = max(min_size, size * 0.94)
    if len(lines) > max_lines:
        lines = lines[:max_lines]
        last = lines[-1].rstrip()
        while last and pdf.get_string_width(last + " …") > width:
            last = last[:-1].rstrip()
        lines[-1] = last + " …"
    return size, lines


def draw_lines(
    pdf: FPDF, lines: list[str], x: float, y: float, width: float, size: float, *,
    bold: bool = False, align: str = "C", color: tuple[int, int, int] = _BLACK,
) -> float:
    """Write prepared lines from (x, y) down; returns the y below the last line."""
    pdf.set_text_color(*color)
    height = line_height(size)
    for line in lines:
        set_font(pdf, size, bold=bold, text=line)
        pdf.set_xy(x, y)
        pdf.cell(width, height, line, align=align)
        y += height
    pdf.set_text_color(*_BLACK)
    return y


def fit_one_line(pdf: FPDF, text: str, width: float, *, max_size: float, min_size: float,
                 bold: bool = False) -> float:
    """The largest size (points) at which text fits on one line of width (at least min_size)."""
    size = max_size
    set_font(pdf, size, bold=bold, text=text)
    measured = pdf.get_string_width(text)
    if measured > width:
        size = max(min_size, size * width / measured * 0.98)
    return size


def draw_qr(pdf: FPDF, url: str, x: float, y: float, side: float, ec: str = "M") -> None:
    """Draw the QR code of url as a vector square of side mm at (x, y), quiet zone included.

    Dark modules are merged into horizontal runs, one filled rectangle each.
    """
    code = qrcode.QRCode(error_correction=_EC[ec], border=4)
    code.add_data(url)
    code.make(fit=True)
    matrix = code.get_matrix()
    module = side / len(matrix)
    pdf.set_fill_color(255, 255, 255)
    pdf.rect(x, y, side, side, style="F")
    pdf.set_fill_color(*_BLACK)
    for row, cells in enumerate(matrix):
        col = 0
        while col < len(cells):
            if not cells[col]:
                col += 1
                continue
            start = col
            while col < len(cells) and cells[col]:
                col += 1
            pdf.rect(x + start * module, y + row * module, (col - start) * module, module,
                     style="F")


# --- posters ------------------------------------------------------------------------------


@dataclass(frozen=True)
class PosterContent:
    """What a poster shows, before layout (hashable: rendered posters are cached by it)."""

    headline: str
    kicker: str  # a small line above the headline: the campaign of a petition
    subline: str  # who the demand is addressed to, or the campaign's summary
    url: str  # what the QR code encodes and the poster prints
    count: int
    goal: int | None
    organisation: str
    as_of: str  # the print date, formatted


def _as_of() -> str:
    return format_date(utcnow().date(), "long")


def demand_poster(session: Session, demand: Demand, url: str) -> PosterContent:
    """A petition's poster: its title, target, count and goal, pointing to url."""
    campaign = demand.campaign
    return PosterContent(
        headline=demand.title,
        kicker=campaign.title,
        subline=_("To: %(target)s", target=demand.target) if demand.target else "",
        url=url,
        count=counts.get(session, demand.id).value,
        goal=demand.goal or None,
        organisation=campaign.organisation,
        as_of=_as_of(),
    )


def campaign_poster(session: Session, campaign: Campaign, url: str) -> PosterContent:
    """A campaign's poster: its title, summary and the signatures on its published demands.

    A campaign has no goal of its own (each demand has one), so none is printed.
    """
    ids = [d.id for d in campaign.demands if d.status in PUBLIC_DEMAND]
    total = sum(c.value for c in counts.get_many(session, ids).values())
    return PosterContent(
        headline=campaign.title,
        kicker=campaign.organisation,
        subline=campaign.summary,
        url=url,
        count=total,
        goal=None,
        organisation=campaign.organisation,
        as_of=_as_of(),
    )


def event_poster(session: Session, event: Event) -> PosterContent:
    """An event's poster: like its petition's (or campaign's), encoding its short link."""
    url = public_url("events.short_link", code=event.code)
    if event.demand is not None:
        return demand_poster(session, event.demand, url)
    return campaign_poster(session, event.campaign, url)


def poster_filename(name: str, size: str) -> str:
    """The download name of a poster, e.g. poster-free-them-a3.pdf."""
    return f"poster-{name}-{size}.pdf"


def render_poster(content: PosterContent, size: str) -> bytes:
    """The poster as PDF bytes (cached per content, size and language)."""
    return _render_cached(content, size, str(get_locale() or ""))


@lru_cache(maxsize=CACHE_SIZE)
def _render_cached(content: PosterContent, size: str, _locale: str) -> bytes:
    return _draw_poster(content, size)


def _draw_poster(content: PosterContent, size: str) -> bytes:
    """Lay out the poster (A4 coordinates scaled by s for A3)."""
    page_w, page_h = SIZES[size]
    s = page_w / SIZES["a4"][0]
    margin = 15 * s
    width = page_w - 2 * margin
    pdf = new_pdf(size, content.headline, content.organisation or content.kicker)
    pdf.add_page()

    y = margin
    if content.kicker:
        k_size, k_lines = fit_lines(pdf, content.kicker, width, max_size=15 * s,
                                    min_size=10 * s, max_lines=2)
        y = draw_lines(pdf, k_lines, margin, y, width, k_size, color=_GREY) + 3 * s
    h_size, h_lines = fit_lines(pdf, content.headline, width, max_size=44 * s, min_size=18 * s,
                                max_lines=6, max_height=78 * s, bold=True)
    y = draw_lines(pdf, h_lines, margin, y, width, h_size, bold=True) + 2 * s
    if content.subline:
        sub_size, sub_lines = fit_lines(pdf, content.subline, width, max_size=15 * s,
                                        min_size=11 * s, max_lines=3)
        y = draw_lines(pdf, sub_lines, margin, y, width, sub_size) + 2 * s

    # The bottom block, from the bottom up: footer, count (with goal bar), URL, call to act.
    footer_top = page_h - margin - line_height(9 * s)
    count_h = line_height(24 * s) + (line_height(12 * s) + 8 * s if content.goal else 0)
    count_top = footer_top - 4 * s - count_h
    url_top = count_top - 5 * s - line_height(22 * s)
    call_top = url_top - line_height(18 * s)
    side = max(60 * s, min(width * 0.72, call_top - 3 * s - y))
    draw_qr(pdf, content.url, (page_w - side) / 2, y, side)

    call = _("Scan the code to sign")
    draw_lines(pdf, [call], margin, call_top, width, 18 * s, bold=True)
    url_size = fit_one_line(pdf, content.url, width, max_size=22 * s, min_size=9 * s, bold=True)
    draw_lines(pdf, [content.url], margin, url_top, width, url_size, bold=True)

    number = format_decimal(content.count)
    line = ngettext("%(count)s signature so far", "%(count)s signatures so far", content.count,
                    count=number)
    y = draw_lines(pdf, [clean(line)], margin, count_top, width, 24 * s, bold=True)
    if content.goal:
        draw_lines(pdf, [_("Goal: %(goal)s signatures", goal=format_decimal(content.goal))],
                   margin, y, width, 12 * s)
        _progress_bar(pdf, margin + width * 0.15, y + line_height(12 * s) + 2 * s, width * 0.7,
                      4 * s, content.count / content.goal)

    footer = _("Count on %(date)s", date=content.as_of)
    if content.organisation:
        footer = f"{clean(content.organisation)} · {footer}"
    f_size = fit_one_line(pdf, footer, width, max_size=9 * s, min_size=6 * s)
    draw_lines(pdf, [footer], margin, footer_top, width, f_size, color=_GREY)
    return finish(pdf)


def _progress_bar(pdf: FPDF, x: float, y: float, width: float, height: float,
                  share: float) -> None:
    """An outlined bar, filled to share (0..1) of its width."""
    pdf.set_draw_color(*_BLACK)
    pdf.set_line_width(0.4)
    pdf.rect(x, y, width, height, style="D")
    filled = width * min(max(share, 0.0), 1.0)
    if filled > 0:
        pdf.set_fill_color(*_BLACK)
        pdf.rect(x, y, filled, height, style="F")
