"""Big screen for a venue projector: live count, goal, QR code and the latest public signers.

`/petitions/<slug>/screen` and `/campaigns/<slug>/screen` show everything at load time (and
refresh every 30 s without JavaScript); static/js/screen.js polls the matching `screen.json`
every few seconds and animates the changes.

Only confirmed signers who consented to be listed publicly appear, by first name (the first
word of their name) and country; nothing else of a signer ever reaches the page. Only the rows
shown are decrypted, and the list is cached per app until a count changes (or for RECENT_TTL
seconds at most, so an erased name does not linger).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask import Response, abort, current_app, render_template, request, url_for
from sqlalchemy import select
from sqlalchemy.orm import Session

from petition.db import get_session
from petition.events import services
from petition.events.routes import bp
from petition.http import cacheable_json
from petition.links import public_url
from petition.models import Campaign, Demand, Signature, SignatureStatus, utcnow
from petition.signing import counts
from petition.signing import services as signing
from petition.signing.forms import clean_source, country_choices

RECENT_LIMIT = 5
FIRST_NAME_MAX = 24
# Rows fetched per person shown: one person may have signed several demands of a campaign.
ROWS_PER_PERSON_MAX = 10
DEMANDS_SHOWN = 6  # a campaign screen lists this many demands; the total counts them all
POLL_SECONDS_MAX = 3  # the screen must follow a confirmation within 5 s
NO_JS_REFRESH_SECONDS = 30
RECENT_TTL = 30.0
_CACHE_SIZE = 64
_CACHE_KEY = "petition.screen_recent"
_cache_lock = threading.Lock()


@dataclass(frozen=True)
class RecentSigner:
    """A signer as the big screen shows them: first name and country, nothing else."""

    first_name: str
    country: str | None

    @property
    def country_name(self) -> str:
        """The country's name (English, as in the sign form), or "" if unknown."""
        if not self.country:
            return ""
        return dict(country_choices()).get(self.country, self.country)

    @property
    def flag(self) -> str:
        """The country's flag as a Unicode emoji (two regional indicator letters), or ""."""
        code = self.country or ""
        if len(code) != 2 or not code.isascii() or not code.isalpha():
            return ""
        return "".join(chr(0x1F1E6 + ord(letter) - ord("A")) for letter in code.upper())

    def as_json(self) -> dict[str, str]:
        """The signer as in screen.json."""
        return {"first_name": self.first_name, "country": self.country or "",
                "country_name": self.country_name, "flag": self.flag}


@dataclass(frozen=True)
class _Row:
    email_key: str | None
    name_enc: bytes | None
    country: str | None
    confirmed_at: datetime | None


def first_name(full_name: str | None) -> str | None:
    """The first word of a name, at most FIRST_NAME_MAX characters; None if there is none."""
    words = (full_name or "").split()
    return words[0][:FIRST_NAME_MAX] if words else None


def _recent_rows(
    session: Session, demand_ids: Sequence[int], limit: int, created_since: datetime | None
) -> list[_Row]:
    """The latest confirmed, publicly listed signatures (one row per person, newest first)."""
    query = (
        select(Signature.email_key, Signature.name_enc, Signature.country, Signature.confirmed_at)
        .where(
            Signature.demand_id.in_(demand_ids),
            Signature.status == SignatureStatus.CONFIRMED,
            Signature.public_consent.is_(True),
        )
        .order_by(Signature.confirmed_at.desc(), Signature.id.desc())
        .limit(limit * min(len(demand_ids), ROWS_PER_PERSON_MAX))
    )
    if created_since is not None:
        query = query.where(Signature.created_at >= created_since)
    people: list[_Row] = []
    seen: set[str | None] = set()
    for row in session.execute(query):
        if row.email_key in seen:
            continue
        seen.add(row.email_key)
        people.append(_Row(row.email_key, row.name_enc, row.country, row.confirmed_at))
        if len(people) == limit:
            break
    return people


def recent_signers(
    session: Session, demand_ids: Iterable[int], *, limit: int = RECENT_LIMIT,
    now: datetime | None = None,
) -> list[RecentSigner]:
    """The last few confirmed signers of the demands who agreed to be listed publicly.

    Newest confirmation first; a person who signed several of the demands is listed once. Only
    the names shown are decrypted. The first query looks only at signatures created within two
    confirmation periods (an index range, cheap on a huge petition); a signature created
    earlier was confirmed more than one period ago, so when the window yields `limit` people
    all confirmed within the last period, nothing older can be newer. Otherwise all are searched.
    """
    ids = sorted(set(demand_ids))
    if not ids or limit <= 0:
        return []
    now = now or utcnow()
    period = timedelta(days=int(current_app.config["CONFIRM_MAX_AGE_DAYS"]))
    people = _recent_rows(session, ids, limit, created_since=now - 2 * period)
    if len(people) < limit or (people[-1].confirmed_at or now) < now - period:
        people = _recent_rows(session, ids, limit, created_since=None)
    cipher = current_app.extensions["petition.cipher"]
    shown: list[RecentSigner] = []
    for person in people:
        try:
            name = first_name(cipher.decrypt(person.name_enc, "signature.name"))
        except ValueError:  # includes InvalidTag: a row we cannot read is simply not shown
            name = None
        if name:
            shown.append(RecentSigner(name, person.country))
    return shown


