"""Dashboard numbers: counts by status, day, country and source (aggregated in SQL)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from typing import Any

import pycountry
from sqlalchemy import Date, String, case, cast, func, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from petition.models import Demand, Signature, SignatureStatus, utcnow

DAYS_DEFAULT = 30
DAYS_MIN = 7
DAYS_MAX = 365
DAYS_CHOICES = (7, 30, 90, 365)
TOP_LIMIT = 10


@dataclass(frozen=True)
class StatusCounts:
    """Signatures of one demand (or of all) by status, and how many were ever confirmed."""

    confirmed: int = 0
    pending: int = 0
    invalidated: int = 0
    withdrawn: int = 0
    ever_confirmed: int = 0

    @property
    def total(self) -> int:
        """Every signature ever made, whatever its status now."""
        return self.confirmed + self.pending + self.invalidated + self.withdrawn

    @property
    def conversion(self) -> float | None:
        """Share (0..1) of all signatures ever made that got confirmed; None if none made."""
        return self.ever_confirmed / self.total if self.total else None

    def __add__(self, other: StatusCounts) -> StatusCounts:
        return StatusCounts(
            self.confirmed + other.confirmed,
            self.pending + other.pending,
            self.invalidated + other.invalidated,
            self.withdrawn + other.withdrawn,
            self.ever_confirmed + other.ever_confirmed,
        )


@dataclass(frozen=True)
class DayCount:
    """Signatures made on one UTC day, and how many of those are confirmed now."""

    day: date
    signed: int
    confirmed: int


@dataclass(frozen=True)
class Breakdown:
    """One row of a top list (country or source): confirmed and pending signatures."""

    key: str | None
    label: str
    confirmed: int
    pending: int

    @property
    def total(self) -> int:
        """Confirmed plus pending."""
        return self.confirmed + self.pending


@dataclass(frozen=True)
class Stats:
    """Everything a dashboard shows for a set of demands."""

    by_demand: dict[int, StatusCounts]
    totals: StatusCounts
    days: list[DayCount]
    countries: list[Breakdown]
    sources: list[Breakdown]


@dataclass(frozen=True)
class Bar:
    """One bar of the SVG chart, in chart coordinates (stacked: all signed, confirmed part)."""

    x: float
    width: float
    y: float
    height: float
    confirmed_y: float
    confirmed_height: float
    point: DayCount


@dataclass(frozen=True)
class Chart:
    """Geometry of the per-day bar chart, computed here so the template only draws it."""

    width: int
    height: int
    plot_top: int
    plot_bottom: int
    max_value: int
    bars: list[Bar]


def clamp_days(raw: str | None) -> tuple[int, bool]:
    """The period length for ?days=: the default if missing or unreadable, else within bounds.

    Returns (days, adjusted): adjusted is True when the requested value was not used as given.
    """
    if raw is None or raw == "":
        return DAYS_DEFAULT, False
    try:
        value = int(raw.strip())
    except ValueError:
        return DAYS_DEFAULT, True
    clamped = min(max(value, DAYS_MIN), DAYS_MAX)
    return clamped, clamped != value


def day_of(session: Session, column: Any) -> ColumnElement[Any]:
    """The UTC calendar day of a timestamp column, per dialect (stored as naive UTC)."""
    if session.get_bind().dialect.name == "sqlite":
        return func.date(column, type_=String)  # 'YYYY-MM-DD' text
    return cast(column, Date)


def _as_date(value: date | str) -> date:
    if isinstance(value, str):
        return date.fromisoformat(value[:10])
    if isinstance(value, datetime):
        return value.date()
    return value


@cache
def country_name(code: str | None) -> str:
    """A readable country name for an ISO 3166-1 alpha-2 code (the code if unknown)."""
    if not code:
        return ""
    country = pycountry.countries.get(alpha_2=code.upper())
    if country is None:
        return code
    return getattr(country, "common_name", None) or country.name


def status_counts(session: Session, demand_ids: Sequence[int]) -> dict[int, StatusCounts]:
    """Counts by status per demand, in one GROUP BY query (demands without rows get zeros)."""
    result = {demand_id: StatusCounts() for demand_id in demand_ids}
    if not demand_ids:
        return result
    rows = session.execute(
        select(
            Signature.demand_id,
            Signature.status,
            func.count(),
            func.count(Signature.confirmed_at),
        )
        .where(Signature.demand_id.in_(demand_ids))
        .group_by(Signature.demand_id, Signature.status)
    )
    partial: dict[int, dict[str, int]] = {d: {} for d in demand_ids}
    for demand_id, status, n, ever in rows:
        bucket = partial[demand_id]
        bucket[status] = int(n)
        bucket["ever_confirmed"] = bucket.get("ever_confirmed", 0) + int(ever)
    for demand_id, bucket in partial.items():
        result[demand_id] = StatusCounts(
            confirmed=bucket.get(SignatureStatus.CONFIRMED, 0),
            pending=bucket.get(SignatureStatus.PENDING, 0),
            invalidated=bucket.get(SignatureStatus.INVALIDATED, 0),
            withdrawn=bucket.get(SignatureStatus.WITHDRAWN, 0),
            ever_confirmed=bucket.get("ever_confirmed", 0),
        )
    return result


def per_day(
    session: Session, demand_ids: Sequence[int], days: int, today: date | None = None
) -> list[DayCount]:
    """Signatures made per UTC day over the last `days` days (today included), zeros filled.

    Counted: every signature made that day except withdrawn ones, with the part that is
    confirmed now; one aggregated query grouped by day.
    """
    today = today or utcnow().date()
    first = today - timedelta(days=days - 1)
    series = {first + timedelta(days=i): [0, 0] for i in range(days)}
    if demand_ids:
        start = datetime.combine(first, time.min, tzinfo=UTC)
        day = day_of(session, Signature.created_at)
        rows = session.execute(
            select(
                day,
                func.count(),
                func.sum(case((Signature.status == SignatureStatus.CONFIRMED, 1), else_=0)),
            )
            .where(
                Signature.demand_id.in_(demand_ids),
                Signature.created_at >= start,
                Signature.status != SignatureStatus.WITHDRAWN,
            )
            .group_by(day)
        )
        for value, signed, confirmed in rows:
            key = _as_date(value)
            if key in series:
                series[key] = [int(signed), int(confirmed or 0)]
    return [DayCount(d, signed, confirmed) for d, (signed, confirmed) in series.items()]


def _breakdown(
    session: Session, demand_ids: Sequence[int], column: Any, limit: int
) -> list[tuple[str | None, int, int]]:
    if not demand_ids:
        return []
    confirmed = func.sum(case((Signature.status == SignatureStatus.CONFIRMED, 1), else_=0))
    pending = func.sum(case((Signature.status == SignatureStatus.PENDING, 1), else_=0))
    rows = session.execute(
        select(column, confirmed, pending)
        .where(
            Signature.demand_id.in_(demand_ids),
            Signature.status.in_((SignatureStatus.CONFIRMED, SignatureStatus.PENDING)),
        )
        .group_by(column)
        .order_by(confirmed.desc(), func.count().desc(), column)
        .limit(limit)
    )
    return [(key, int(c or 0), int(p or 0)) for key, c, p in rows]


def top_countries(
    session: Session, demand_ids: Sequence[int], limit: int = TOP_LIMIT
) -> list[Breakdown]:
    """Countries with the most confirmed (then pending) signatures, with their names."""
    return [
        Breakdown(code, country_name(code) if code else "", c, p)
        for code, c, p in _breakdown(session, demand_ids, Signature.country, limit)
    ]


def top_sources(
    session: Session, demand_ids: Sequence[int], limit: int = TOP_LIMIT
) -> list[Breakdown]:
    """Sources (?src= codes) with the most confirmed (then pending) signatures; None = direct."""
    return [
        Breakdown(src, src or "", c, p)
        for src, c, p in _breakdown(session, demand_ids, Signature.source, limit)
    ]


def dashboard(
    session: Session, demands: Sequence[Demand], days: int, today: date | None = None
) -> Stats:
    """All dashboard numbers for the demands (one campaign's, or a single one)."""
    ids = [d.id for d in demands]
    by_demand = status_counts(session, ids)
    totals = sum(by_demand.values(), StatusCounts())
    return Stats(
        by_demand=by_demand,
        totals=totals,
        days=per_day(session, ids, days, today),
        countries=top_countries(session, ids),
        sources=top_sources(session, ids),
    )


def bar_chart(points: Sequence[DayCount], width: int = 640, height: int = 200) -> Chart:
    """Lay out a stacked bar per day (signed, with the confirmed part) in a width x height box."""
    plot_top, plot_bottom = 10, height - 20
    plot_height = plot_bottom - plot_top
    max_value = max((p.signed for p in points), default=0)
    scale = plot_height / max_value if max_value else 0.0
    slot = width / len(points) if points else float(width)
    gap = min(2.0, slot * 0.2)
    bars = []
    for i, point in enumerate(points):
        h = point.signed * scale
        ch = point.confirmed * scale
        bars.append(
            Bar(
                x=round(i * slot + gap / 2, 2),
                width=round(max(slot - gap, 0.5), 2),
                y=round(plot_bottom - h, 2),
                height=round(h, 2),
                confirmed_y=round(plot_bottom - ch, 2),
                confirmed_height=round(ch, 2),
                point=point,
            )
        )
    return Chart(width, height, plot_top, plot_bottom, max_value, bars)
