"""Printables of an event: its poster (short link QR code) and paper signature sheets."""

from __future__ import annotations

from flask import Response, abort, request
from flask_babel import gettext as _
from flask_login import login_required

from petition.db import get_session
from petition.events import posters, sheets
from petition.events import services as events
from petition.events.poster_routes import pdf_response, plain
from petition.models import Campaign, Event
from petition.organiser import bp, paper
from petition.organiser.access import campaign_for


def _event(slug: str, event_id: int) -> tuple[Campaign, Event]:
    """The campaign (any member) and its event, else 404."""
    campaign, _role = campaign_for(slug)
    event = events.get_event(get_session(), campaign, event_id)
    if event is None:
        abort(404)
    return campaign, event


@bp.get("/campaigns/<slug>/events/posters/<int:event_id>.pdf")
@login_required
def event_poster(slug: str, event_id: int) -> Response:
    """The event's A4/A3 poster (?size=a4|a3): its QR code is the short link /e/<code>."""
    _campaign, event = _event(slug, event_id)
    try:
        size = posters.parse_size(request.args.get("size"))
    except posters.PosterOptionError as exc:
        return plain(str(exc), 400)
    body = posters.render_poster(posters.event_poster(get_session(), event), size)
    return pdf_response(body, posters.poster_filename(event.code, size), public=False)


@bp.get("/campaigns/<slug>/events/sheets/<int:event_id>.pdf")
@login_required
def event_sheet(slug: str, event_id: int) -> Response:
    """A paper signature sheet of the event for its petition (or ?demand=), ?pages=1..20."""
    campaign, event = _event(slug, event_id)
    demand = paper.entry_demand(campaign, event, request.args.get("demand"))
    if demand is None:
        if request.args.get("demand"):
            abort(404)
        return plain(_("This event's links lead to the campaign page: choose the petition of "
                       "the sheet with ?demand=<petition address name>."), 400)
    try:
        pages = sheets.parse_pages(request.args.get("pages"))
    except sheets.SheetOptionError as exc:
        return plain(str(exc), 400)
    body = sheets.render_sheet(sheets.sheet_content(event, demand), pages)
    return pdf_response(body, sheets.sheet_filename(event, demand), public=False)
