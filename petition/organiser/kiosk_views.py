"""Start kiosk mode for an event (owners and editors); the kiosk itself is petition.events.kiosk."""

from __future__ import annotations

from flask import abort, flash, redirect, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required
from werkzeug.wrappers import Response

from petition.db import get_session
from petition.events import kiosk, services
from petition.organiser import bp, kiosk_mode
from petition.organiser.access import CAN_EDIT, campaign_for


@bp.post("/campaigns/<slug>/events/<int:event_id>/kiosk")
@login_required
def start_kiosk(slug: str, event_id: int) -> Response:
    """Make this browser the event's kiosk (audited); the organiser is logged out here."""
    campaign, _role = campaign_for(slug, CAN_EDIT)
    session = get_session()
    event = services.get_event(session, campaign, event_id)
    if event is None:
        abort(404)
    if services.event_target(event) is None:
        flash(_("The campaign is not published yet, so a kiosk cannot collect signatures."))
        return redirect(url_for("organiser.events", slug=campaign.slug), 303)
    kiosk_mode.record_start(session, event, current_user.id)
    session.commit()
    kiosk.start_in_this_browser(event)
    return redirect(url_for("events.kiosk_form"), 303)
