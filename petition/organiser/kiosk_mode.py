"""Kiosk mode from the organiser's side: who started a kiosk and who ended it, in the audit log.

The kiosk itself (the sign form, the session marker) is petition.events.kiosk; these services
never touch the request. Only what succeeded is recorded: a refused exit (wrong password, not
an owner or editor) writes nothing, the login rate limit already covers it.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from petition.db import begin_write
from petition.events.kiosk_services import KioskMarker, can_end_kiosk
from petition.events.services import audit_detail
from petition.models import Campaign, Event, Organiser
from petition.organiser import audit
from petition.organiser.accounts import authenticate

START_ACTION = "kiosk.start"
EXIT_ACTION = "kiosk.exit"


def record_start(session: Session, event: Event, organiser_id: int) -> None:
    """Audit that the organiser turned a browser into the event's kiosk; the caller commits."""
    begin_write(session)
    audit.record(session, campaign_id=event.campaign_id, organiser_id=organiser_id,
                 action=START_ACTION, detail=audit_detail(event))


def end_kiosk(
    session: Session, marker: KioskMarker, email: str, password: str
) -> tuple[Organiser, Campaign | None] | None:
    """The organiser (and campaign) if this login may end the kiosk, audited; else None.

    An owner or editor of the kiosk's campaign may end it; a deleted campaign has nothing left
    to protect, so any organiser may. The caller commits.
    """
    organiser = authenticate(session, email, password)
    if organiser is None:
        return None
    campaign = session.get(Campaign, marker.campaign_id)
    if campaign is not None and not can_end_kiosk(session, organiser.id, campaign.id):
        return None
    event = session.get(Event, marker.event_id)
    detail = (audit_detail(event) if event is not None and event.campaign_id == marker.campaign_id
              else {"event_id": marker.event_id})  # the event was deleted meanwhile
    begin_write(session)
    audit.record(session, campaign_id=campaign.id if campaign is not None else None,
                 organiser_id=organiser.id, action=EXIT_ACTION, detail=detail)
    return organiser, campaign
