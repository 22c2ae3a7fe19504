"""Posters and paper signature sheets: PDFs parsed back (pypdf) and their QR codes decoded."""

from __future__ import annotations

import datetime as dt
import io
import re
import subprocess

import pypdf
import pytest
import zxingcpp
from PIL import Image, ImageDraw

from petition.events import posters, services
from petition.models import DemandStatus
from petition.signing import counts
from tests.helpers import login, make_campaign, make_organiser

BASE = "http://petition.test"
A4 = (595.28, 841.89)
A3 = (841.89, 1190.55)
_OPS = re.compile(
    rb"(?m)^(?:(?P<rgb>[\d.]+ [\d.]+ [\d.]+) rg|(?P<gray>[\d.]+) g"
    rb"|(?P<rect>-?[\d.]+ -?[\d.]+ -?[\d.]+ -?[\d.]+) re f)$"
)


def read_pdf(data: bytes) -> pypdf.PdfReader:
    """A parsed PDF (asserts it is one)."""
    assert data.startswith(b"%PDF-")
    return pypdf.PdfReader(io.BytesIO(data))


def page_text(data: bytes, page: int = 0) -> str:
    """The text of a page with all whitespace runs as single spaces."""
    return " ".join(read_pdf(data).pages[page].extract_text().split())


def decode_page_qr(data: bytes, page: int = 0, scale: float = 3.0) -> str:
    """Rasterise the filled rectangles of a page (the vector QR code) and decode the QR code.

    The content stream is read in order, keeping the current fill colour, so the white
    background square of the code stays white.
    """
    pdf_page = read_pdf(data).pages[page]
    width, height = float(pdf_page.mediabox.width), float(pdf_page.mediabox.height)
    image = Image.new("L", (int(width * scale), int(height * scale)), 255)
    draw = ImageDraw.Draw(image)
    dark = True
    for match in _OPS.finditer(pdf_page.get_contents().get_data()):
        if match["rgb"]:
            dark = sum(float(v) for v in match["rgb"].split()) < 1.5
        elif match["gray"]:
            dark = float(match["gray"]) < 0.5
        else:
            x, y, w, h = (float(v) for v in match["rect"].split())
            x0, x1 = sorted((x, x + w))
            y0, y1 = sorted((height - y, height - (y + h)))
            draw.rectangle((x0 * scale, y0 * scale, x1 * scale - 1, y1 * scale - 1),
                           fill=0 if dark else 255)
    results = zxingcpp.read_barcodes(image)
    assert len(results) == 1, f"expected one QR code, found {len(results)}"
    assert results[0].format == zxingcpp.BarcodeFormat.QRCode
    return results[0].text


def page_size(data: bytes, page: int = 0) -> tuple[float, float]:
    """A page's width and height in points."""
    box = read_pdf(data).pages[page].mediabox
    return float(box.width), float(box.height)


@pytest.fixture
def campaign(db):  # noqa: ANN001, ANN201
    """An open campaign with two open demands."""
    return make_campaign(db, demands=2)


@pytest.fixture
def event(db, campaign):  # noqa: ANN001, ANN201
    """An event whose links lead to the first demand."""
    made = services.create_event(db, campaign, services.EventInput(
        name="Stall at Alexanderplatz", date=dt.date(2026, 12, 5), code="stall-alex",
        demand_id=campaign.demands[0].id), organiser_id=None)
    db.commit()
    return made


@pytest.fixture
def owner(client, db, campaign):  # noqa: ANN001, ANN201
    """The client logged in as the campaign's owner."""
    make_organiser(db, campaign=campaign, role="owner")
    login(client)
    return client


@pytest.fixture(autouse=True)
def _fresh_caches():  # noqa: ANN202
    posters._render_cached.cache_clear()
    yield
    posters._render_cached.cache_clear()


def _pdf(response) -> bytes:  # noqa: ANN001
    assert response.status_code == 200, response.text
    assert response.mimetype == "application/pdf"
    return response.data


