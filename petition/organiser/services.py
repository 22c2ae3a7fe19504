"""Creating campaigns and demands (used by the demo loader, tests and the organiser pages)."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Literal

from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from petition.db import begin_write
from petition.models import Campaign, CampaignStatus, Demand, DemandStatus, Organiser, Role
from petition.organiser import audit
from petition.organiser.accounts import set_role
from petition.signing import counts

SLUG_MAX = 80


def slugify(text: str, max_length: int = 60) -> str:
    """A URL slug: ASCII letters, digits and dashes."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")
    return slug[:max_length].rstrip("-") or "petition"


def unique_slug(session: Session, model: type[Campaign] | type[Demand], base: str) -> str:
    """base, or base-2, base-3, ... whichever is not yet used by the model."""
    taken = set(session.scalars(select(model.slug).where(model.slug.like(f"{base}%"))))
    if base not in taken:
        return base
    n = 2
    while f"{base}-{n}" in taken:
        n += 1
    return f"{base}-{n}"


def create_campaign(
    session: Session,
    *,
    title: str,
    summary: str = "",
    body: str = "",
    organisation: str = "",
    status: CampaignStatus = CampaignStatus.DRAFT,
    slug: str | None = None,
) -> Campaign:
    """Create a campaign with a unique slug."""
    campaign = Campaign(
        title=title,
        summary=summary,
        body=body,
        organisation=organisation,
        status=status,
        slug=unique_slug(session, Campaign, slug or slugify(title)),
    )
    session.add(campaign)
    session.flush()
    return campaign


def add_demand(
    session: Session,
    campaign: Campaign,
    *,
    title: str,
    body: str = "",
    target: str = "",
    goal: int = 1000,
    status: DemandStatus = DemandStatus.DRAFT,
    opens_at: datetime | None = None,
    closes_at: datetime | None = None,
    slug: str | None = None,
) -> Demand:
    """Append a demand to the campaign, with a unique slug and its counter rows."""
    ordinal = max((d.ordinal for d in campaign.demands), default=0) + 1
    demand = Demand(
        campaign=campaign,
        ordinal=ordinal,
        title=title,
        body=body,
        target=target,
        goal=goal,
        status=status,
        opens_at=opens_at,
        closes_at=closes_at,
        slug=unique_slug(session, Demand, slug or slugify(title)),
    )
    session.add(demand)
    session.flush()
    counts.create_shards(session, demand.id)
    return demand


# --- Editing campaigns and demands, ordering and importing demands -------------------------


def _declared_length(model: type[Campaign] | type[Demand], column: str) -> int:
    """The length of a String column, so forms and checks follow the models."""
    return int(model.__table__.c[column].type.length)  # type: ignore[attr-defined]


CAMPAIGN_TITLE_MAX = _declared_length(Campaign, "title")
CAMPAIGN_SUMMARY_MAX = _declared_length(Campaign, "summary")
ORGANISATION_MAX = _declared_length(Campaign, "organisation")
DEMAND_TITLE_MAX = _declared_length(Demand, "title")
TARGET_MAX = _declared_length(Demand, "target")
BODY_MAX = 20_000
GOAL_MAX = 10_000_000
SLUG_PATTERN = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")


