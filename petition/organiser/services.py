"""Creating campaigns and demands (used by the demo loader, tests and the organiser pages)."""

from __future__ import annotations

import re
import unicodedata
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from petition.models import Campaign, CampaignStatus, Demand, DemandStatus
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