# --- public posters -----------------------------------------------------------------------


def test_petition_poster_a4(client, db, campaign):
    demand = campaign.demands[0]
    counts.add(db, demand.id, 1234)
    db.commit()
    response = client.get(f"/petitions/{demand.slug}/poster.pdf")
    data = _pdf(response)
    disposition = response.headers["Content-Disposition"]
    assert disposition.startswith("attachment")
    assert f"poster-{demand.slug}-a4.pdf" in disposition
    assert len(read_pdf(data).pages) == 1
    assert page_size(data) == pytest.approx(A4, abs=0.1)
    text = page_text(data)
    assert demand.title in text
    assert campaign.title in text
    assert "To: Someone" in text
    url = f"{BASE}/petitions/{demand.slug}"
    assert url in text
    assert "1,234 signatures so far" in text
    assert "Goal: 100 signatures" in text
    assert decode_page_qr(data) == url


@pytest.mark.parametrize("size", ["a3", "A3", " a3 "])
def test_a3_poster_is_a3(client, campaign, size):
    demand = campaign.demands[0]
    response = client.get(f"/petitions/{demand.slug}/poster.pdf", query_string={"size": size})
    data = _pdf(response)
    assert page_size(data) == pytest.approx(A3, abs=0.1)
    assert f"poster-{demand.slug}-a3.pdf" in response.headers["Content-Disposition"]
    assert demand.title in page_text(data)
    assert decode_page_qr(data, scale=2) == f"{BASE}/petitions/{demand.slug}"


@pytest.mark.parametrize("size", ["a5", "letter", "a4a3", "4", "a4'--", "ä4", "a" * 500])
def test_bad_size_is_400(client, campaign, size):
    response = client.get(f"/petitions/{campaign.demands[0].slug}/poster.pdf",
                          query_string={"size": size})
    assert response.status_code == 400
    assert response.mimetype == "text/plain"
    assert "size must be a4 or a3" in response.text


def test_poster_keeps_a_clean_source(client, campaign):
    demand = campaign.demands[0]
    data = _pdf(client.get(f"/petitions/{demand.slug}/poster.pdf?src=flyer<script>"))
    assert decode_page_qr(data) == f"{BASE}/petitions/{demand.slug}?src=flyerscript"


def test_campaign_poster(client, db, campaign):
    counts.add(db, campaign.demands[0].id, 3)
    counts.add(db, campaign.demands[1].id, 4)
    db.commit()
    response = client.get(f"/campaigns/{campaign.slug}/poster.pdf?size=a4")
    data = _pdf(response)
    assert f"poster-{campaign.slug}-a4.pdf" in response.headers["Content-Disposition"]
    text = page_text(data)
    assert campaign.title in text
    assert f"{BASE}/campaigns/{campaign.slug}" in text
    assert "7 signatures so far" in text
    assert decode_page_qr(data) == f"{BASE}/campaigns/{campaign.slug}"


def test_long_title_shrinks_and_wraps(client, db, campaign):
    demand = campaign.demands[0]
    demand.title = ("Release every journalist, lawyer and human rights defender detained for "
                    "peaceful work, end the surveillance of their families abroad and allow "
                    "independent observers into all places of detention now")
    db.commit()
    short = _pdf(client.get(f"/petitions/{campaign.demands[1].slug}/poster.pdf"))
    long = _pdf(client.get(f"/petitions/{demand.slug}/poster.pdf"))
    assert len(read_pdf(long).pages) == 1
    assert demand.title in page_text(long)

    def headline_size(data: bytes) -> float:
        sizes = re.findall(rb"/F\d+ ([\d.]+) Tf", read_pdf(data).pages[0].get_contents().get_data())
        return max(float(s) for s in sizes)

    assert headline_size(long) < headline_size(short)
    assert decode_page_qr(long) == f"{BASE}/petitions/{demand.slug}"


