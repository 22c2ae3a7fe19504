"""Paper signature sheets (fpdf2): the demand's text, numbered rows to fill in, a QR code.

One A4 portrait page holds ROWS_PER_PAGE rows with name, email, country and postcode and two
consent boxes ("keep me updated", "list my name publicly"), the demand (title, target, the
start of its text), a QR code of the event's short link for signing online instead, and a
short privacy note. Every page stands alone (pages get separated at a stall); rows are
numbered on across pages. The rows are later typed in on the paper entry page, whose fields
follow the sheet's columns in order.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from flask_babel import format_date, get_locale
from flask_babel import gettext as _
from fpdf import FPDF
from markdown_it import MarkdownIt

from petition.events.posters import (
    clean,
    draw_lines,
    draw_qr,
    finish,
    fit_lines,
    fit_one_line,
    line_height,
    new_pdf,
    set_font,
)
from petition.links import public_url
from petition.models import Demand, Event

ROWS_PER_PAGE = 15
PAGES_DEFAULT, PAGES_MAX = 1, 20
BODY_MAX_LINES = 7
CACHE_SIZE = 32
_GREY = (85, 85, 85)
_md = MarkdownIt("commonmark", {"html": False})


class SheetOptionError(ValueError):
    """An option value that cannot be used; the message is shown to the user as is."""


def parse_pages(raw: str | None) -> int:
    """The number of pages from ?pages=: 1 (default when missing or empty) to PAGES_MAX."""
    value = (raw or "").strip()
    if not value:
        return PAGES_DEFAULT
    if not value.isascii() or not value.isdigit() or not 1 <= int(value) <= PAGES_MAX:
        raise SheetOptionError(
            _("pages must be a whole number from 1 to %(max)d.", max=PAGES_MAX))
    return int(value)


def plain_text(markdown: str) -> str:
    """A demand's Markdown body as plain text: paragraphs on their own lines, • for items."""
    parts: list[str] = []
    bullet = False
    for token in _md.parse(markdown or ""):
        if token.type == "list_item_open":
            bullet = True
        elif token.type == "inline":
            text = "".join(
                " " if child.type in ("softbreak", "hardbreak") else child.content
                for child in token.children or []
            ).strip()
            if text:
                parts.append(("• " if bullet else "") + text)
            bullet = False
    return "\n".join(parts)


@dataclass(frozen=True)
class SheetContent:
    """What a signature sheet shows, before layout (hashable: rendered sheets are cached)."""

    campaign_title: str
    organisation: str
    demand_title: str
    target: str
    body: str  # plain text
    petition_url: str  # where the full text is
    sign_url: str  # the QR code: the event's short link
    event_line: str  # event name, date and code, for the footer


def sheet_content(event: Event, demand: Demand) -> SheetContent:
    """The sheet of an event for one demand."""
    campaign = demand.campaign
    date = format_date(event.date, "long")
    return SheetContent(
        campaign_title=campaign.title,
        organisation=campaign.organisation or campaign.title,
        demand_title=demand.title,
        target=demand.target,
        body=plain_text(demand.body),
        petition_url=public_url("signing.petition", slug=demand.slug),
        sign_url=public_url("events.short_link", code=event.code),
        event_line=f"{event.name} · {date} · {event.code}",
    )


def sheet_filename(event: Event, demand: Demand) -> str:
    """The download name, e.g. sheet-stall-2026-12-05-free-them.pdf."""
    return f"sheet-{event.code}-{demand.slug}.pdf"


def render_sheet(content: SheetContent, pages: int) -> bytes:
    """The sheet as PDF bytes (cached per content, pages and language)."""
    return _render_cached(content, pages, str(get_locale() or ""))


@lru_cache(maxsize=CACHE_SIZE)
def _render_cached(content: SheetContent, pages: int, _locale: str) -> bytes:
    pdf = new_pdf("a4", content.demand_title, content.organisation)
    for page in range(pages):
        pdf.add_page()
        _draw_page(pdf, content, first_row=page * ROWS_PER_PAGE + 1, page=page + 1, pages=pages)
    return finish(pdf)


