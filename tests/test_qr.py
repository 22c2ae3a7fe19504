"""QR code images of petitions and campaigns: content, options, caching, ETags."""

from __future__ import annotations

import io
import re
import xml.etree.ElementTree as ET

import pytest
import zxingcpp
from PIL import Image, ImageDraw

from petition.events import qr
from petition.models import CampaignStatus, DemandStatus
from tests.helpers import make_campaign

BASE = "http://petition.test"
SVG_NS = "{http://www.w3.org/2000/svg}"
_MODULE = re.compile(r"M(\d+),(\d+)H(\d+)V(\d+)H\d+z")


def decode_png(data: bytes) -> str:
    """The text of the one QR code in a PNG."""
    image = Image.open(io.BytesIO(data))
    assert image.format == "PNG"
    return _decode(image.convert("L"))


def decode_svg(data: bytes, scale: int = 8) -> str:
    """Rasterise a qrcode path SVG (one square subpath per dark module) and decode it."""
    root = ET.fromstring(data)
    assert root.tag == f"{SVG_NS}svg"
    _x, _y, width, height = (int(float(v)) for v in root.attrib["viewBox"].split())
    image = Image.new("L", (width * scale, height * scale), 255)
    draw = ImageDraw.Draw(image)
    paths = root.findall(f"{SVG_NS}path")
    assert len(paths) == 1
    modules = _MODULE.findall(paths[0].attrib["d"])
    assert modules, "no modules in the SVG path"
    for x0, y0, x1, y1 in ((int(v) for v in m) for m in modules):
        draw.rectangle((x0 * scale, y0 * scale, x1 * scale - 1, y1 * scale - 1), fill=0)
    return _decode(image)


def _decode(image: Image.Image) -> str:
    results = zxingcpp.read_barcodes(image)
    assert len(results) == 1, f"expected one QR code, found {len(results)}"
    assert results[0].format == zxingcpp.BarcodeFormat.QRCode
    return results[0].text


def decode(data: bytes, fmt: str) -> str:
    """Decode a PNG or SVG QR code."""
    return decode_png(data) if fmt == "png" else decode_svg(data)


@pytest.fixture
def campaign(db):  # noqa: ANN001, ANN201
    """An open campaign with two open demands."""
    return make_campaign(db, demands=2)


@pytest.fixture
def draws(monkeypatch):  # noqa: ANN001, ANN201
    """Count renderings: the cache is emptied and every real render is recorded."""
    qr.render.cache_clear()
    calls: list[tuple[str, qr.QrOptions]] = []
    real = qr._draw

    def counting(url: str, options: qr.QrOptions) -> bytes:
        calls.append((url, options))
        return real(url, options)

    monkeypatch.setattr(qr, "_draw", counting)
    yield calls
    qr.render.cache_clear()


@pytest.mark.parametrize("fmt", ["png", "svg"])
@pytest.mark.parametrize(
    ("src", "expected"),
    [
        (None, ""),
        ("stall-2026-12-05", "?src=stall-2026-12-05"),
        ("Rally_Berlin.1", "?src=Rally_Berlin.1"),
        ("<script>alert(1)</script>", "?src=scriptalert1script"),
        (" poster  A3 ", "?src=posterA3"),
        ("x" * 200, "?src=" + "x" * 64),
        ("!!!", ""),
    ],
)
def test_petition_qr_encodes_public_url(client, campaign, fmt, src, expected):
    demand = campaign.demands[0]
    query = {"src": src} if src is not None else {}
    response = client.get(f"/petitions/{demand.slug}/qr.{fmt}", query_string=query)
    assert response.status_code == 200
    assert decode(response.data, fmt) == f"{BASE}/petitions/{demand.slug}{expected}"


@pytest.mark.parametrize("fmt", ["png", "svg"])
def test_campaign_qr_encodes_public_url(client, campaign, fmt):
    response = client.get(f"/campaigns/{campaign.slug}/qr.{fmt}?src=flyer")
    assert response.status_code == 200
    assert decode(response.data, fmt) == f"{BASE}/campaigns/{campaign.slug}?src=flyer"


def test_qr_follows_public_url_setting(make_app, db):
    app = make_app(PUBLIC_URL="https://sign.example.org/")
    campaign = make_campaign(db, demands=1)
    response = app.test_client().get(f"/petitions/{campaign.demands[0].slug}/qr.png")
    assert decode_png(response.data) == (
        f"https://sign.example.org/petitions/{campaign.demands[0].slug}"
    )


@pytest.mark.parametrize(("fmt", "content_type"), [("svg", "image/svg+xml"), ("png", "image/png")])
def test_content_type_and_cache_headers(client, campaign, fmt, content_type):
    response = client.get(f"/campaigns/{campaign.slug}/qr.{fmt}")
    assert response.status_code == 200
    assert response.mimetype == content_type
    assert response.headers["Cache-Control"] in ("public, max-age=86400", "max-age=86400, public")
    etag = response.headers["ETag"]
    assert re.fullmatch(r'"[0-9a-f]{32}"', etag), "a strong ETag"


