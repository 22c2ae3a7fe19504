"""Events and their source codes: creating, editing, resolving short links (no request access)."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, joinedload

from petition.db import begin_write
from petition.models import Campaign, Event
from petition.signing.forms import clean_source
from petition.signing.services import PUBLIC_CAMPAIGN, PUBLIC_DEMAND

NAME_MAX = 120
PLACE_MAX = 200
CODE_MAX = 48
CODE_PATTERN = re.compile(r"[a-z0-9-]{1,48}")


class EventError(ValueError):
    """A reason an event could not be saved; `field` names the form field it belongs to."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class EventInput:
    """What an organiser typed into the event form, already validated by the form."""

    name: str
    date: dt.date
    place: str = ""
    code: str = ""  # empty: suggested from name and date
    demand_id: int | None = None


@dataclass(frozen=True)
class Target:
    """Where a link should go: a Flask endpoint with its values (including src)."""

    endpoint: str
    values: dict[str, Any]


def normalise_code(value: str) -> str:
    """An event code as stored: trimmed and lower-cased."""
    return value.strip().lower()


def list_events(session: Session, campaign: Campaign) -> list[Event]:
    """The campaign's events, latest date first."""
    return list(
        session.scalars(
            select(Event)
            .where(Event.campaign_id == campaign.id)
            .options(joinedload(Event.demand))
            .order_by(Event.date.desc(), Event.id.desc())
        )
    )


def get_event(session: Session, campaign: Campaign, event_id: int) -> Event | None:
    """One event of the campaign, or None (also for another campaign's event)."""
    return session.scalars(
        select(Event).where(Event.id == event_id, Event.campaign_id == campaign.id)
    ).one_or_none()


def get_event_by_code(session: Session, code: str) -> Event | None:
    """The event with this code (compared lower-case), or None."""
    code = normalise_code(code)
    if not CODE_PATTERN.fullmatch(code):
        return None
    return session.scalars(
        select(Event)
        .where(Event.code == code)
        .options(joinedload(Event.campaign), joinedload(Event.demand))
    ).one_or_none()


def suggest_code(session: Session, name: str, date: dt.date) -> str:
    """A free code made of the name and date, e.g. `stall-berlin-2026-12-05`."""
    # Imported here: importing petition.organiser loads its views, which import this module.
    from petition.organiser.services import slugify

    suffix = f"-{date:%Y-%m-%d}"
    base = slugify(name, max_length=CODE_MAX - len(suffix) - 3).strip("-") + suffix
    taken = set(session.scalars(select(Event.code).where(Event.code.like(f"{base}%"))))
    code, n = base, 2
    while code in taken:
        code, n = f"{base}-{n}", n + 1
    return code


def _check(session: Session, campaign: Campaign, data: EventInput, event: Event | None) -> str:
    """Validate what the form cannot know; returns the code to store."""
    if data.demand_id is not None and data.demand_id not in {d.id for d in campaign.demands}:
        raise EventError("demand_id", _("This petition does not belong to the campaign."))
    code = normalise_code(data.code) or suggest_code(session, data.name, data.date)
    if not CODE_PATTERN.fullmatch(code):
        raise EventError(
            "code",
            _("A code can only contain a-z, 0-9 and dashes, at most %(max)d characters.",
              max=CODE_MAX),
        )
    clash = session.scalar(select(Event.id).where(Event.code == code))
    if clash is not None and (event is None or clash != event.id):
        raise EventError("code", _("This code is already used by another event."))
    return code


def _flush(session: Session) -> None:
    """Flush, turning a concurrent duplicate code into the same EventError as a known one."""
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError as exc:
        raise EventError("code", _("This code is already used by another event.")) from exc


def audit_detail(event: Event) -> dict[str, object]:
    """How the audit log names an event: id, code and name (never anything of a signer)."""
    return {"event_id": event.id, "event": event.code, "name": event.name}


def _audit(
    session: Session, event: Event, organiser_id: int | None, action: str,
    extra: dict[str, object] | None = None,
) -> None:
    """Add the event's audit entry in the caller's transaction."""
    # Imported here: importing petition.organiser loads its views, which import this module.
    from petition.organiser import audit

    audit.record(session, campaign_id=event.campaign_id, organiser_id=organiser_id,
                 action=action, detail={**audit_detail(event), **(extra or {})})


def create_event(
    session: Session, campaign: Campaign, data: EventInput, *, organiser_id: int | None
) -> Event:
    """Add an event to the campaign and audit it (raises EventError); the caller commits."""
    begin_write(session)
    code = _check(session, campaign, data, None)
    event = Event(
        campaign_id=campaign.id, name=data.name, date=data.date, place=data.place,
        code=code, demand_id=data.demand_id,
    )
    session.add(event)
    _flush(session)
    _audit(session, event, organiser_id, "event.create")
    return event


def update_event(
    session: Session, campaign: Campaign, event: Event, data: EventInput, *,
    organiser_id: int | None,
) -> list[str]:
    """Change an event's details or code; returns the changed fields (audited if any).

    Raises EventError; the caller commits.
    """
    begin_write(session)
    code = _check(session, campaign, data, event)
    values: dict[str, object] = {"name": data.name, "date": data.date, "place": data.place,
                                 "code": code, "demand_id": data.demand_id}
    changed = [name for name, value in values.items() if getattr(event, name) != value]
    before = {name: getattr(event, name) for name in ("name", "code") if name in changed}
    for name in changed:
        setattr(event, name, values[name])
    if changed:
        _flush(session)
        _audit(session, event, organiser_id, "event.edit",
               {"fields": changed, **({"from": before} if before else {})})
    return changed


def event_target(event: Event) -> Target | None:
    """Where the event's links lead now: its petition, else its campaign; None if unpublished.

    A petition that is no longer public (back to draft, deleted) falls back to the campaign
    page, so a printed poster keeps working.
    """
    campaign = event.campaign
    if campaign.status not in PUBLIC_CAMPAIGN:
        return None
    demand = event.demand
    if demand is not None and demand.status in PUBLIC_DEMAND:
        return Target("signing.petition", {"slug": demand.slug, "src": event.code})
    return Target("signing.campaign", {"slug": campaign.slug, "src": event.code})


def resolve_short_link(session: Session, raw_code: str) -> Target:
    """Where /e/<code> redirects: the event's page, else the index, always keeping the source.

    A code that names no (published) event still leads somewhere useful, never to a dead end;
    its cleaned form is kept as ?src= so the visit can still be attributed.
    """
    src = clean_source(raw_code)
    # Codes never end in "." or ":", but a link copied from a sentence may.
    event = get_event_by_code(session, src.rstrip(".:")) if src else None
    target = event_target(event) if event is not None else None
    if target is not None:
        return target
    return Target("signing.index", {"src": normalise_code(src)} if src else {})