def test_unicode_title(client, db, campaign):
    demand = campaign.demands[0]
    demand.title = "Ayşe Yılmaz için adalet: Ğ ş İ ı"
    db.commit()
    assert demand.title in page_text(_pdf(client.get(f"/petitions/{demand.slug}/poster.pdf")))


def test_right_to_left_title_renders(client, db, campaign):
    demand = campaign.demands[0]
    demand.title = "ئۇيغۇر ژۇرنالىستلارنى قويۇپ بېرىڭ"  # Uyghur: shaped with HarfBuzz
    db.commit()
    data = _pdf(client.get(f"/petitions/{demand.slug}/poster.pdf"))
    assert len(read_pdf(data).pages) == 1
    assert decode_page_qr(data) == f"{BASE}/petitions/{demand.slug}"


def test_unpublished_petition_has_no_poster(client, db):
    draft = make_campaign(db, title="Draft", demand_status=DemandStatus.DRAFT)
    assert client.get(f"/petitions/{draft.demands[0].slug}/poster.pdf").status_code == 404
    assert client.get("/campaigns/nope/poster.pdf").status_code == 404


def test_same_poster_is_rendered_once(client, campaign, monkeypatch):
    calls = []
    real = posters._draw_poster
    monkeypatch.setattr(posters, "_draw_poster",
                        lambda *args: calls.append(args) or real(*args))
    path = f"/petitions/{campaign.demands[0].slug}/poster.pdf"
    first, second = client.get(path), client.get(path)
    assert first.data == second.data
    assert len(calls) == 1
    assert "max-age" in first.headers["Cache-Control"]


def test_printed_poster_scans(client, campaign, tmp_path):
    """Render the page like a printer would (poppler) and scan the result."""
    data = _pdf(client.get(f"/petitions/{campaign.demands[0].slug}/poster.pdf"))
    (tmp_path / "poster.pdf").write_bytes(data)
    subprocess.run(["pdftoppm", "-r", "60", "-png", "-singlefile", str(tmp_path / "poster.pdf"),
                    str(tmp_path / "poster")], capture_output=True, check=True, timeout=60)
    with Image.open(tmp_path / "poster.png") as image:
        results = zxingcpp.read_barcodes(image)
    assert [r.text for r in results] == [f"{BASE}/petitions/{campaign.demands[0].slug}"]


# --- event posters and sheets (organisers) --------------------------------------------------


def test_event_poster_encodes_short_link(owner, campaign, event):
    path = f"/organiser/campaigns/{campaign.slug}/events/posters/{event.id}.pdf"
    response = owner.get(path, query_string={"size": "a3"})
    data = _pdf(response)
    assert "poster-stall-alex-a3.pdf" in response.headers["Content-Disposition"]
    assert "no-store" in response.headers["Cache-Control"]
    assert page_size(data) == pytest.approx(A3, abs=0.1)
    text = page_text(data)
    assert f"{BASE}/e/stall-alex" in text
    assert campaign.demands[0].title in text
    assert decode_page_qr(data, scale=2) == f"{BASE}/e/stall-alex"
    assert owner.get(path, query_string={"size": "b4"}).status_code == 400


def test_campaign_event_poster(owner, db, campaign):
    event = services.create_event(db, campaign, services.EventInput(
        name="Rally", date=dt.date(2026, 12, 6), code="rally"), organiser_id=None)
    db.commit()
    data = _pdf(owner.get(f"/organiser/campaigns/{campaign.slug}/events/posters/{event.id}.pdf"))
    assert campaign.title in page_text(data)
    assert decode_page_qr(data) == f"{BASE}/e/rally"


