"""Public poster routes: printable PDFs of published petitions and campaigns (thin views)."""

from __future__ import annotations

from flask import Response, abort, current_app, request

from petition.db import get_session
from petition.events import posters
from petition.events.routes import bp
from petition.extensions import limiter
from petition.links import public_url
from petition.signing import services as signing
from petition.signing.forms import clean_source

_MAX_AGE = 300  # the poster prints the live count; a few minutes old is fine


def _poster_limit() -> str:
    return str(current_app.config.get("RATELIMIT_POSTER", "30 per minute;300 per hour"))


def plain(message: str, status: int) -> Response:
    """A short text answer (errors of the PDF routes, which have no page to show them on)."""
    return Response(message + "\n", status=status, mimetype="text/plain")


def pdf_response(body: bytes, filename: str, *, public: bool) -> Response:
    """A PDF download with its file name; public ones may be cached for a few minutes."""
    response = Response(body, mimetype="application/pdf")
    response.headers.set("Content-Disposition", "attachment", filename=filename)
    if public:
        response.cache_control.public = True
        response.cache_control.max_age = _MAX_AGE
    else:
        response.cache_control.private = True
        response.cache_control.no_store = True
    return response


def _src() -> dict[str, str]:
    src = clean_source(request.args.get("src"))
    return {"src": src} if src else {}


@bp.get("/petitions/<slug>/poster.pdf")
@limiter.limit(_poster_limit)
def petition_poster(slug: str) -> Response:
    """A printable A4/A3 poster of a published petition (?size=a4|a3, optional ?src=)."""
    session = get_session()
    demand = signing.get_public_demand(session, slug)
    if demand is None:
        abort(404)
    try:
        size = posters.parse_size(request.args.get("size"))
    except posters.PosterOptionError as exc:
        return plain(str(exc), 400)
    url = public_url("signing.petition", slug=demand.slug, **_src())
    body = posters.render_poster(posters.demand_poster(session, demand, url), size)
    return pdf_response(body, posters.poster_filename(demand.slug, size), public=True)


@bp.get("/campaigns/<slug>/poster.pdf")
@limiter.limit(_poster_limit)
def campaign_poster(slug: str) -> Response:
    """A printable A4/A3 poster of a published campaign (?size=a4|a3, optional ?src=)."""
    session = get_session()
    campaign = signing.get_public_campaign(session, slug)
    if campaign is None:
        abort(404)
    try:
        size = posters.parse_size(request.args.get("size"))
    except posters.PosterOptionError as exc:
        return plain(str(exc), 400)
    url = public_url("signing.campaign", slug=campaign.slug, **_src())
    body = posters.render_poster(posters.campaign_poster(session, campaign, url), size)
    return pdf_response(body, posters.poster_filename(campaign.slug, size), public=True)
