"""Organiser dashboards: counts by status, day, country and source (SQLite and PostgreSQL)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, time, timedelta

import pytest
from flask import Flask
from sqlalchemy.orm import Session

from petition.db import get_session
from petition.models import Campaign, Signature, SignatureStatus, utcnow
from petition.organiser import stats
from petition.signing import counts
from tests.helpers import login, make_campaign, make_organiser


@pytest.fixture(autouse=True)
def fast_passwords(monkeypatch: pytest.MonkeyPatch) -> None:
    """Cheap password hashes for the many organiser accounts made here (scrypt takes ~0.4 s)."""
    from werkzeug.security import generate_password_hash

    from petition.organiser import accounts

    monkeypatch.setattr(accounts, "generate_password_hash",
                        lambda password: generate_password_hash(password, "pbkdf2:sha256:1000"))


@contextmanager
def app_session(app: Flask) -> Iterator[Session]:
    """A session in a short app context (requests must not share it: g caches the user)."""
    with app.app_context():
        yield get_session()


def add_signature(
    session: Session,
    demand_id: int,
    *,
    email: str,
    name: str = "A Signer",
    status: SignatureStatus = SignatureStatus.CONFIRMED,
    country: str | None = "DE",
    source: str | None = None,
    created_at: datetime | None = None,
    ip: str | None = "203.0.113.5",
    was_confirmed: bool | None = None,
) -> int:
    """Insert a signature as the signing flow would, keeping the sharded count exact."""
    from flask import current_app

    c = current_app.extensions["petition.cipher"]
    created = created_at or utcnow()
    confirmed = status == SignatureStatus.CONFIRMED if was_confirmed is None else was_confirmed
    signature = Signature(
        demand_id=demand_id,
        email_key=None if status == SignatureStatus.WITHDRAWN else c.email_key(email),
        email_domain_key=None if status == SignatureStatus.WITHDRAWN else c.domain_key(email),
        name_enc=c.encrypt(name, "signature.name"),
        email_enc=c.encrypt(email, "signature.email"),
        country=country,
        source=source,
        ip_hash=c.ip_hash(ip),
        status=status,
        created_at=created,
        confirmed_at=created + timedelta(minutes=5) if confirmed else None,
    )
    session.add(signature)
    session.flush()
    if status == SignatureStatus.CONFIRMED:
        counts.add(session, demand_id, 1)
    return signature.id


def _noon(day: date) -> datetime:
    return datetime.combine(day, time(12, 0), tzinfo=UTC)


@pytest.fixture
def world(app: Flask) -> dict[str, object]:
    """A campaign with two demands and varied signatures, another campaign, and members."""
    today = utcnow().date()
    with app_session(app) as s:
        campaign = make_campaign(s, title="Free them all", demands=2)
        other = make_campaign(s, title="Other campaign", demands=1)
        d1, d2 = (d.id for d in campaign.demands)
        od = other.demands[0].id
        P = SignatureStatus.PENDING
        add_signature(s, d1, email="a@example.org", country="DE", source="stall-1",
                      created_at=_noon(today))
        add_signature(s, d1, email="b@example.org", country="DE", source="stall-1",
                      created_at=_noon(today))
        add_signature(s, d1, email="c@example.org", country="FR", source=None,
                      created_at=_noon(today - timedelta(days=2)))
        add_signature(s, d1, email="d@example.org", status=P, country="TR", source=None,
                      created_at=_noon(today - timedelta(days=2)))
        add_signature(s, d1, email="e@example.org", status=P, country="TR", source="web",
                      created_at=_noon(today - timedelta(days=40)))
        add_signature(s, d1, email="f@example.org", status=SignatureStatus.INVALIDATED,
                      country="DE", source="stall-1", created_at=_noon(today))
        add_signature(s, d1, email="g@example.org", status=SignatureStatus.WITHDRAWN,
                      country=None, source=None, created_at=_noon(today),
                      was_confirmed=True)
        add_signature(s, d2, email="a@example.org", country="DE", source="web",
                      created_at=_noon(today - timedelta(days=1)))
        # Another campaign: must never show up.
        for i in range(4):
            add_signature(s, od, email=f"x{i}@example.org", country="US", source="elsewhere",
                          created_at=_noon(today))
        make_organiser(s, email="owner@example.org", campaign=campaign, role="owner")
        make_organiser(s, email="viewer@example.org", campaign=campaign, role="viewer")
        make_organiser(s, email="stranger@example.org", campaign=other, role="owner")
        s.commit()
        return {
            "campaign_id": campaign.id, "slug": campaign.slug, "d1": d1, "d2": d2,
            "d1_slug": campaign.demands[0].slug, "other_demand_slug": other.demands[0].slug,
            "today": today, "other_slug": other.slug,
        }


def test_dashboard_numbers_from_the_service(app, world):
    with app_session(app) as s:
        campaign = s.get(Campaign, world["campaign_id"])
        data = stats.dashboard(s, campaign.demands, 30, today=world["today"])
    d1 = data.by_demand[world["d1"]]
    assert (d1.confirmed, d1.pending, d1.invalidated, d1.withdrawn) == (3, 2, 1, 1)
    # 7 made, confirmed ever: 3 confirmed + the withdrawn one that had been confirmed.
    assert d1.total == 7 and d1.ever_confirmed == 4
    assert d1.conversion == pytest.approx(4 / 7)
    assert data.by_demand[world["d2"]].confirmed == 1
    assert (data.totals.confirmed, data.totals.pending) == (4, 2)

    countries = [(b.key, b.label, b.confirmed, b.pending) for b in data.countries]
    assert countries == [("DE", "Germany", 3, 0), ("FR", "France", 1, 0), ("TR", "Türkiye", 0, 2)]
    sources = [(b.key, b.confirmed, b.pending) for b in data.sources]
    assert sources[0] == ("stall-1", 2, 0)
    assert set(sources[1:]) == {(None, 1, 1), ("web", 1, 1)}
    assert all(b.key != "elsewhere" for b in data.sources)


def test_signatures_per_day(app, world):
    today = world["today"]
    with app_session(app) as s:
        ids = [world["d1"], world["d2"]]
        days = stats.per_day(s, ids, 30, today=today)
        week = stats.per_day(s, ids, 7, today=today)
        year = stats.per_day(s, ids, 365, today=today)
    assert len(days) == 30 and days[-1].day == today and days[0].day == today - timedelta(days=29)
    by_day = {p.day: (p.signed, p.confirmed) for p in days}
    # today: a, b confirmed + f invalidated (the withdrawn one is left out)
    assert by_day[today] == (3, 2)
    assert by_day[today - timedelta(days=1)] == (1, 1)
    assert by_day[today - timedelta(days=2)] == (2, 1)
    assert sum(p.signed for p in days) == 6  # the 40-day-old one is outside
    assert sum(p.signed for p in week) == 6
    assert sum(p.signed for p in year) == 7
    assert {p.day: p.signed for p in year}[today - timedelta(days=40)] == 1


def test_day_boundaries_are_utc_days(app, world):
    today = world["today"]
    with app_session(app) as s:
        midnight = datetime.combine(today, time.min, tzinfo=UTC)
        add_signature(s, world["d2"], email="early@example.org", created_at=midnight)
        add_signature(s, world["d2"], email="late@example.org",
                      created_at=midnight - timedelta(microseconds=1))
        s.commit()
        days = {p.day: p.signed for p in stats.per_day(s, [world["d2"]], 7, today=today)}
    assert days[today] == 1
    assert days[today - timedelta(days=1)] == 2


def test_dashboard_page(client, world):
    login(client, "owner@example.org")
    response = client.get(f"/organiser/campaigns/{world['slug']}/")
    assert response.status_code == 200
    text = response.text
    assert 'role="img"' in text and "<title id=\"per-day-title\">" in text
    assert "Signatures per day as a table" in text
    assert "Germany" in text and "Türkiye" in text and "France" in text
    assert "stall-1" in text and "direct" in text
    assert "elsewhere" not in text and "United States" not in text
    assert "57.1%" in text  # 4 of 7 ever confirmed on demand 1
    # The chart table has one row per day.
    assert len(re.findall(r'<tr><th scope="row"><time datetime=', text)) == 30
    _assert_csp_clean(text)


def test_demand_dashboard(client, world):
    login(client, "owner@example.org")
    response = client.get(f"/organiser/campaigns/{world['slug']}/demands/{world['d1_slug']}")
    assert response.status_code == 200
    assert "Demand number 1" in response.text
    assert "Türkiye" in response.text
    _assert_csp_clean(response.text)
    # A demand of another campaign is not found through this campaign.
    foreign = client.get(
        f"/organiser/campaigns/{world['slug']}/demands/{world['other_demand_slug']}")
    assert foreign.status_code == 404
    missing = client.get(f"/organiser/campaigns/{world['slug']}/demands/no-such-demand")
    assert missing.status_code == 404


@pytest.mark.parametrize(("raw", "shown", "notice"), [
    ("99999", 365, True), ("0", 7, True), ("-5", 7, True), ("abc", 30, True),
    ("7", 7, False), ("365", 365, False), ("", 30, False),
])
def test_days_parameter_is_bounded(client, world, raw, shown, notice):
    login(client, "owner@example.org")
    response = client.get(f"/organiser/campaigns/{world['slug']}/?days={raw}")
    assert response.status_code == 200
    assert len(re.findall(r'<tr><th scope="row"><time datetime=', response.text)) == shown
    message = "The period must be a whole number of days from 7 to 365"
    assert (message in response.text) is notice


def test_clamp_days():
    assert stats.clamp_days(None) == (30, False)
    assert stats.clamp_days("99999") == (365, True)
    assert stats.clamp_days("12") == (12, False)
    assert stats.clamp_days("1e9") == (30, True)


def test_bar_chart_geometry():
    points = [stats.DayCount(date(2026, 1, d), s, c) for d, s, c in
              [(1, 0, 0), (2, 10, 5), (3, 5, 5)]]
    chart = stats.bar_chart(points, width=300, height=120)
    assert chart.max_value == 10
    tallest = chart.bars[1]
    assert tallest.y == chart.plot_top and tallest.y + tallest.height == chart.plot_bottom
    assert tallest.confirmed_height == pytest.approx(tallest.height / 2, abs=0.01)
    assert chart.bars[0].height == 0
    assert stats.bar_chart([]).bars == []


def test_empty_campaign_dashboard(app, client):
    with app_session(app) as s:
        campaign = make_campaign(s, demands=0)
        make_organiser(s, email="owner@example.org", campaign=campaign, role="owner")
        slug = campaign.slug
    login(client, "owner@example.org")
    response = client.get(f"/organiser/campaigns/{slug}/")
    assert response.status_code == 200
    assert "This campaign has no demands yet." in response.text
    assert "No signatures yet." in response.text


def test_dashboard_roles(app, client, world):
    base = f"/organiser/campaigns/{world['slug']}"
    paths = [f"{base}/", f"{base}/demands/{world['d1_slug']}"]
    for path in paths:
        anonymous = client.get(path)
        assert anonymous.status_code == 302
        assert "/organiser/login" in anonymous.headers["Location"]
    login(client, "viewer@example.org")
    for path in paths:
        assert client.get(path).status_code == 200
    stranger = app.test_client()
    login(stranger, "stranger@example.org")
    for path in paths:
        assert stranger.get(path).status_code == 404
    assert stranger.get("/organiser/campaigns/no-such-campaign/").status_code == 404


def _assert_csp_clean(html: str) -> None:
    """No inline style attributes or inline scripts (the CSP forbids both)."""
    assert "style=" not in html
    assert not re.search(r"<script(?![^>]*\bsrc=)", html)
