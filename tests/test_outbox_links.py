"""The signing email's links are made when it is sent: the outbox never holds a working
confirm or withdraw link, and on PostgreSQL a new signature and its email are one statement
(SQLite and PostgreSQL)."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import event, select

from petition import mail
from petition.db import get_session
from petition.models import OutboxMessage, Signature, SignatureStatus
from tests.conftest import Outbox
from tests.helpers import csrf_token, make_campaign, sign_campaign, sign_petition, signer

LINK = re.compile(r"/signatures/(?:confirm|withdraw)/")


@pytest.fixture
def queued(make_app):  # noqa: ANN001, ANN201
    """An app whose emails wait in the outbox for the worker (as in production)."""
    app = make_app(MAIL_DELIVERY="worker")
    return app, app.test_client(), Outbox(Path(app.config["OUTBOX_DIR"]))


def _messages(app) -> list[OutboxMessage]:  # noqa: ANN001
    with app.app_context():
        session = get_session()
        return list(session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))


def _signatures(app) -> list[Signature]:  # noqa: ANN001
    with app.app_context():
        return list(get_session().scalars(select(Signature).order_by(Signature.id)))


def _deliver(app) -> int:  # noqa: ANN001
    with app.app_context():
        return mail.deliver()


def test_a_queued_signing_email_holds_no_working_link(queued):
    app, client, outbox = queued
    with app.app_context():
        demand = make_campaign(get_session()).demands[0]
    assert sign_petition(client, demand).status_code == 303
    [signature] = _signatures(app)
    [message] = _messages(app)
    assert message.status == "pending" and message.kind == "confirm"
    assert not LINK.search(message.body_text) and not LINK.search(message.body_html)
    assert "/signatures/" not in message.body_text + message.body_html
    assert message.links == {"confirm": [signature.id], "withdraw": [signature.id]}
    assert outbox.messages() == []

    assert _deliver(app) == 1
    sent = outbox.last()
    for part in ("plain", "html"):
        body = sent.get_body((part,)).get_content()
        assert "\ue000" not in body
        assert len(LINK.findall(body)) == 2
    assert client.get(outbox.link(sent, "confirm")).status_code == 200
    assert _signatures(app)[0].status == SignatureStatus.CONFIRMED
    [message] = _messages(app)
    assert message.status == "sent" and message.links is None and message.body_text == ""


def test_links_name_the_right_signatures_in_every_case(queued):
    """New, pending again and already confirmed: the confirm link names only what is left to
    confirm, the withdraw link every signature the email is about."""
    app, client, outbox = queued
    with app.app_context():
        campaign = make_campaign(get_session(), demands=3)
        first, second, third = (d.id for d in campaign.demands)
    assert sign_campaign(client, campaign, [first, second]).status_code == 303
    a, b = _signatures(app)
    assert _messages(app)[-1].links == {"confirm": [a.id, b.id], "withdraw": [a.id, b.id]}
    _deliver(app)
    client.get(outbox.link(outbox.last(), "confirm"))  # both confirmed now

    assert sign_petition(client, campaign.demands[2]).status_code == 303  # a new one
    c = _signatures(app)[-1]
    assert c.demand_id == third
    assert _messages(app)[-1].links == {"confirm": [c.id], "withdraw": [c.id]}

    # Again on all three: two already confirmed, one pending.
    assert sign_campaign(client, campaign, [first, second, third]).status_code == 303
    message = _messages(app)[-1]
    assert message.kind == "confirm"
    assert message.links == {"confirm": [c.id], "withdraw": sorted([a.id, b.id, c.id])}

    # Again on a confirmed one alone: an "already signed" note, nothing to confirm.
    assert sign_petition(client, campaign.demands[0]).status_code == 303
    message = _messages(app)[-1]
    assert message.kind == "already-signed"
    assert message.links == {"withdraw": [a.id]}
    _deliver(app)
    note = outbox.last()
    assert "/signatures/confirm/" not in Outbox.text(note)
    assert client.get(outbox.link(note, "withdraw")).status_code == 200


def test_the_confirm_link_counts_its_age_from_the_signature_not_the_sending(queued):
    """A message sent late (SMTP down for days) carries a link dated when it was queued."""
    app, client, outbox = queued
    with app.app_context():
        session = get_session()
        demand = make_campaign(session).demands[0]
    sign_petition(client, demand)
    days = int(app.config["CONFIRM_MAX_AGE_DAYS"])
    with app.app_context():
        session = get_session()
        message = session.scalars(select(OutboxMessage)).one()
        message.created_at = message.created_at - timedelta(days=days, hours=1)
        session.commit()
    _deliver(app)
    expired = client.get(outbox.link(outbox.last(), "confirm"))
    assert expired.status_code == 410
    assert _signatures(app)[0].status == SignatureStatus.PENDING


def test_a_marker_in_a_title_does_not_become_a_link(queued):
    app, client, outbox = queued
    with app.app_context():
        session = get_session()
        campaign = make_campaign(session)
        demand = campaign.demands[0]
        demand.title = "Free them \ue000confirm-url\ue000 now"
        session.commit()
    assert sign_petition(client, demand).status_code == 303
    _deliver(app)
    text = Outbox.text(outbox.last())
    assert "Free them confirm-url now" in text
    assert len(LINK.findall(text)) == 2


def test_a_new_signature_and_its_email_are_one_statement(make_app, database_url):
    """PostgreSQL: the signature and its email in one autocommitted statement (no BEGIN,
    no COMMIT round trips), and the same one statement when the same person signs again
    (tests/test_sign_probe.py). (With the display cache on, as deployed: the POST reads
    nothing else.)"""
    app = make_app(MAIL_DELIVERY="worker", DISPLAY_CACHE_SECONDS=60)
    client = app.test_client()
    with app.app_context():
        demand = make_campaign(get_session()).demands[0]
    engine = app.extensions["petition.engine"]
    seen: list[tuple[str, bool]] = []

    def record(conn, _cursor, statement, _params, _context, _many):  # noqa: ANN001
        autocommit = bool(getattr(conn.connection.driver_connection, "autocommit", False))
        seen.append((statement.split()[0].upper(), autocommit))

    def post(email: str) -> list[tuple[str, bool]]:
        token = csrf_token(client, f"/petitions/{demand.slug}")
        seen.clear()
        response = client.post(f"/petitions/{demand.slug}/sign",
                               data={"csrf_token": token, **signer(email=email)})
        assert response.status_code == 303
        return list(seen)

    event.listen(engine, "before_cursor_execute", record)
    try:
        first = post("one@example.org")
        again = post("one@example.org")
    finally:
        event.remove(engine, "before_cursor_execute", record)
    if database_url.startswith("postgresql"):
        assert first == again == [("WITH", True)], (first, again)
    else:
        assert [s for s, _ in first] == [s for s, _ in again] == ["BEGIN", "INSERT", "INSERT"], \
            (first, again)
    assert len(_messages(app)) == 2
