"""Confirmation links: the page after the click, exact counts under concurrent clicks, and
links that no longer confirm anything (SQLite and PostgreSQL)."""

from __future__ import annotations

import random
import re
import threading

from sqlalchemy import select

from petition.models import Channel, Signature, SignatureStatus
from petition.signing import counts, tokens
from tests.helpers import csrf_token, make_campaign, sign_campaign, sign_petition


def _statuses(db) -> list[str]:
    db.expire_all()
    return list(db.scalars(select(Signature.status).order_by(Signature.id)))


def test_the_page_names_each_demand_in_order_with_its_count_paper_included(client, db, outbox):
    campaign = make_campaign(db, demands=3)
    first, _, third = campaign.demands
    counts.add(db, first.id, 5, Channel.PAPER)
    db.commit()
    sign_campaign(client, campaign, [third.id, first.id])
    page = client.get(outbox.link(outbox.last(), "confirm"))
    assert page.status_code == 200
    text = re.sub(r"\s+", " ", page.text)
    assert text.index("Demand number 1") < text.index("Demand number 3")
    assert "Demand number 2" not in text
    items = re.findall(r"<li>(.*?)</li>", text)
    demand_items = [item for item in items if "Demand number" in item]
    assert len(demand_items) == 2
    assert f'href="/petitions/{first.slug}"' in demand_items[0]
    assert "It now has 6 signatures." in demand_items[0]  # 5 on paper and this one
    assert f'href="/petitions/{third.slug}"' in demand_items[1]
    assert "It now has 1 signature." in demand_items[1]
    assert f'href="/campaigns/{campaign.slug}">Test campaign</a>' in text
    assert counts.get(db, first.id).value == 6 and counts.get(db, first.id).paper == 5
    assert counts.get(db, third.id).value == 1


def test_clicks_at_the_same_time_count_each_signature_once(app, client, db, outbox):
    demand = make_campaign(db).demands[0]
    for i in range(4):
        sign_petition(client, demand, email=f"signer{i}@example.org")
    links = [outbox.link(message, "confirm") for message in outbox.messages()]
    assert len(links) == 4
    barrier = threading.Barrier(6)
    failures: list[str] = []

    def click_all(seed: int) -> None:
        order = random.Random(seed).sample(links, len(links))
        browser = app.test_client()
        barrier.wait()
        for link in order:
            response = browser.get(link)
            if response.status_code != 200 or "confirmed and counted" not in response.text:
                failures.append(f"{link}: {response.status_code}")

    threads = [threading.Thread(target=click_all, args=(seed,)) for seed in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not failures
    assert _statuses(db) == [SignatureStatus.CONFIRMED] * 4
    assert counts.get(db, demand.id).value == 4
    assert counts.recount(db, demand.id, repair=False) is None  # the stored count is exact


def test_a_withdrawn_signature_is_shown_withdrawn_and_not_counted(client, db, outbox):
    demand = make_campaign(db).demands[0]
    sign_petition(client, demand)
    message = outbox.last()
    withdraw = outbox.link(message, "withdraw")
    client.post(withdraw, data={"csrf_token": csrf_token(client, withdraw)})
    page = client.get(outbox.link(message, "confirm"))
    assert page.status_code == 200
    assert "this signature was withdrawn." in page.text
    assert "It now has" not in page.text
    assert counts.get(db, demand.id).value == 0
    assert _statuses(db) == [SignatureStatus.WITHDRAWN]


def test_a_link_to_signatures_that_no_longer_exist_is_not_valid(app, client, db):
    make_campaign(db)
    with app.app_context():
        link = f"/signatures/confirm/{tokens.make(tokens.CONFIRM, [987654, 987655])}"
    page = client.get(link)
    assert page.status_code == 404
    assert "This link is not valid" in page.text


def test_confirm_inside_a_transaction_already_open_takes_the_session_path(app, client, db, outbox):
    from petition.db import get_session
    from petition.signing import services

    demand = make_campaign(db).demands[0]
    sign_petition(client, demand)
    [signature_id] = db.scalars(select(Signature.id)).all()
    with app.test_request_context():
        session = get_session()
        session.execute(select(1))  # the caller has read something: a transaction is open
        assert session.in_transaction()
        [shown] = services.confirm(session, [signature_id])
        assert (shown.id, shown.status, shown.count) == (signature_id, SignatureStatus.CONFIRMED, 1)
        assert (shown.demand.slug, shown.demand.campaign.slug) == (demand.slug, demand.campaign.slug)
        assert services.confirm(session, [signature_id])[0].count == 1  # again: no change
        session.close()
    assert counts.get(db, demand.id).value == 1
    assert _statuses(db) == [SignatureStatus.CONFIRMED]
