"""Kiosk mode's services (no request access): what a kiosk signs for, who may end it, and
whether a submission repeats one already made. The views are in petition/events/kiosk.py."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import nh3
from flask_babel import gettext as _
from markupsafe import Markup
from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload

from petition import markdown
from petition.events import services
from petition.models import Campaign, CampaignMember, Demand, Event, Role, Signature
from petition.signing import services as signing

CAN_END = (Role.OWNER, Role.EDITOR)


@dataclass(frozen=True)
class KioskMarker:
    """What the session says this browser is a kiosk for."""

    event_id: int
    campaign_id: int


@dataclass(frozen=True)
class KioskTarget:
    """The kiosk's event and what can be signed there now."""

    event: Event
    campaign: Campaign
    demand: Demand | None  # the event's petition; None: the campaign's multi-sign form
    demands: list[Demand] = field(default_factory=list)  # open for signing now
    closed: str | None = None  # why nothing can be signed now


def load_target(session: Session, marker: KioskMarker) -> KioskTarget | None:
    """The kiosk's event and its open demands; None if the event is gone (or moved campaign)."""
    event = session.scalars(
        select(Event)
        .where(Event.id == marker.event_id, Event.campaign_id == marker.campaign_id)
        .options(joinedload(Event.campaign).selectinload(Campaign.demands),
                 joinedload(Event.demand))
    ).one_or_none()
    if event is None:
        return None
    campaign = event.campaign
    target = services.event_target(event)
    if target is None:
        return KioskTarget(event, campaign, None, [],
                           _("This campaign is not published, so it cannot be signed yet."))
    if target.endpoint == "signing.petition" and event.demand is not None:
        reason = signing.closed_reason(event.demand)
        return KioskTarget(event, campaign, event.demand,
                           [] if reason else [event.demand], reason)
    open_demands = [d for d in signing.public_demands(campaign)
                    if signing.closed_reason(d) is None]
    closed = None if open_demands else _("No demand of this campaign is open for signatures now.")
    return KioskTarget(event, campaign, None, open_demands, closed)


def load_target_detached(session: Session, marker: KioskMarker) -> KioskTarget | None:
    """load_target() with everything the kiosk's page and its signing read loaded (each
    demand's campaign too), so it can be used after its session is closed."""
    target = load_target(session, marker)
    if target is not None:
        for demand in (*target.demands, *([target.demand] if target.demand else [])):
            _ = demand.campaign  # from the identity map: no query
    return target


_TEXT_TAGS = {"p", "br", "strong", "em", "ul", "ol", "li", "blockquote", "h2", "h3", "h4",
              "code", "pre", "hr"}


def text_without_links(body: str) -> Markup:
    """A demand's Markdown as HTML without links: a kiosk offers no way off the form."""
    return Markup(nh3.clean(str(markdown.render(body)), tags=_TEXT_TAGS, attributes={}))  # noqa: S704


def can_end_kiosk(session: Session, organiser_id: int, campaign_id: int) -> bool:
    """True if the organiser is an owner or editor of the campaign (may end its kiosk)."""
    role = session.scalar(
        select(CampaignMember.role).where(
            CampaignMember.campaign_id == campaign_id,
            CampaignMember.organiser_id == organiser_id,
        )
    )
    return role in CAN_END


def is_repeat(
    session: Session, outcome: signing.SignOutcome, source: str, shown_at: datetime
) -> bool:
    """True if a kiosk submission found only signatures this same form already made.

    That is a second submission of one form (a double tap, a POST sent twice): it created
    nothing, and every signature it would write to was made with this event's source after
    the form was shown. A person who signed earlier and signs again on a new form is not a
    repeat and is treated as everywhere else (the confirmation email again).
    """
    if outcome.created:
        return False
    ids = outcome.pending_again + outcome.already_confirmed
    if not ids:
        return False
    rows = session.execute(
        select(Signature.created_at, Signature.source).where(Signature.id.in_(ids))
    ).all()
    return bool(rows) and all(src == source and created >= shown_at for created, src in rows)
