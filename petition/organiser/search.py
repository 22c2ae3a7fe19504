"""Searching a campaign's signatures: filters on hashes, never decrypting the whole table."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from cryptography.exceptions import InvalidTag
from flask_babel import gettext as _
from sqlalchemy import func, select
from sqlalchemy.orm import Session, joinedload
from sqlalchemy.sql.elements import ColumnElement

from petition.crypto import DataCipher
from petition.models import Campaign, Demand, Signature
from petition.organiser.moderation import PER_PAGE, campaign_demand_ids, cipher
from petition.organiser.stats import country_name


def mask_email(email: str | None) -> str | None:
    """An address with its local part hidden but for the first character: a***@example.org."""
    if not email:
        return None
    local, sep, domain = email.rpartition("@")
    if not sep:
        return email[:1] + "***"
    return f"{local[:1]}***@{domain}"


# --- search -------------------------------------------------------------------------------


@dataclass(frozen=True)
class SearchFilter:
    """What the signature list is filtered by; every field is optional."""

    email: str | None = None
    source: str | None = None
    country: str | None = None
    date_from: date | None = None
    date_to: date | None = None  # inclusive: the whole day
    status: str | None = None
    demand_id: int | None = None
    ip_hash: str | None = None


@dataclass(frozen=True)
class SignatureRow:
    """One signature as the organiser sees it: decrypted name, masked email."""

    id: int
    demand: Demand
    name: str | None
    email: str | None
    country: str | None
    country_name: str
    source: str | None
    status: str
    ip_hash: str | None
    created_at: datetime
    confirmed_at: datetime | None


@dataclass(frozen=True)
class Page:
    """One page of search results."""

    rows: list[SignatureRow]
    total: int
    page: int
    per_page: int

    @property
    def pages(self) -> int:
        """Number of pages (at least 1)."""
        return max(1, math.ceil(self.total / self.per_page))


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def search_conditions(campaign: Campaign, filt: SearchFilter) -> list[ColumnElement[bool]]:
    """SQL conditions for a search, always limited to the campaign's demands."""
    conditions: list[ColumnElement[bool]] = [
        Signature.demand_id.in_(campaign_demand_ids(campaign))
    ]
    if filt.email:
        conditions.append(Signature.email_key == cipher().email_key(filt.email))
    if filt.source:
        conditions.append(Signature.source == filt.source)
    if filt.country:
        conditions.append(Signature.country == filt.country.upper())
    if filt.date_from:
        conditions.append(Signature.created_at >= _day_start(filt.date_from))
    if filt.date_to:
        conditions.append(Signature.created_at < _day_start(filt.date_to + timedelta(days=1)))
    if filt.status:
        conditions.append(Signature.status == filt.status)
    if filt.demand_id:
        conditions.append(Signature.demand_id == filt.demand_id)
    if filt.ip_hash:
        conditions.append(Signature.ip_hash == filt.ip_hash)
    return conditions


def _decrypt(c: DataCipher, blob: bytes | None, field_name: str) -> str | None:
    try:
        return c.decrypt(blob, field_name)
    except (InvalidTag, ValueError):
        return _("(unreadable)")


def search(
    session: Session, campaign: Campaign, filt: SearchFilter, page: int = 1,
    per_page: int = PER_PAGE,
) -> Page:
    """One page of the campaign's signatures matching the filter, newest first.

    Only the rows of the page are decrypted; the total is a COUNT query.
    """
    conditions = search_conditions(campaign, filt)
    total = session.scalar(select(func.count()).select_from(Signature).where(*conditions)) or 0
    page = min(max(page, 1), max(1, math.ceil(total / per_page)))
    signatures = session.scalars(
        select(Signature)
        .where(*conditions)
        .options(joinedload(Signature.demand))
        .order_by(Signature.created_at.desc(), Signature.id.desc())
        .limit(per_page)
        .offset((page - 1) * per_page)
    ).all()
    c = cipher()
    rows = [
        SignatureRow(
            id=s.id,
            demand=s.demand,
            name=_decrypt(c, s.name_enc, "signature.name"),
            email=mask_email(_decrypt(c, s.email_enc, "signature.email")),
            country=s.country,
            country_name=country_name(s.country),
            source=s.source,
            status=s.status,
            ip_hash=s.ip_hash,
            created_at=s.created_at,
            confirmed_at=s.confirmed_at,
        )
        for s in signatures
    ]
    return Page(rows=rows, total=total, page=page, per_page=per_page)


# --- invalidation -------------------------------------------------------------------------