def test_sheet(owner, db, campaign, event):
    demand = campaign.demands[0]
    demand.body = "We call on the government to **act**.\n\n- Free them\n- Stop it"
    db.commit()
    response = owner.get(f"/organiser/campaigns/{campaign.slug}/events/sheets/{event.id}.pdf")
    data = _pdf(response)
    assert f"sheet-stall-alex-{demand.slug}.pdf" in response.headers["Content-Disposition"]
    assert len(read_pdf(data).pages) == 1
    assert page_size(data) == pytest.approx(A4, abs=0.1)
    text = page_text(data)
    for expected in (demand.title, "To: Someone", "We call on the government to act.",
                     "• Free them", "Full name", "Email address", "Country",
                     "Keep me updated", "List my name publicly", "Privacy:",
                     f"Sign online instead: {BASE}/e/stall-alex", "Stall at Alexanderplatz"):
        assert expected in text, expected
    numbers = re.findall(r"\b(\d{1,2})\b", text)
    assert all(str(n) in numbers for n in range(1, 16))
    assert decode_page_qr(data) == f"{BASE}/e/stall-alex"


def test_sheet_pages_number_on(owner, campaign, event):
    path = f"/organiser/campaigns/{campaign.slug}/events/sheets/{event.id}.pdf"
    data = _pdf(owner.get(path, query_string={"pages": "2"}))
    assert len(read_pdf(data).pages) == 2
    second = page_text(data, 1)
    assert "30" in second.split() and "16" in second.split()
    assert "sheet 2 of 2" in second
    for bad in ("0", "21", "two", "-1", "1.5"):
        response = owner.get(path, query_string={"pages": bad})
        assert response.status_code == 400
        assert "pages must be a whole number from 1 to 20" in response.text


def test_sheet_of_campaign_event_needs_a_demand(owner, db, campaign):
    event = services.create_event(db, campaign, services.EventInput(
        name="Rally", date=dt.date(2026, 12, 6), code="rally"), organiser_id=None)
    db.commit()
    path = f"/organiser/campaigns/{campaign.slug}/events/sheets/{event.id}.pdf"
    assert owner.get(path).status_code == 400
    assert owner.get(path, query_string={"demand": "nope"}).status_code == 404
    data = _pdf(owner.get(path, query_string={"demand": campaign.demands[1].slug}))
    assert campaign.demands[1].title in page_text(data)


def test_events_page_links_printables(owner, campaign, event):
    page = owner.get(f"/organiser/campaigns/{campaign.slug}/events").text
    base = f"/organiser/campaigns/{campaign.slug}/events"
    assert f"{base}/posters/{event.id}.pdf?size=a4" in page
    assert f"{base}/posters/{event.id}.pdf?size=a3" in page
    assert f"{base}/sheets/{event.id}.pdf" in page
    assert f"{base}/{event.id}/paper" in page


def test_petition_page_links_posters(client, campaign):
    slug = campaign.demands[0].slug
    page = client.get(f"/petitions/{slug}").text
    assert f"/petitions/{slug}/poster.pdf?size=a4" in page
    assert f"/petitions/{slug}/poster.pdf?size=a3" in page


@pytest.mark.parametrize("role", ["viewer", "editor"])
def test_members_may_print(client, db, campaign, event, role):
    make_organiser(db, campaign=campaign, role=role)
    login(client)
    base = f"/organiser/campaigns/{campaign.slug}/events"
    _pdf(client.get(f"{base}/posters/{event.id}.pdf"))
    _pdf(client.get(f"{base}/sheets/{event.id}.pdf"))


def test_non_members_and_anonymous_cannot_print(client, db, campaign, event):
    base = f"/organiser/campaigns/{campaign.slug}/events"
    assert client.get(f"{base}/posters/{event.id}.pdf").status_code in (302, 303)
    make_organiser(db, email="other@example.org")
    login(client, "other@example.org")
    assert client.get(f"{base}/posters/{event.id}.pdf").status_code == 404
    assert client.get(f"{base}/sheets/{event.id}.pdf").status_code == 404
    other = make_campaign(db, title="Other")
    assert client.get(f"/organiser/campaigns/{other.slug}/events/posters/{event.id}.pdf"
                      ).status_code == 404
