"""How many signatures a network may send, and the larger allowance on an event's day.

Signing is limited per client network (petition.extensions.limit_key): RATELIMIT_SIGN, by
default 60 a minute and 600 an hour. At a rally or a stall many people sign at once behind
one address (the venue's Wi-Fi, a mobile operator's shared address), right after a QR code
on a screen or a poster. Their links carry the event's code (?src=), and the form sends it
back. A signature with the code of one of the campaign's events, sent on the event's day
(or the day before or after, for time zones and events past midnight), is counted against
RATELIMIT_SIGN_EVENT instead, per event and network, so a crowd is not turned away by the
limit meant for one client. On other days, or with another campaign's code, the code
changes nothing.
"""

from __future__ import annotations

import datetime as dt

from flask import current_app, request
from flask_limiter import RequestLimit
from sqlalchemy import select
from sqlalchemy.orm import Session

from petition.db import UNAVAILABLE
from petition.extensions import limit_key
from petition.http import once_per_request
from petition.models import Event
from petition.signing import display
from petition.signing.forms import (
    SignatureForm,
    clean_source,
    note_rate_limited,
    submitted_form,
)

# Days either side of an event's date on which its allowance holds.
EVENT_DAYS_AROUND = 1


def _load_event_days(session: Session, campaign_id: int, today: dt.date) -> dict[str, int]:
    """The codes (and ids) of the campaign's events whose allowance holds today."""
    around = dt.timedelta(days=EVENT_DAYS_AROUND)
    rows = session.execute(
        select(Event.code, Event.id).where(
            Event.campaign_id == campaign_id, Event.date.between(today - around, today + around))
    )
    return {code: event_id for code, event_id in rows}


def _route_campaign_id() -> int | None:
    """The published campaign the sign POST is for (None if there is none: the view 404s)."""
    slug = (request.view_args or {}).get("slug", "")
    if request.endpoint == "signing.campaign_sign":
        campaign = display.public_campaign(slug)
        return campaign.id if campaign is not None else None
    demand = display.public_demand(slug)
    return demand.campaign_id if demand is not None else None


def _find_event() -> int | None:
    form = submitted_form()
    code = clean_source(form.get("src")) if form is not None else None
    if code is None:
        return None
    today = dt.datetime.now(dt.UTC).date()
    try:
        campaign_id = _route_campaign_id()
        if campaign_id is None:
            return None
        # The campaign's events of these days, read at most once a second per process
        # whatever codes the POSTs carry (links from newsletters carry codes of no event).
        events = display.kept(("event days", campaign_id, today),
                              lambda session: _load_event_days(session, campaign_id, today))
    except UNAVAILABLE:  # the sign itself answers 503; count it under the ordinary limit
        return None
    return (events or {}).get(code.lower())


def event_id() -> int | None:
    """The event whose allowance this sign POST counts against, or None (once per request)."""
    return once_per_request("sign_event_id", _find_event)


def sign_limit() -> str:
    """The limit for this sign POST: the event allowance on its day, else RATELIMIT_SIGN."""
    if event_id() is not None:
        return current_app.config["RATELIMIT_SIGN_EVENT"]
    return current_app.config["RATELIMIT_SIGN"]


def sign_key() -> str:
    """The key this sign POST counts under: the client's network, per event on its day."""
    event = event_id()
    return f"event-{event}-{limit_key()}" if event is not None else limit_key()


def kiosk_key(event: int) -> str:
    """A kiosk's key: its event and network, so the phones signing on the same Wi-Fi do not
    use up the stall's own signatures (and the other way round)."""
    return f"kiosk-{event}-{limit_key()}"


def note_breach(form: SignatureForm, breach: RequestLimit, *, kiosk: bool = False) -> dict[str, str]:
    """Say on the form which limit was reached and when to sign again; the answer's
    Retry-After header (the same wait, in seconds)."""
    wait = max(1, int(breach.reset_at - dt.datetime.now(dt.UTC).timestamp()) + 1)
    over_a_minute = breach.limit.get_expiry() > 60  # e.g. 600 an hour: say how long
    note_rate_limited(form, wait if over_a_minute else None, kiosk=kiosk)
    return {"Retry-After": str(wait)}