class EditError(ValueError):
    """A user-facing reason an edit was refused, for the form field it is about."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


@dataclass(frozen=True)
class CampaignInput:
    """The fields an organiser edits on a campaign; slug None or "" keeps (or derives) it."""

    title: str
    summary: str
    body: str
    organisation: str
    status: CampaignStatus
    slug: str | None = None


@dataclass(frozen=True)
class DemandInput:
    """The fields an organiser edits on a demand; dates are UTC days, slug as above."""

    title: str
    body: str
    target: str
    goal: int
    status: DemandStatus
    opens_on: date | None = None
    closes_on: date | None = None
    slug: str | None = None


def slug_in_use(
    session: Session, model: type[Campaign] | type[Demand], slug: str, *,
    exclude_id: int | None = None,
) -> bool:
    """True if another campaign (or demand, across all campaigns) has this slug."""
    query = select(model.id).where(model.slug == slug)
    if exclude_id is not None:
        query = query.where(model.id != exclude_id)
    return session.scalar(query.limit(1)) is not None


def slug_editable(item: Campaign | Demand) -> bool:
    """Slugs are in links and QR codes once public: editable only while nothing is public.

    A campaign is public unless it is a draft; a demand only if it and its campaign are not.
    """
    if isinstance(item, Demand):
        return DemandStatus.DRAFT in (item.status, item.campaign.status)
    return item.status == CampaignStatus.DRAFT


def _checked_slug(
    session: Session, model: type[Campaign] | type[Demand], current: Campaign | Demand | None,
    slug: str | None,
) -> str | None:
    """The new slug to set (None: keep or derive); EditError if it may not be used."""
    if not slug or (current is not None and slug == current.slug):
        return None
    if current is not None and not slug_editable(current):
        raise EditError("slug", _(
            "The web address cannot be changed once published, because links and QR codes "
            "already point to it."))
    if len(slug) > SLUG_MAX or not SLUG_PATTERN.fullmatch(slug):
        raise EditError("slug", _(
            "Use at most %(max)d lower-case letters, digits and dashes, e.g. free-them-all.",
            max=SLUG_MAX))
    if slug_in_use(session, model, slug, exclude_id=current.id if current else None):
        suggestion = unique_slug(session, model, slug[: SLUG_MAX - 4])
        raise EditError("slug", _(
            "This web address is already in use. Please choose another one, e.g. "
            "%(suggestion)s.", suggestion=suggestion))
    return slug


@contextmanager
def _slug_race_guard(session: Session) -> Iterator[None]:
    """Run the block in a savepoint; a slug taken meanwhile (UNIQUE) becomes an EditError."""
    try:
        with session.begin_nested():
            yield
    except IntegrityError as exc:
        raise EditError("slug", _(
            "This web address was taken by another change just now. Please choose another "
            "one.")) from exc


def _day_start(day: date | None, current: datetime | None) -> datetime | None:
    """00:00 UTC on the day; an unchanged day keeps the stored time."""
    if day is None:
        return None
    if current is not None and current.date() == day:
        return current
    return datetime.combine(day, time.min, tzinfo=UTC)


def new_campaign(session: Session, organiser_id: int, data: CampaignInput) -> Campaign:
    """Create a campaign from the form, make the organiser its owner, and audit it."""
    begin_write(session)
    slug = _checked_slug(session, Campaign, None, data.slug)
    with _slug_race_guard(session):
        campaign = create_campaign(
            session, title=data.title, summary=data.summary, body=data.body,
            organisation=data.organisation, status=data.status, slug=slug,
        )
    organiser = session.get(Organiser, organiser_id)
    assert organiser is not None
    set_role(session, campaign, organiser, Role.OWNER)
    audit.record(session, campaign_id=campaign.id, organiser_id=organiser_id,
                 action="campaign.create", detail={"slug": campaign.slug})
    return campaign


def update_campaign(
    session: Session, campaign: Campaign, organiser_id: int, data: CampaignInput
) -> list[str]:
    """Apply the form to the campaign; returns the changed fields (audited if any)."""
    begin_write(session)
    slug = _checked_slug(session, Campaign, campaign, data.slug)
    detail: dict[str, object] = {}
    changed = [
        name for name in ("title", "summary", "body", "organisation", "status")
        if getattr(campaign, name) != getattr(data, name)
    ]
    for name in changed:
        setattr(campaign, name, str(getattr(data, name)))
    if slug is not None:
        detail["slug"] = {"from": campaign.slug, "to": slug}
        campaign.slug = slug
        changed.append("slug")
    if changed:
        with _slug_race_guard(session):
            session.flush()
        audit.record(session, campaign_id=campaign.id, organiser_id=organiser_id,
                     action="campaign.edit", detail={"fields": changed, **detail})
    return changed


def demand_of(session: Session, campaign: Campaign, demand_slug: str) -> Demand | None:
    """The campaign's demand with this slug, or None."""
    return session.scalar(
        select(Demand).where(Demand.campaign_id == campaign.id, Demand.slug == demand_slug)
    )


