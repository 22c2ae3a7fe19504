"""QR codes for petition, campaign and short links: options, ETags and cached rendering.

Options (query parameters of the qr.svg / qr.png routes):

- ``size``: the module ("box") size of a PNG in pixels, a whole number from 2 to 40, default 10.
  A PNG is ``(modules + 8) * size`` pixels wide (4 modules of quiet zone on each side); an
  image wider than MAX_PNG_SIDE pixels is refused. An SVG is a vector drawing that scales
  freely, so ``size`` is checked but does not change it.
- ``ec``: error correction level L, M, Q or H (7, 15, 25, 30 % of the code may be damaged),
  default M; letters are case-insensitive.

A missing or empty option takes its default; anything else that is not valid is a QrOptionError
(the views answer 400). Images are rendered once per (url, format, options) and kept in a
bounded in-process LRU cache.
"""

from __future__ import annotations

import hashlib
import io
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache

import qrcode
import qrcode.constants
import qrcode.image.svg
from flask_babel import gettext as _
from qrcode.image.pil import PilImage

FORMATS = ("svg", "png")
CONTENT_TYPES = {"svg": "image/svg+xml", "png": "image/png"}
SIZE_MIN, SIZE_MAX, SIZE_DEFAULT = 2, 40, 10
EC_DEFAULT = "M"
BORDER = 4  # the quiet zone the QR specification asks for, in modules
MAX_PNG_SIDE = 4000  # pixels: at most 16 million pixels per image
CACHE_SIZE = 256
# Part of every ETag: bump it when the drawing changes, so clients fetch the new image.
RENDER_VERSION = "1"

_EC_LEVELS = {
    "L": qrcode.constants.ERROR_CORRECT_L,
    "M": qrcode.constants.ERROR_CORRECT_M,
    "Q": qrcode.constants.ERROR_CORRECT_Q,
    "H": qrcode.constants.ERROR_CORRECT_H,
}
_DIGITS = re.compile(r"[0-9]{1,4}")


class QrOptionError(ValueError):
    """An option value that cannot be used; the message is shown to the user as is."""


@dataclass(frozen=True)
class QrOptions:
    """Validated rendering options; `size` is always SIZE_DEFAULT for SVG."""

    fmt: str
    size: int = SIZE_DEFAULT
    ec: str = EC_DEFAULT


def parse_options(fmt: str, args: Mapping[str, str]) -> QrOptions:
    """Validate the `size` and `ec` query parameters for a format (raises QrOptionError)."""
    if fmt not in FORMATS:
        raise QrOptionError(_("The image format must be svg or png."))
    raw_size = (args.get("size") or "").strip()
    size = SIZE_DEFAULT
    if raw_size:
        if not _DIGITS.fullmatch(raw_size) or not SIZE_MIN <= int(raw_size) <= SIZE_MAX:
            raise QrOptionError(
                _("size must be a whole number from %(min)d to %(max)d (pixels per module).",
                  min=SIZE_MIN, max=SIZE_MAX)
            )
        size = int(raw_size)
    ec = (args.get("ec") or "").strip().upper() or EC_DEFAULT
    if ec not in _EC_LEVELS:
        raise QrOptionError(_("ec must be one of L, M, Q or H (error correction level)."))
    if fmt == "svg":
        size = SIZE_DEFAULT  # a vector image: one rendering (and one ETag) for every size
    return QrOptions(fmt=fmt, size=size, ec=ec)


def etag(url: str, options: QrOptions) -> str:
    """A strong ETag for the image of url with options; known without rendering it."""
    key = "\n".join((RENDER_VERSION, url, options.fmt, str(options.size), options.ec))
    return hashlib.sha256(key.encode()).hexdigest()[:32]


@lru_cache(maxsize=CACHE_SIZE)
def render(url: str, options: QrOptions) -> bytes:
    """The QR code image of url (cached; raises QrOptionError if the PNG would be too big)."""
    return _draw(url, options)


def _draw(url: str, options: QrOptions) -> bytes:
    """Render without caching (tests count the calls to this function)."""
    code = qrcode.QRCode(
        error_correction=_EC_LEVELS[options.ec], box_size=options.size, border=BORDER
    )
    code.add_data(url)
    code.make(fit=True)
    out = io.BytesIO()
    if options.fmt == "svg":
        code.make_image(image_factory=qrcode.image.svg.SvgPathFillImage).save(out)
        return out.getvalue()
    side = (code.modules_count + 2 * BORDER) * options.size
    if side > MAX_PNG_SIDE:
        raise QrOptionError(
            _("This image would be %(side)d pixels wide, more than the %(max)d allowed; "
              "choose a smaller size.", side=side, max=MAX_PNG_SIDE)
        )
    code.make_image(image_factory=PilImage).save(out, format="PNG", optimize=True)
    return out.getvalue()