def _cached_recent(session: Session, current: dict[int, counts.Count]) -> list[RecentSigner]:
    """recent_signers(), cached per app until one of the counts changes (or RECENT_TTL passes)."""
    stamp = tuple(sorted((i, c.value, c.updated_at) for i, c in current.items()))
    now = time.monotonic()
    with _cache_lock:
        cache: OrderedDict[Any, tuple[float, list[RecentSigner]]] = (
            current_app.extensions.setdefault(_CACHE_KEY, OrderedDict())
        )
        hit = cache.get(stamp)
        if hit is not None and now - hit[0] < RECENT_TTL:
            cache.move_to_end(stamp)
            return hit[1]
    recent = recent_signers(session, current)
    with _cache_lock:
        cache[stamp] = (now, recent)
        cache.move_to_end(stamp)
        while len(cache) > _CACHE_SIZE:
            cache.popitem(last=False)
    return recent


def _demand_json(demand: Demand, count: counts.Count) -> dict[str, Any]:
    return {"slug": demand.slug, "title": demand.title, "count": count.value,
            "goal": demand.goal}


def petition_data(session: Session, demand: Demand) -> dict[str, Any]:
    """What the big screen of one petition shows (also its screen.json)."""
    current = counts.get_many(session, [demand.id])
    return {
        "kind": "petition",
        "slug": demand.slug,
        "title": demand.title,
        "count": current[demand.id].value,
        "goal": demand.goal,
        "demands": [],
        "recent": [r.as_json() for r in _cached_recent(session, current)],
    }


def campaign_data(session: Session, campaign: Campaign) -> dict[str, Any]:
    """What the big screen of a campaign shows: the total over its demands and each demand."""
    demands = signing.public_demands(campaign)
    current = counts.get_many(session, [d.id for d in demands])
    return {
        "kind": "campaign",
        "slug": campaign.slug,
        "title": campaign.title,
        "count": sum(c.value for c in current.values()),
        "goal": sum(d.goal for d in demands),
        "demands": [_demand_json(d, current[d.id]) for d in demands],
        "recent": [r.as_json() for r in _cached_recent(session, current)],
    }


def link_text(session: Session, campaign: Campaign, target_url: str, src: str | None) -> str:
    """The address to show under the QR code: the event's short link when src names one."""
    event = services.get_event_by_code(session, src) if src else None
    url = target_url
    if event is not None and event.campaign_id == campaign.id:
        url = public_url("events.short_link", code=event.code)
    return url.split("://", 1)[-1]


# --- views ---------------------------------------------------------------------------------


def _poll_seconds() -> int:
    return max(1, min(int(current_app.config["COUNT_POLL_SECONDS"]), POLL_SECONDS_MAX))


def _src() -> dict[str, str]:
    src = clean_source(request.args.get("src"))
    return {"src": src} if src else {}


def _json(data: dict[str, Any]) -> Response:
    """screen.json: a shared cache may keep it for a second only, so poll interval plus that
    stays within 5 s."""
    return cacheable_json(data, max_age=1)


def _render(data: dict[str, Any], *, campaign: Campaign, kicker: str, qr_url: str,
            json_url: str, link: str) -> str:
    return render_template(
        "events/screen.html", data=data, campaign=campaign, kicker=kicker, qr_url=qr_url,
        json_url=json_url, link=link, poll=_poll_seconds(), refresh=NO_JS_REFRESH_SECONDS,
        demands_shown=DEMANDS_SHOWN,
    )


@bp.get("/petitions/<slug>/screen")
def petition_screen(slug: str) -> str:
    """A full-screen live count of one petition for a projector, with a large QR code."""
    session = get_session()
    demand = signing.get_public_demand(session, slug)
    if demand is None:
        abort(404)
    src = _src()
    return _render(
        petition_data(session, demand),
        campaign=demand.campaign,
        kicker=demand.campaign.title,
        qr_url=url_for("events.petition_qr", slug=demand.slug, fmt="svg", **src),
        json_url=url_for("events.petition_screen_json", slug=demand.slug),
        link=link_text(session, demand.campaign,
                       public_url("signing.petition", slug=demand.slug), src.get("src")),
    )


@bp.get("/petitions/<slug>/screen.json")
def petition_screen_json(slug: str) -> Response:
    """The big screen's data for one petition: count, goal and the latest public signers."""
    session = get_session()
    demand = signing.get_public_demand(session, slug)
    if demand is None:
        abort(404)
    return _json(petition_data(session, demand))


@bp.get("/campaigns/<slug>/screen")
def campaign_screen(slug: str) -> str:
    """A full-screen live count of a campaign (total and per demand) with a large QR code."""
    session = get_session()
    campaign = signing.get_public_campaign(session, slug)
    if campaign is None:
        abort(404)
    src = _src()
    return _render(
        campaign_data(session, campaign),
        campaign=campaign,
        kicker=campaign.organisation,
        qr_url=url_for("events.campaign_qr", slug=campaign.slug, fmt="svg", **src),
        json_url=url_for("events.campaign_screen_json", slug=campaign.slug),
        link=link_text(session, campaign,
                       public_url("signing.campaign", slug=campaign.slug), src.get("src")),
    )


@bp.get("/campaigns/<slug>/screen.json")
def campaign_screen_json(slug: str) -> Response:
    """The big screen's data for a campaign: total, per-demand counts and latest signers."""
    session = get_session()
    campaign = signing.get_public_campaign(session, slug)
    if campaign is None:
        abort(404)
    return _json(campaign_data(session, campaign))
