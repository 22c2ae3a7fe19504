"""Public event routes: QR code images and short links (thin views over qr and services)."""

from __future__ import annotations

from flask import Blueprint, Response, abort, redirect, request, url_for

from petition.db import get_session
from petition.events import qr, services
from petition.links import public_url
from petition.signing import display
from petition.signing import services as signing
from petition.signing.forms import clean_source

bp = Blueprint("events", __name__)

_FORMAT = "<any(svg, png):fmt>"
_MAX_AGE = 86400


def _plain(message: str, status: int) -> Response:
    return Response(message + "\n", status=status, mimetype="text/plain")


def _qr_response(url: str, fmt: str) -> Response:
    """The QR image of url as a cacheable response: 400 for bad options, 304 if unchanged."""
    try:
        options = qr.parse_options(fmt, request.args)
    except qr.QrOptionError as exc:
        return _plain(str(exc), 400)
    tag = qr.etag(url, options)
    if request.if_none_match.contains_weak(tag):
        response = Response(status=304)
    else:
        try:
            body = qr.render(url, options)
        except qr.QrOptionError as exc:
            return _plain(str(exc), 400)
        response = Response(body, mimetype=qr.CONTENT_TYPES[fmt])
    response.set_etag(tag)
    response.cache_control.public = True
    response.cache_control.max_age = _MAX_AGE
    return response


def _src() -> dict[str, str]:
    src = clean_source(request.args.get("src"))
    return {"src": src} if src else {}


@bp.get(f"/petitions/<slug>/qr.{_FORMAT}")
def petition_qr(slug: str, fmt: str) -> Response:
    """A QR code of a published petition's public address, with an optional ?src=."""
    demand = display.public_demand(slug)
    if demand is None:
        abort(404)
    return _qr_response(public_url("signing.petition", slug=demand.slug, **_src()), fmt)


@bp.get(f"/campaigns/<slug>/qr.{_FORMAT}")
def campaign_qr(slug: str, fmt: str) -> Response:
    """A QR code of a published campaign's public address, with an optional ?src=."""
    campaign = signing.get_public_campaign(get_session(), slug)
    if campaign is None:
        abort(404)
    return _qr_response(public_url("signing.campaign", slug=campaign.slug, **_src()), fmt)


@bp.get("/e/<code>")
def short_link(code: str) -> Response:
    """An event's short link: to its petition or campaign with ?src=<code>, else the index."""
    target = services.resolve_short_link(get_session(), code)
    return redirect(url_for(target.endpoint, **target.values), 302)


@bp.get(f"/e/<code>/qr.{_FORMAT}")
def short_link_qr(code: str, fmt: str) -> Response:
    """A QR code of an event's short link (also for an unpublished campaign: posters come first)."""
    event = services.get_event_by_code(get_session(), code)
    if event is None:
        abort(404)
    return _qr_response(public_url("events.short_link", code=event.code), fmt)
