"""Signing several demands at once (the campaign form): one statement writes the signatures
on all the ticked demands (new ones inserted, the demands signed before updated), then one
email names them all: the confirmation for the pending ones, an "already signed" note for the
confirmed. SQLite and PostgreSQL; the messages stay in the outbox (MAIL_DELIVERY=worker) so
their rows are read.
"""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from petition.db import get_session
from petition.models import OutboxMessage, OutboxStatus, Signature, SignatureStatus, utcnow
from petition.signing import counts, emails, services
from tests.helpers import csrf_token, make_campaign, signer


@pytest.fixture
def app(make_app) -> Flask:  # noqa: ANN001
    return make_app(MAIL_DELIVERY="worker")


def _signatures(db: Session) -> dict[int, Signature]:
    """By demand id (one signer in these tests)."""
    db.expire_all()
    return {s.demand_id: s for s in db.scalars(select(Signature))}


def _messages(db: Session) -> list[OutboxMessage]:
    db.expire_all()
    return list(db.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))


def _post(client, slug: str, demand_ids: list[int], email: str = "ayse@example.org"):  # noqa: ANN001, ANN202
    token = csrf_token(client, f"/campaigns/{slug}")
    return client.post(f"/campaigns/{slug}/sign", data={
        "csrf_token": token, "demands": [str(i) for i in demand_ids], **signer(email=email)})


def test_a_new_signer_of_three_demands_gets_one_email_naming_all_three(app, client, db):
    campaign = make_campaign(db, demands=3)
    d1, d2, d3 = campaign.demands
    response = _post(client, campaign.slug, [d3.id, d1.id, d2.id])  # ticked in any order
    assert response.status_code == 303
    signed = _signatures(db)
    assert sorted(signed) == sorted([d1.id, d2.id, d3.id])
    assert all(s.status == SignatureStatus.PENDING and s.emails_sent == 1 for s in signed.values())
    ids = sorted(s.id for s in signed.values())
    [message] = _messages(db)
    assert message.status == OutboxStatus.PENDING and message.kind == "confirm"
    assert message.links == {emails.CONFIRM: ids, emails.WITHDRAW: ids}
    text = message.body_text
    assert text.index("Demand number 1") < text.index("Demand number 2") < text.index("Demand number 3")
    assert "already signed" not in text
    assert services.cipher().decrypt(message.recipient_enc, "outbox.recipient") == "ayse@example.org"


def test_demands_signed_before_get_the_link_again_or_a_note_in_the_same_email(app, client, db):
    campaign = make_campaign(db, demands=3)
    d1, d2, d3 = campaign.demands
    _post(client, campaign.slug, [d2.id])  # pending
    _post(client, campaign.slug, [d3.id])
    third = _signatures(db)[d3.id]
    services.confirm(db, [third.id])
    response = _post(client, campaign.slug, [d1.id, d2.id, d3.id])
    assert response.status_code == 303
    signed = _signatures(db)
    assert len(signed) == 3
    assert {d: s.emails_sent for d, s in signed.items()} == {d1.id: 1, d2.id: 2, d3.id: 2}
    assert signed[d1.id].status == SignatureStatus.PENDING
    last = _messages(db)[-1]
    assert last.links == {emails.CONFIRM: sorted([signed[d1.id].id, signed[d2.id].id]),
                          emails.WITHDRAW: sorted(s.id for s in signed.values())}
    text = last.body_text
    assert "You had already signed and confirmed" in text
    assert text.index("Demand number 1") < text.index("Demand number 2") < text.index(
        "You had already signed and confirmed") < text.index("Demand number 3")
    assert counts.get(db, d3.id).value == 1 and counts.get(db, d1.id).value == 0


def test_a_repeat_of_the_whole_form_writes_nothing_new_and_stops_at_the_cap(app, client, db):
    campaign = make_campaign(db, demands=2)
    ids = [d.id for d in campaign.demands]
    cap = app.config["MAX_EMAILS_PER_SIGNATURE"]
    for _ in range(cap + 2):
        assert _post(client, campaign.slug, ids).status_code == 303
    signed = _signatures(db)
    assert len(signed) == 2
    # emails_sent stops one past the cap: the row is written on every submission, so a
    # capped one takes as long as any other (statements.py).
    assert all(s.emails_sent == cap + 1 for s in signed.values())
    assert len(_messages(db)) == cap  # the same screen after that, and no email


def test_the_same_signer_on_overlapping_demands_at_once(app, db):
    """Six browsers send the same address for overlapping sets of demands at the same moment:
    one signature per demand, and each signature's emails_sent equals the number of queued
    emails that name it (none lost, none counted twice, the cap kept), or is one past the
    cap once the cap stopped an email."""
    campaign = make_campaign(db, demands=3)
    d1, d2, d3 = (d.id for d in campaign.demands)
    sets = [[d1, d2, d3], [d3, d2, d1], [d2], [d1, d3], [d1, d2, d3], [d2, d3]]
    barrier = threading.Barrier(len(sets))
    statuses: list[int] = []

    def post(i: int) -> None:  # in its own thread, so with its own app context
        browser = app.test_client()
        token = csrf_token(browser, f"/campaigns/{campaign.slug}")
        barrier.wait()
        response = browser.post(f"/campaigns/{campaign.slug}/sign", data={
            "csrf_token": token, "demands": [str(d) for d in sets[i]],
            **signer(email="same@example.org")})
        statuses.append(response.status_code)

    threads = [threading.Thread(target=post, args=(i,)) for i in range(len(sets))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert statuses == [303] * len(sets)
    signed = _signatures(db)
    assert sorted(signed) == sorted([d1, d2, d3])
    messages = _messages(db)
    for signature in signed.values():
        named = sum(signature.id in (m.links or {}).get(emails.WITHDRAW, []) for m in messages)
        cap = app.config["MAX_EMAILS_PER_SIGNATURE"]
        assert signature.emails_sent == named or signature.emails_sent == named + 1 == cap + 1
        assert 1 <= named <= cap


def test_one_closed_demand_among_new_ones_writes_nothing(app, client, db):
    """The database says closed while the display cache still says open: the new rows
    inserted with the others are rolled back with them."""
    campaign = make_campaign(db, demands=3)
    ids = [d.id for d in campaign.demands]
    campaign.demands[1].closes_at = utcnow() - dt.timedelta(seconds=1)
    db.commit()
    with app.app_context():
        session = get_session()
        outcome = services.sign(session, list(campaign.demands), services.SignerInput(
            name="Ayşe", email="y@example.org", country="TR"), None)
        assert outcome.refused == [ids[1]]
        assert outcome.message_id is None
        session.rollback()
    assert _signatures(db) == {} and _messages(db) == []


def test_a_demand_named_twice_counts_once(app, db):
    campaign = make_campaign(db, demands=2)
    d1, d2 = campaign.demands
    signer_input = services.SignerInput(name="Ayşe", email="twice@example.org", country="TR")
    with app.app_context():
        session = get_session()
        first = services.sign(session, [d1, d1], signer_input, None)
        session.commit()
        again = services.sign(session, [d2, d1, d2, d1], signer_input, None)
        session.commit()
    assert len(first.created) == 1 and len(again.created) == 1
    assert again.pending_again == first.created
    signed = _signatures(db)
    assert {d: s.emails_sent for d, s in signed.items()} == {d1.id: 2, d2.id: 1}
    assert len(_messages(db)) == 2