def test_png_size_is_pixels_per_module(client, campaign):
    slug = campaign.demands[0].slug
    widths = {}
    for size in (2, 10, 40):
        response = client.get(f"/petitions/{slug}/qr.png?size={size}")
        assert response.status_code == 200
        image = Image.open(io.BytesIO(response.data))
        assert image.width == image.height
        widths[size] = image.width
        assert decode_png(response.data) == f"{BASE}/petitions/{slug}"
    modules = widths[2] // 2
    assert widths[10] == modules * 10 and widths[40] == modules * 40
    assert client.get(f"/petitions/{slug}/qr.png").data == \
        client.get(f"/petitions/{slug}/qr.png?size=10").data


@pytest.mark.parametrize("ec", ["L", "M", "Q", "H", "h", " q "])
@pytest.mark.parametrize("fmt", ["png", "svg"])
def test_error_correction_levels(client, campaign, ec, fmt):
    response = client.get(f"/campaigns/{campaign.slug}/qr.{fmt}", query_string={"ec": ec})
    assert response.status_code == 200
    assert decode(response.data, fmt) == f"{BASE}/campaigns/{campaign.slug}"


def test_higher_error_correction_makes_a_denser_code(client, campaign):
    url = f"/campaigns/{campaign.slug}/qr.png?size=2&src=a-fairly-long-source-code-2026"
    low = Image.open(io.BytesIO(client.get(url + "&ec=L").data)).width
    high = Image.open(io.BytesIO(client.get(url + "&ec=H").data)).width
    assert high > low


@pytest.mark.parametrize("fmt", ["png", "svg"])
@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("size=1", "size must be a whole number from 2 to 40"),
        ("size=41", "size must be a whole number from 2 to 40"),
        ("size=0", "size must be a whole number from 2 to 40"),
        ("size=-5", "size must be a whole number from 2 to 40"),
        ("size=10.5", "size must be a whole number from 2 to 40"),
        ("size=abc", "size must be a whole number from 2 to 40"),
        ("size=1e3", "size must be a whole number from 2 to 40"),
        ("size=%EF%BC%91%EF%BC%90", "size must be a whole number from 2 to 40"),  # fullwidth 10
        ("size=99999999999999999999", "size must be a whole number from 2 to 40"),
        ("size=%00", "size must be a whole number from 2 to 40"),
        ("ec=X", "ec must be one of L, M, Q or H"),
        ("ec=MM", "ec must be one of L, M, Q or H"),
        ("ec=%FF", "ec must be one of L, M, Q or H"),
    ],
)
def test_bad_options_are_400_with_a_clear_message(client, campaign, draws, fmt, query, message):
    response = client.get(f"/petitions/{campaign.demands[0].slug}/qr.{fmt}?{query}")
    assert response.status_code == 400
    assert response.mimetype == "text/plain"
    assert message in response.text
    assert "ETag" not in response.headers
    assert draws == []


@pytest.mark.parametrize("query", ["size=", "ec=", "size=&ec=", "unknown=1"])
def test_empty_options_take_the_defaults(client, campaign, query):
    slug = campaign.demands[0].slug
    response = client.get(f"/petitions/{slug}/qr.png?{query}")
    assert response.status_code == 200
    assert response.headers["ETag"] == client.get(f"/petitions/{slug}/qr.png").headers["ETag"]


def test_png_wider_than_the_pixel_cap_is_refused(client, campaign, monkeypatch):
    monkeypatch.setattr(qr, "MAX_PNG_SIDE", 300)
    qr.render.cache_clear()
    slug = campaign.demands[0].slug
    assert client.get(f"/petitions/{slug}/qr.png?size=2").status_code == 200
    response = client.get(f"/petitions/{slug}/qr.png?size=40")
    assert response.status_code == 400
    assert "more than the 300 allowed" in response.text
    # A vector image has no pixel size to cap.
    assert client.get(f"/petitions/{slug}/qr.svg?size=40").status_code == 200


def test_largest_real_image_stays_under_the_cap(client, db):
    """The longest slug and source at size 40 and ec=H still renders (and is capped)."""
    from petition.organiser.services import add_demand, create_campaign

    campaign = create_campaign(db, title="C", status=CampaignStatus.OPEN)
    demand = add_demand(db, campaign, title="D", slug="d" * 80, status=DemandStatus.OPEN)
    db.commit()
    response = client.get(f"/petitions/{demand.slug}/qr.png?size=40&ec=H&src={'s' * 64}")
    assert response.status_code == 200
    image = Image.open(io.BytesIO(response.data))
    assert image.width <= qr.MAX_PNG_SIDE
    assert image.width * image.height <= qr.MAX_PNG_SIDE**2
    assert decode_png(response.data).endswith("?src=" + "s" * 64)


