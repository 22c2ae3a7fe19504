"""Nobody can find out from a submission whether an address had signed (DESIGN.md rule 2).

The screen was always the same; these tests check that the work behind it is the same too,
since a submission that ran more statements for a known address took measurably longer
(before this was fixed, on PostgreSQL 1.7 ms for a new address and 3.2 ms for one that
had signed: bench/probe.py measures it, docs/privacy.md has the numbers). For each earlier state of an address (none, pending,
confirmed, at the email cap, invalidated, withdrawn, a paper signature) a submission must
send the same SQL statements, in the same order, with the same transactions, and give the
same response; only the email differs, and whether one is written at all. SQLite and
PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import event, select, update
from sqlalchemy.orm import Session

from petition.models import Channel, OutboxMessage, Signature, SignatureStatus
from petition.signing import services
from tests.helpers import make_campaign, sign_campaign, sign_petition

# Earlier states an address can be in, made from a fresh pending signature.
STATES: dict[str, Callable[[int], dict[str, Any]]] = {
    "pending": lambda cap: {},
    "confirmed": lambda cap: {"status": SignatureStatus.CONFIRMED},
    "at the cap": lambda cap: {"emails_sent": cap},
    "confirmed, at the cap": lambda cap: {"status": SignatureStatus.CONFIRMED, "emails_sent": cap},
    "invalidated": lambda cap: {"status": SignatureStatus.INVALIDATED},
    "on paper": lambda cap: {"status": SignatureStatus.CONFIRMED, "channel": Channel.PAPER,
                             "emails_sent": 0},
}
# What each state's address receives when it signs again.
EMAIL = {"new": "confirm", "withdrawn": "confirm", "pending": "confirm",
         "confirmed": "already-signed", "on paper": "already-signed", "at the cap": None,
         "confirmed, at the cap": None, "invalidated": None}


@pytest.fixture
def app(make_app) -> Flask:  # noqa: ANN001
    return make_app(MAIL_DELIVERY="worker")  # the outbox rows are read, nothing is sent


@contextmanager
def database_work(app: Flask) -> Iterator[list[str]]:
    """The SQL statements, transaction starts, commits and rollbacks on the app's engine."""
    engine = app.extensions["petition.engine"]
    seen: list[str] = []

    def statement(_conn: Any, _cursor: Any, sql: str, *_args: Any) -> None:
        seen.append(sql)

    listeners: list[tuple[str, Callable[..., None]]] = [
        ("before_cursor_execute", statement),
        ("begin", lambda _conn: seen.append("<begin>")),
        ("commit", lambda _conn: seen.append("<commit>")),
        ("rollback", lambda _conn: seen.append("<rollback>")),
    ]
    for name, listener in listeners:
        event.listen(engine, name, listener)
    try:
        yield seen
    finally:
        for name, listener in listeners:
            event.remove(engine, name, listener)


def _address(state: str) -> str:
    return f"{state.replace(' ', '-').replace(',', '')}@example.org"


def _prepare(app: Flask, db: Session, sign: Callable[[str], Any], state: str) -> None:
    """Put the address of `state` into that state on the demands `sign` signs."""
    if state == "new":
        return
    assert sign(_address(state)).status_code == 303
    key = services.cipher().email_key(_address(state))
    if state == "withdrawn":
        db.execute(update(Signature).where(Signature.email_key == key).values(
            status=SignatureStatus.WITHDRAWN, email_key=None))
    elif STATES[state](0):
        db.execute(update(Signature).where(Signature.email_key == key).values(
            **STATES[state](app.config["MAX_EMAILS_PER_SIGNATURE"])))
    db.commit()


def _kinds(db: Session) -> list[str]:
    db.expire_all()
    return list(db.scalars(select(OutboxMessage.kind).order_by(OutboxMessage.id)))


def _same_work_for_every_state(app: Flask, db: Session,
                               sign: Callable[[str], Any]) -> dict[str, list[str]]:
    """Sign with an address in each state; returns the database work of each submission
    and checks that each got the same response and the email its state earns."""
    states = ["new", "withdrawn", *STATES]
    for state in states:
        _prepare(app, db, sign, state)
    work: dict[str, list[str]] = {}
    responses = {}
    for state in states:
        before = _kinds(db)
        with database_work(app) as seen:
            response = sign(_address(state))
        work[state] = seen
        # The same status, redirect, body and headers (a cookie's value is per browser).
        responses[state] = (response.status_code, response.headers["Location"],
                            response.get_data(), tuple(sorted(response.headers.keys())),
                            tuple(len(c) for c in response.headers.getlist("Set-Cookie")))
        sent = _kinds(db)[len(before):]
        assert sent == ([EMAIL[state]] if EMAIL[state] else []), (state, sent)
    assert len(set(responses.values())) == 1, responses
    return work


def test_a_petition_submission_does_the_same_work_whoever_signed_before(app, client, db):
    campaign = make_campaign(db, demands=1)
    demand = campaign.demands[0]
    work = _same_work_for_every_state(
        app, db, lambda email: sign_petition(client, demand, email=email))
    assert work["new"], "no statement seen: the listener is not on the app's engine"
    for state, seen in work.items():
        assert seen == work["new"], f"{state}: {seen}\nnew: {work['new']}"


def test_a_campaign_submission_does_the_same_work_whoever_signed_before(app, client, db):
    campaign = make_campaign(db, demands=3)
    ids = [d.id for d in campaign.demands]
    work = _same_work_for_every_state(
        app, db, lambda email: sign_campaign(client, campaign, ids[:2], email=email))
    for state, seen in work.items():
        assert seen == work["new"], f"{state}: {seen}\nnew: {work['new']}"


def test_signing_some_demands_before_changes_nothing_either(app, client, db):
    """The same person ticking two demands, having signed none, one or both of them."""
    campaign = make_campaign(db, demands=2)
    ids = [d.id for d in campaign.demands]
    first, both = "first@example.org", "both@example.org"
    assert sign_campaign(client, campaign, ids[:1], email=first).status_code == 303
    assert sign_campaign(client, campaign, ids, email=both).status_code == 303
    work = {}
    for email in ("none@example.org", first, both):
        with database_work(app) as seen:
            assert sign_campaign(client, campaign, ids, email=email).status_code == 303
        work[email] = seen
    assert work["none@example.org"] == work[first] == work[both]
    assert len(db.scalars(select(Signature).where(Signature.demand_id.in_(ids))).all()) == 6