def _checked_dates(
    data: DemandInput, demand: Demand | None
) -> tuple[datetime | None, datetime | None]:
    """opens_at and closes_at for the form's days; EditError unless closing is later."""
    opens_at = _day_start(data.opens_on, demand.opens_at if demand else None)
    closes_at = _day_start(data.closes_on, demand.closes_at if demand else None)
    if opens_at is not None and closes_at is not None and closes_at <= opens_at:
        raise EditError("closes_on", _("The closing date must be after the opening date."))
    return opens_at, closes_at


def new_demand(
    session: Session, campaign: Campaign, organiser_id: int, data: DemandInput
) -> Demand:
    """Append a demand to the campaign from the form, and audit it."""
    opens_at, closes_at = _checked_dates(data, None)
    begin_write(session)
    slug = _checked_slug(session, Demand, None, data.slug)
    with _slug_race_guard(session):
        demand = add_demand(
            session, campaign, title=data.title, body=data.body, target=data.target,
            goal=data.goal, status=data.status, opens_at=opens_at, closes_at=closes_at,
            slug=slug,
        )
    audit.record(session, campaign_id=campaign.id, organiser_id=organiser_id,
                 action="demand.create", detail={"demand": demand.slug})
    return demand


def update_demand(
    session: Session, demand: Demand, organiser_id: int, data: DemandInput
) -> list[str]:
    """Apply the form to the demand; returns the changed fields (audited if any)."""
    opens_at, closes_at = _checked_dates(data, demand)
    begin_write(session)
    slug = _checked_slug(session, Demand, demand, data.slug)
    values: dict[str, object] = {
        "title": data.title, "body": data.body, "target": data.target, "goal": data.goal,
        "status": str(data.status), "opens_at": opens_at, "closes_at": closes_at,
    }
    changed = [name for name, value in values.items() if getattr(demand, name) != value]
    for name in changed:
        setattr(demand, name, values[name])
    detail: dict[str, object] = {"demand": demand.slug}
    if slug is not None:
        detail["slug"] = {"from": demand.slug, "to": slug}
        demand.slug = slug
        changed.append("slug")
    if changed:
        with _slug_race_guard(session):
            session.flush()
        audit.record(session, campaign_id=demand.campaign_id, organiser_id=organiser_id,
                     action="demand.edit", detail={**detail, "fields": changed})
    return changed


def move_demand(
    session: Session, campaign: Campaign, demand: Demand, organiser_id: int,
    direction: Literal["up", "down"],
) -> bool:
    """Swap the demand with its neighbour (ordinals renumbered 1..n); False at either end."""
    begin_write(session)
    demands = list(session.scalars(
        select(Demand).where(Demand.campaign_id == campaign.id)
        .order_by(Demand.ordinal, Demand.id).with_for_update()
    ))
    position = next(i for i, d in enumerate(demands) if d.id == demand.id)
    other = position - 1 if direction == "up" else position + 1
    if not 0 <= other < len(demands):
        return False
    demands[position], demands[other] = demands[other], demands[position]
    for ordinal, item in enumerate(demands, start=1):
        if item.ordinal != ordinal:
            item.ordinal = ordinal
    session.flush()
    audit.record(session, campaign_id=campaign.id, organiser_id=organiser_id,
                 action="demand.move",
                 detail={"demand": demand.slug, "direction": direction, "to": other + 1})
    return True


def import_demands(
    session: Session, campaign: Campaign, organiser_id: int, items: Sequence[tuple[str, str]]
) -> list[Demand]:
    """Append (title, body) pairs as draft demands in order; one audit entry for them all."""
    begin_write(session)
    with _slug_race_guard(session):
        created = [
            add_demand(session, campaign, title=title, body=body, status=DemandStatus.DRAFT)
            for title, body in items
        ]
    audit.record(session, campaign_id=campaign.id, organiser_id=organiser_id,
                 action="demand.import", row_count=len(created),
                 detail={"demands": [d.slug for d in created]})
    return created
