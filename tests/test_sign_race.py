"""A demand that stops taking signatures between the page and the INSERT.

Signing checks that the demand takes signatures inside the INSERT itself (INSERT ... SELECT
... WHERE open), so a demand closed after the form was shown, after the campaign was loaded or
while the display cache still says open, refuses the signature: nothing is stored, no email
is queued, the signer sees why with their details kept. SQLite and PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from petition.db import get_session
from petition.models import (
    CampaignStatus,
    Demand,
    DemandStatus,
    OutboxMessage,
    Signature,
    SignatureStatus,
    utcnow,
)
from petition.signing import services
from tests.helpers import csrf_token, make_campaign, signer
from tests.test_kiosk import SIGNER, hidden, kiosk, world  # noqa: F401 (fixtures)


@contextmanager
def database(app: Flask) -> Iterator[Session]:
    with app.app_context():
        yield get_session()


def stored(app: Flask) -> tuple[int, int]:
    """(signatures, outbox messages) in the database."""
    with database(app) as db:
        return (db.scalar(select(func.count()).select_from(Signature)) or 0,
                db.scalar(select(func.count()).select_from(OutboxMessage)) or 0)


def close_behind_the_app(app: Flask, demand_id: int, **values: Any) -> None:
    """Change the demand with a plain UPDATE from another session (another process, say)."""
    with app.app_context():
        session = app.extensions["petition.sessionmaker"]()
        session.execute(update(Demand).where(Demand.id == demand_id).values(**values))
        session.commit()
        session.close()


def closing_first(app: Flask, monkeypatch: pytest.MonkeyPatch, demand_id: int,
                  **values: Any) -> None:
    """Make services.sign close the demand just before it inserts (the race)."""
    real: Callable[..., services.SignOutcome] = services.sign

    def racing(*args: Any, **kwargs: Any) -> services.SignOutcome:
        close_behind_the_app(app, demand_id, **values)
        return real(*args, **kwargs)

    monkeypatch.setattr(services, "sign", racing)


# Each is a function of the time the test runs (the module is imported minutes earlier).
CLOSED_STATES = [
    pytest.param(lambda now: {"status": DemandStatus.CLOSED}, id="closed"),
    pytest.param(lambda now: {"status": DemandStatus.WON}, id="won"),
    pytest.param(lambda now: {"closes_at": now - dt.timedelta(minutes=1)}, id="closing-date-passed"),
    pytest.param(lambda now: {"opens_at": now + dt.timedelta(days=1)}, id="not-open-yet"),
]


@pytest.mark.parametrize("values", CLOSED_STATES)
def test_service_refuses_a_demand_the_database_says_is_closed(app: Flask, values) -> None:  # noqa: ANN001
    with database(app) as db:
        demand = make_campaign(db).demands[0]  # the object still says open
        close_behind_the_app(app, demand.id, **values(utcnow()))
        outcome = services.sign(db, [demand], services.SignerInput(
            name="Ayşe", email="ayse@example.org", country="DE"), "127.0.0.1")
        assert outcome.refused == [demand.id]
        assert outcome.created == [] and outcome.message_id is None
        db.rollback()
    assert stored(app) == (0, 0)


@pytest.mark.parametrize("values", [
    pytest.param(lambda now: {"opens_at": now - dt.timedelta(minutes=1)}, id="opened-a-minute-ago"),
    pytest.param(lambda now: {"closes_at": now + dt.timedelta(minutes=1)}, id="closes-in-a-minute"),
])
def test_service_accepts_a_demand_inside_its_dates(app: Flask, values) -> None:  # noqa: ANN001
    with database(app) as db:
        demand = make_campaign(db).demands[0]
        close_behind_the_app(app, demand.id, **values(utcnow()))
        outcome = services.sign(db, [demand], services.SignerInput(
            name="Ayşe", email="ayse@example.org", country="DE"), None)
        assert outcome.refused == [] and len(outcome.created) == 1
        db.commit()
    assert stored(app) == (1, 1)


def test_repeat_signer_of_a_closed_demand_gets_no_email(app: Flask) -> None:
    signer_input = services.SignerInput(name="Ayşe", email="ayse@example.org", country="DE")
    with database(app) as db:
        demand = make_campaign(db).demands[0]
        services.sign(db, [demand], signer_input, None)
        db.commit()
        close_behind_the_app(app, demand.id, status=DemandStatus.CLOSED)
        outcome = services.sign(db, [demand], signer_input, None)
        assert outcome.refused == [demand.id] and outcome.pending_again == []
        db.rollback()
        assert db.scalars(select(Signature.emails_sent)).all() == [1]
    assert stored(app) == (1, 1)


def test_campaign_closed_behind_the_app_refuses(app: Flask) -> None:
    with database(app) as db:
        campaign = make_campaign(db)
        demand, slug = campaign.demands[0], campaign.slug
    with database(app) as db:
        db.execute(update(type(campaign)).where(type(campaign).id == campaign.id)
                   .values(status=CampaignStatus.CLOSED))
        db.commit()
    with database(app) as db:
        outcome = services.sign(db, [demand], services.SignerInput(
            name="Ayşe", email="ayse@example.org", country="DE"), None)
        assert outcome.refused == [demand.id]
        db.rollback()
    assert stored(app) == (0, 0) and slug


def test_petition_closed_during_the_post_says_why_and_keeps_the_details(
    app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    with database(app) as db:
        demand = make_campaign(db).demands[0]
        slug, demand_id = demand.slug, demand.id
    client = app.test_client()
    token = csrf_token(client, f"/petitions/{slug}")
    closing_first(app, monkeypatch, demand_id, status=DemandStatus.CLOSED)
    response = client.post(f"/petitions/{slug}/sign",
                           data={"csrf_token": token, **signer(email="late@example.org")})
    assert response.status_code == 409
    assert "no longer accepts signatures" in response.text
    assert stored(app) == (0, 0)


def test_campaign_demand_closed_during_the_post_is_explained(
    app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    with database(app) as db:
        campaign = make_campaign(db, demands=2)
        slug, ids = campaign.slug, [d.id for d in campaign.demands]
    client = app.test_client()
    token = csrf_token(client, f"/campaigns/{slug}")
    closing_first(app, monkeypatch, ids[1], closes_at=utcnow() - dt.timedelta(seconds=1))
    response = client.post(f"/campaigns/{slug}/sign", data={
        "csrf_token": token, "demands": [str(i) for i in ids], **signer(email="late@example.org")})
    assert response.status_code == 409
    assert "Demand number 2: This petition closed on" in response.text
    assert 'value="late@example.org"' in response.text  # the typed details are kept
    assert stored(app) == (0, 0)  # not even the demand that was still open: sign again


def test_kiosk_demand_closed_during_the_post_is_explained(
    app: Flask, kiosk, world, monkeypatch: pytest.MonkeyPatch  # noqa: ANN001, F811
) -> None:
    page = kiosk.get("/kiosk")
    assert page.status_code == 200
    closing_first(app, monkeypatch, world.demand_ids[0], status=DemandStatus.CLOSED)
    response = kiosk.post("/kiosk", data={**hidden(page.text), **SIGNER})
    assert response.status_code == 409
    assert "no longer accepts signatures" in response.text
    with database(app) as db:
        assert db.scalars(select(Signature).where(
            Signature.status == SignatureStatus.PENDING)).all() == []