def test_images_are_rendered_once_and_cached(client, campaign, draws):
    slug = campaign.demands[0].slug
    first = client.get(f"/petitions/{slug}/qr.png?size=12&ec=Q&src=stall")
    second = client.get(f"/petitions/{slug}/qr.png?size=12&ec=Q&src=stall")
    assert first.status_code == second.status_code == 200
    assert first.data == second.data
    assert len(draws) == 1
    url, options = draws[0]
    assert url == f"{BASE}/petitions/{slug}?src=stall"
    assert options == qr.QrOptions(fmt="png", size=12, ec="Q")
    assert qr.render.cache_info().hits == 1

    # Another format, option or source is another image; the cleaned source is the same one.
    client.get(f"/petitions/{slug}/qr.svg?ec=Q&src=stall")
    client.get(f"/petitions/{slug}/qr.png?size=12&ec=H&src=stall")
    client.get(f"/petitions/{slug}/qr.png?size=12&ec=Q&src=other")
    client.get(f"/petitions/{slug}/qr.png?size=12&ec=q&src=st<a>ll")
    assert len(draws) == 4


def test_svg_ignores_size(client, campaign, draws):
    slug = campaign.demands[0].slug
    small = client.get(f"/petitions/{slug}/qr.svg?size=2")
    large = client.get(f"/petitions/{slug}/qr.svg?size=40")
    assert small.data == large.data
    assert small.headers["ETag"] == large.headers["ETag"]
    assert len(draws) == 1


def test_cache_is_bounded():
    assert qr.render.cache_info().maxsize == qr.CACHE_SIZE


def test_etag_and_304(client, campaign, draws):
    path = f"/petitions/{campaign.demands[0].slug}/qr.png?src=stall"
    first = client.get(path)
    etag = first.headers["ETag"]
    qr.render.cache_clear()
    draws.clear()
    again = client.get(path, headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.data == b""
    assert again.headers["ETag"] == etag
    assert "max-age=86400" in again.headers["Cache-Control"]
    assert draws == [], "a 304 needs no rendering"
    assert client.get(path, headers={"If-None-Match": f'"other", {etag}'}).status_code == 304
    assert client.get(path, headers={"If-None-Match": '"other"'}).status_code == 200


def test_etag_differs_by_url_options_and_format(client, campaign):
    slug = campaign.demands[0].slug
    paths = [
        f"/petitions/{slug}/qr.png",
        f"/petitions/{slug}/qr.svg",
        f"/petitions/{slug}/qr.png?size=11",
        f"/petitions/{slug}/qr.png?ec=H",
        f"/petitions/{slug}/qr.png?src=a",
        f"/petitions/{campaign.demands[1].slug}/qr.png",
        f"/campaigns/{campaign.slug}/qr.png",
    ]
    etags = {client.get(p).headers["ETag"] for p in paths}
    assert len(etags) == len(paths)


def test_etag_of_one_image_does_not_match_another(client, campaign):
    slug = campaign.demands[0].slug
    etag = client.get(f"/petitions/{slug}/qr.png?ec=L").headers["ETag"]
    assert client.get(f"/petitions/{slug}/qr.png?ec=H",
                      headers={"If-None-Match": etag}).status_code == 200


@pytest.mark.parametrize("fmt", ["png", "svg"])
def test_unknown_and_draft_are_404(client, db, fmt):
    draft = make_campaign(db, title="Draft campaign", demands=1, status=CampaignStatus.DRAFT)
    open_ = make_campaign(db, title="Open campaign", demands=1, demand_status=DemandStatus.DRAFT)
    for path in (
        f"/petitions/no-such-petition/qr.{fmt}",
        f"/campaigns/no-such-campaign/qr.{fmt}",
        f"/campaigns/{draft.slug}/qr.{fmt}",
        f"/petitions/{draft.demands[0].slug}/qr.{fmt}",
        f"/petitions/{open_.demands[0].slug}/qr.{fmt}",
    ):
        assert client.get(path).status_code == 404, path
        assert client.get(path + "?size=999").status_code == 404, path


def test_other_formats_are_404(client, campaign):
    assert client.get(f"/campaigns/{campaign.slug}/qr.gif").status_code == 404
    assert client.get(f"/campaigns/{campaign.slug}/qr.SVG").status_code == 404


def test_closed_campaign_still_has_qr_codes(client, db):
    campaign = make_campaign(db, demands=1, status=CampaignStatus.CLOSED)
    assert client.get(f"/campaigns/{campaign.slug}/qr.svg").status_code == 200


def test_petition_page_shows_qr_code_and_downloads(client, campaign):
    demand = campaign.demands[0]
    page = client.get(f"/petitions/{demand.slug}")
    assert page.status_code == 200
    share = page.text[page.text.index('id="share-heading"'):]
    img = re.search(r'<img src="([^"]+)"[^>]*alt="([^"]+)"', share)
    assert img, "no QR image in the Share section"
    assert img.group(2) == "QR code linking to this petition"
    image = client.get(img.group(1))
    assert image.mimetype == "image/svg+xml"
    assert decode_svg(image.data) == f"{BASE}/petitions/{demand.slug}"
    downloads = re.findall(r'<a href="([^"]+)" download="[^"]+">', share)
    assert len(downloads) == 2
    for path, fmt in zip(downloads, ("svg", "png"), strict=True):
        response = client.get(path.replace("&amp;", "&"))
        assert response.status_code == 200
        assert decode(response.data, fmt) == f"{BASE}/petitions/{demand.slug}"
    assert "style=" not in page.text