def _draw_page(pdf: FPDF, content: SheetContent, *, first_row: int, page: int,
               pages: int) -> None:
    margin = 12.0
    width = pdf.w - 2 * margin
    qr_side = 34.0
    text_w = width - qr_side - 6

    # Top: the demand on the left, the QR code for signing online on the right.
    y = draw_lines(pdf, fit_lines(pdf, content.campaign_title, text_w, max_size=9, min_size=8,
                                  max_lines=1)[1], margin, margin, text_w, 9, align="L",
                   color=_GREY)
    t_size, t_lines = fit_lines(pdf, content.demand_title, text_w, max_size=16, min_size=10,
                                max_lines=3, bold=True)
    y = draw_lines(pdf, t_lines, margin, y + 1, text_w, t_size, bold=True, align="L")
    if content.target:
        target = _("To: %(target)s", target=content.target)
        y = draw_lines(pdf, fit_lines(pdf, target, text_w, max_size=10, min_size=8,
                                      max_lines=2)[1], margin, y + 1, text_w, 10, align="L")
    draw_qr(pdf, content.sign_url, pdf.w - margin - qr_side, margin, qr_side)
    cap_y = draw_lines(pdf, [_("Or scan to sign online")], pdf.w - margin - qr_side,
                       margin + qr_side, qr_side, 7)
    y = max(y, margin + qr_side * 0.55) + 2

    if content.body:
        body_w = text_w if y < cap_y else width  # beside the QR code while it is there
        b_size, b_lines = fit_lines(pdf, content.body, body_w, max_size=8.5, min_size=8.5,
                                    max_lines=BODY_MAX_LINES)
        cut = b_lines and b_lines[-1].endswith("…")
        y = draw_lines(pdf, b_lines, margin, y, body_w, b_size, align="L")
        if cut:
            more = _("Full text: %(url)s", url=content.petition_url)
            y = draw_lines(pdf, [more], margin, y, width, 8, align="L", color=_GREY)
    y = max(y, cap_y) + 1
    online = _("Sign online instead: %(url)s", url=content.sign_url)
    y = draw_lines(pdf, [online], margin, y, width,
                   fit_one_line(pdf, online, width, max_size=8.5, min_size=6, bold=True),
                   bold=True, align="L") + 1

    consent = _("Tick “Keep me updated” to receive emails about this campaign from "
                "%(organisation)s. Tick “List my name publicly” to have your first name and "
                "country shown on the petition and your name in the list handed over with it.",
                organisation=content.organisation)
    c_size, c_lines = fit_lines(pdf, consent, width, max_size=8, min_size=7, max_lines=3)
    y = draw_lines(pdf, c_lines, margin, y, width, c_size, align="L") + 2

    privacy = _("Privacy: your details are used only for this petition. The organisers type "
                "this sheet into the petition site, where name, email and postcode are stored "
                "encrypted; your email address is never shown. Nobody gets an email unless they "
                "ticked “Keep me updated”. Ask %(organisation)s to withdraw your signature at "
                "any time.", organisation=content.organisation)
    p_size, p_lines = fit_lines(pdf, privacy, width, max_size=7.5, min_size=6.5, max_lines=4)
    footer_h = line_height(7)
    privacy_top = pdf.h - margin - footer_h - 1 - len(p_lines) * line_height(p_size)
    _draw_table(pdf, margin, y, width, privacy_top - 3 - y, first_row)
    draw_lines(pdf, p_lines, margin, privacy_top, width, p_size, align="L")
    footer = _("%(event)s · sheet %(page)d of %(pages)d",
               event=clean(content.event_line), page=page, pages=pages)
    draw_lines(pdf, [footer], margin, pdf.h - margin - footer_h, width,
               fit_one_line(pdf, footer, width, max_size=7, min_size=5), color=_GREY)


def _columns() -> list[tuple[str, float]]:
    """Column headings and widths (mm, adding up to the A4 text width of 186 mm)."""
    return [
        (_("No."), 9), (_("Full name"), 47), (_("Email address (required)"), 58),
        (_("Country"), 22), (_("Postcode (optional)"), 20), (_("Keep me updated"), 15),
        (_("List my name publicly"), 15),
    ]


def _draw_table(pdf: FPDF, x0: float, y: float, width: float, height: float,
                first_row: int) -> None:
    """The numbered rows with a heading row; row height fills the space given."""
    columns = _columns()
    scale = width / sum(w for _label, w in columns)
    widths = [w * scale for _label, w in columns]
    head_h = 11.0
    row_h = min(12.0, max(8.0, (height - head_h) / ROWS_PER_PAGE))
    pdf.set_draw_color(0, 0, 0)
    pdf.set_line_width(0.3)
    x = x0
    for (label, _w), w in zip(columns, widths, strict=True):
        pdf.rect(x, y, w, head_h, style="D")
        size, lines = fit_lines(pdf, label, w - 1.5, max_size=7.5, min_size=6, max_lines=3,
                                bold=True)
        top = y + (head_h - len(lines) * line_height(size)) / 2
        draw_lines(pdf, lines, x + 0.75, top, w - 1.5, size, bold=True)
        x += w
    y += head_h
    box = 4.5
    for i in range(ROWS_PER_PAGE):
        x = x0
        for col, w in enumerate(widths):
            pdf.rect(x, y, w, row_h, style="D")
            if col == 0:
                set_font(pdf, 8)
                pdf.set_xy(x, y)
                pdf.cell(w, row_h, str(first_row + i), align="C")
            elif col >= len(widths) - 2:  # the two consent boxes
                pdf.rect(x + (w - box) / 2, y + (row_h - box) / 2, box, box, style="D")
            x += w
        y += row_h
