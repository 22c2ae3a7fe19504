"""Kiosk mode: starting it, the sign/thank-you cycle, double submits, leaving it.

The data is arranged and checked in app contexts of its own, never held open around a request:
the test client would reuse such a context, and with it `g`, where Flask-Login and Flask-WTF
cache the logged-in user and the CSRF token of the session for one request.
"""

from __future__ import annotations

import datetime as dt
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from html import unescape

import pytest
from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from petition.db import get_session
from petition.events import services as events
from petition.models import (
    Campaign,
    CampaignStatus,
    Demand,
    DemandStatus,
    Event,
    OutboxMessage,
    Signature,
    SignatureStatus,
)
from petition.signing import services as signing_services
from tests.helpers import csrf_token, login, make_campaign, make_organiser, signer

PASSWORD = "correct horse battery"
SIGNER = {"name": "Ayşe Yılmaz", "email": "ayse.kiosk@example.org", "country": "DE",
          "postcode": "10115", "public_consent": "y"}


@contextmanager
def database(app: Flask) -> Iterator[Session]:
    """A session in an app context of its own, closed before the next request."""
    with app.app_context():
        yield get_session()


@dataclass(frozen=True)
class World:
    """An open campaign of two demands, its owner, and two events."""

    slug: str
    campaign_id: int
    demand_ids: list[int]
    demand_titles: list[str]
    stall: int  # event id; its links lead to the first demand (code "stall-1")
    rally: int  # event id; its links lead to the campaign page (code "rally")


def add_event(db: Session, campaign: Campaign, name: str, code: str,
              demand_id: int | None = None) -> Event:
    """An event made through the service, committed."""
    event = events.create_event(db, campaign, events.EventInput(
        name=name, date=dt.date(2026, 12, 5), code=code, demand_id=demand_id), organiser_id=None)
    db.commit()
    return event


@pytest.fixture
def world(app: Flask) -> World:
    return make_world(app)


def make_world(app: Flask) -> World:
    """The campaign, its owner org@example.org and its events."""
    with database(app) as db:
        campaign = make_campaign(db, demands=2)
        stall = add_event(db, campaign, "Stall", "stall-1", campaign.demands[0].id)
        rally = add_event(db, campaign, "Rally", "rally")
        make_organiser(db, campaign=campaign, role="owner")
        return World(campaign.slug, campaign.id, [d.id for d in campaign.demands],
                      [d.title for d in campaign.demands], stall.id, rally.id)


def start_kiosk(client, slug, event_id, email="org@example.org"):  # noqa: ANN001, ANN201
    """Log in, open the events page and press "Start kiosk"; returns the response."""
    login(client, email)
    token = csrf_token(client, f"/organiser/campaigns/{slug}/events")
    return client.post(f"/organiser/campaigns/{slug}/events/{event_id}/kiosk",
                       data={"csrf_token": token})


@pytest.fixture
def kiosk(client, world):  # noqa: ANN001, ANN201
    """The client as a kiosk for the stall event."""
    response = start_kiosk(client, world.slug, world.stall)
    assert response.status_code == 303
    assert response.headers["Location"] == "/kiosk"
    return client


def hidden(page: str) -> dict[str, str]:
    """The hidden fields of a page's forms (name -> value)."""
    fields = {}
    for tag in re.findall(r'<input\b[^>]*type="hidden"[^>]*>', page):
        name = re.search(r'name="([^"]*)"', tag)
        value = re.search(r'value="([^"]*)"', tag)
        if name:
            fields[name.group(1)] = unescape(value.group(1)) if value else ""
    return fields


def kiosk_post(client, **fields):  # noqa: ANN001, ANN003, ANN201
    """Open the kiosk form and submit it with the signer's details."""
    page = client.get("/kiosk")
    assert page.status_code == 200
    return client.post("/kiosk", data={**hidden(page.text), **SIGNER, **fields})


def signatures(app):  # noqa: ANN001, ANN201
    """All signatures, oldest first (detached: read their columns only)."""
    with database(app) as db:
        return db.scalars(select(Signature).order_by(Signature.id)).all()


def emails_to(outbox, address):  # noqa: ANN001, ANN201
    return [m for m in outbox.messages() if m["To"] == address]


# --- starting kiosk mode -----------------------------------------------------------------


def test_events_page_offers_start_kiosk_to_owners_and_editors(client, app, world):
    with database(app) as db:
        campaign = db.get(Campaign, world.campaign_id)
        make_organiser(db, email="viewer@example.org", campaign=campaign, role="viewer")
    login(client)
    page = client.get(f"/organiser/campaigns/{world.slug}/events").text
    for event_id in (world.stall, world.rally):
        assert f'action="/organiser/campaigns/{world.slug}/events/{event_id}/kiosk"' in page
    assert "Start kiosk" in page and "style=" not in page
    client.post("/organiser/logout", data={"csrf_token": hidden(page)["csrf_token"]})
    login(client, "viewer@example.org")
    page = client.get(f"/organiser/campaigns/{world.slug}/events").text
    assert "Start kiosk" not in page


@pytest.mark.parametrize(("role", "status"), [("viewer", 403), (None, 404)])
def test_start_needs_owner_or_editor_of_that_campaign(client, app, world, role, status):
    with database(app) as db:
        other = make_campaign(db, title="Other campaign", demands=1)
        campaign = db.get(Campaign, world.campaign_id) if role else other
        make_organiser(db, email="someone@example.org", campaign=campaign, role=role or "owner")
    login(client, "someone@example.org")
    token = csrf_token(client, "/organiser/")
    response = client.post(f"/organiser/campaigns/{world.slug}/events/{world.stall}/kiosk",
                           data={"csrf_token": token})
    assert response.status_code == status
    assert client.get("/kiosk").status_code == 404
    assert client.get("/organiser/").status_code == 200  # still logged in


def test_editor_can_start(client, app, world):
    with database(app) as db:
        make_organiser(db, email="editor@example.org",
                       campaign=db.get(Campaign, world.campaign_id), role="editor")
    response = start_kiosk(client, world.slug, world.rally, "editor@example.org")
    assert response.status_code == 303 and response.headers["Location"] == "/kiosk"
    assert client.get("/kiosk").status_code == 200


def test_event_of_another_campaign_is_404(client, app, world):
    with database(app) as db:
        other = make_campaign(db, title="Other campaign", demands=1)
        make_organiser(db, email="other@example.org", campaign=other, role="owner")
        foreign = add_event(db, other, "Elsewhere", "elsewhere").id
    login(client)
    token = csrf_token(client, "/organiser/")
    response = client.post(f"/organiser/campaigns/{world.slug}/events/{foreign}/kiosk",
                           data={"csrf_token": token})
    assert response.status_code == 404
    response = client.post(f"/organiser/campaigns/{world.slug}/events/99999/kiosk",
                           data={"csrf_token": token})
    assert response.status_code == 404
    assert client.get("/kiosk").status_code == 404


def test_start_needs_login_and_csrf(client, world):
    path = f"/organiser/campaigns/{world.slug}/events/{world.stall}/kiosk"
    response = client.post(path, data={"csrf_token": csrf_token(client, "/organiser/login")})
    assert response.status_code == 302 and "/organiser/login" in response.headers["Location"]
    login(client)
    assert client.post(path).status_code == 400  # no CSRF token
    assert client.get("/kiosk").status_code == 404
    assert client.get("/organiser/").status_code == 200


def test_unpublished_campaign_cannot_start_a_kiosk(client, app):
    with database(app) as db:
        campaign = make_campaign(db, demands=1, status=CampaignStatus.DRAFT)
        event_id = add_event(db, campaign, "Early", "early").id
        make_organiser(db, campaign=campaign)
        slug = campaign.slug
    response = start_kiosk(client, slug, event_id)
    assert response.status_code == 303
    assert response.headers["Location"].endswith(f"/organiser/campaigns/{slug}/events")
    assert "not published yet" in client.get(response.headers["Location"]).text
    assert client.get("/kiosk").status_code == 404


def test_starting_logs_the_organiser_out(kiosk, world):
    for path in ("/organiser/", f"/organiser/campaigns/{world.slug}/events",
                 f"/organiser/campaigns/{world.slug}/signatures", "/organiser/password"):
        response = kiosk.get(path)
        assert response.status_code == 302, path
        assert "/organiser/login" in response.headers["Location"]


def test_organiser_who_logs_in_on_the_kiosk_is_logged_out_by_the_kiosk(kiosk):
    login(kiosk)
    assert kiosk.get("/organiser/").status_code == 200
    assert kiosk.get("/kiosk").status_code == 200  # the kiosk is still running here ...
    assert kiosk.get("/organiser/").status_code == 302  # ... and ended that login


# --- the kiosk cycle ---------------------------------------------------------------------


def test_kiosk_form_is_locked_down(kiosk, world):
    response = kiosk.get("/kiosk")
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    page = response.text
    assert world.demand_titles[0] in page
    assert re.search(r'<form method="post" action="/kiosk" autocomplete="off"', page)
    controls = re.findall(r"<(?:input|select)\b[^>]*>", page)
    text_controls = [c for c in controls if 'type="checkbox"' not in c]
    assert len(text_controls) == 6  # csrf, nonce, name, email, country, postcode
    for control in text_controls:
        assert 'autocomplete="off"' in control, control
    # No way off the kiosk but the exit link (in-page anchors aside), no site navigation.
    links = [h for h in re.findall(r'href="([^"]*)"', page) if not h.startswith("#")]
    assert links == ["data:,", "/static/css/app.css", "/kiosk/exit"]
    assert "site-header" not in page and "/organiser/" not in page
    assert "style=" not in page
    # The only script is the idle-reset file (no inline code, so the strict CSP holds).
    assert re.findall(r"<script[^>]*>", page) == [
        '<script src="/static/js/kiosk.js" defer>']
    assert 'data-idle-seconds="90"' in page and 'data-fresh-url="/kiosk"' in page


def test_sign_thank_and_fresh_form(kiosk, app, outbox, world):
    response = kiosk_post(kiosk)
    assert response.status_code == 303
    assert response.headers["Location"] == "/kiosk/thanks"
    assert response.headers["Cache-Control"] == "no-store"

    thanks = kiosk.get("/kiosk/thanks")
    assert thanks.status_code == 200
    assert thanks.headers["Cache-Control"] == "no-store"
    text = unescape(thanks.text)
    assert "Thank you for signing!" in text and "Next person" in text
    assert '<meta http-equiv="refresh" content="6;url=/kiosk">' in text
    assert 'href="/kiosk"' in text
    for personal in ("Ayşe", "Yılmaz", "ayse.kiosk", "10115", "Germany"):
        assert personal not in text

    fresh = kiosk.get("/kiosk")
    assert fresh.headers["Cache-Control"] == "no-store"
    page = unescape(fresh.text)
    for personal in ("Ayşe", "Yılmaz", "ayse.kiosk", "10115"):
        assert personal not in page
    fields = {name: tag for tag in re.findall(r"<(?:input|select)\b[^>]*>", page)
              for name in re.findall(r'name="([^"]+)"', tag)}
    for name in ("name", "email", "postcode"):
        assert 'value=""' in fields[name] and 'autocomplete="off"' in fields[name]
    assert 'autocomplete="off"' in fields["country"]
    assert "selected" not in page.split('name="country"')[1].split("</select>")[0].replace(
        '<option selected value="">', "")
    assert "checked" not in page

    [signature] = signatures(app)
    assert signature.source == "stall-1"
    assert signature.demand_id == world.demand_ids[0]
    assert signature.status == SignatureStatus.PENDING and signature.public_consent
    [message] = emails_to(outbox, SIGNER["email"])
    assert "confirm" in message["Subject"].lower()


def test_kiosk_signature_is_confirmed_by_email_as_usual(kiosk, app, outbox):
    kiosk_post(kiosk)
    link = outbox.link(emails_to(outbox, SIGNER["email"])[-1], "confirm")
    assert app.test_client().get(link).status_code == 200
    [signature] = signatures(app)
    assert signature.status == SignatureStatus.CONFIRMED and signature.source == "stall-1"


def test_source_is_always_the_event_code(kiosk, app):
    assert kiosk_post(kiosk, src="someone-else").status_code == 303
    assert [s.source for s in signatures(app)] == ["stall-1"]


def test_campaign_event_gives_the_multi_sign_form(client, app, outbox, world):
    assert start_kiosk(client, world.slug, world.rally).status_code == 303
    page = client.get("/kiosk").text
    assert "Which demands do you sign?" in page
    response = client.post("/kiosk", data={**hidden(page), **SIGNER,
                                           "demands": [str(i) for i in world.demand_ids]})
    assert response.status_code == 303 and response.headers["Location"] == "/kiosk/thanks"
    rows = signatures(app)
    assert sorted(s.demand_id for s in rows) == sorted(world.demand_ids)
    assert {s.source for s in rows} == {"rally"}
    assert len(emails_to(outbox, SIGNER["email"])) == 1


@pytest.mark.parametrize(("demands", "message"), [
    ([], "Please tick at least one demand to sign."),
    (["99999"], "One of the ticked demands cannot be signed here."),
    (["x"], "One of the ticked demands does not exist."),
])
def test_campaign_kiosk_checks_the_ticked_demands(client, app, world, demands, message):
    start_kiosk(client, world.slug, world.rally)
    page = client.get("/kiosk").text
    response = client.post("/kiosk", data={**hidden(page), **SIGNER, "demands": demands})
    assert response.status_code == 400
    assert message in response.text
    assert "Ayşe Yılmaz" in unescape(response.text)  # kept for correcting
    assert signatures(app) == []


def test_errors_keep_the_typed_details_and_the_form_stays_usable(kiosk, app, outbox):
    page = kiosk.get("/kiosk").text
    fields = hidden(page)
    response = kiosk.post("/kiosk", data={**fields, **SIGNER, "email": "ayse@@example"})
    assert response.status_code == 400
    assert response.headers["Cache-Control"] == "no-store"
    assert "This email address is not valid" in response.text
    assert 'value="ayse@@example"' in response.text and "Ayşe Yılmaz" in unescape(response.text)
    assert hidden(response.text)["form_nonce"] == fields["form_nonce"]
    response = kiosk.post("/kiosk", data={**hidden(response.text), **SIGNER})
    assert response.status_code == 303
    assert len(signatures(app)) == 1 and len(emails_to(outbox, SIGNER["email"])) == 1


def test_over_the_sign_limit_the_kiosk_keeps_the_typed_details(make_app):
    """Over the kiosk's limit the next person gets the form back with what they typed and
    why, not an error page."""
    app = make_app(RATELIMIT_ENABLED=True, RATELIMIT_SIGN="2 per minute")
    world = make_world(app)
    client = app.test_client()
    assert start_kiosk(client, world.slug, world.stall).status_code == 303
    for i in range(2):
        assert kiosk_post(client, email=f"k{i}@example.org").status_code == 303
    fields = hidden(client.get("/kiosk").text)
    response = client.post("/kiosk", data={**fields, **SIGNER})
    assert response.status_code == 429
    assert response.headers["Cache-Control"] == "no-store"
    text = unescape(response.text)
    assert ("Too many signatures were sent from this kiosk in the last minute. Your details "
            "are kept below: please wait a minute and sign again.") in text
    assert 0 < int(response.headers["Retry-After"]) <= 61
    assert f'value="{SIGNER["email"]}"' in text and SIGNER["name"] in text
    assert hidden(response.text)["form_nonce"] == fields["form_nonce"]
    assert len(signatures(app)) == 2


def test_phones_on_the_stall_network_do_not_use_up_the_kiosk(make_app):
    """The kiosk and the supporters' phones share the stall's Wi-Fi (one address): each has
    its own count, so a queue signing on their phones does not lock the kiosk, nor the
    kiosk the phones."""
    app = make_app(RATELIMIT_ENABLED=True, RATELIMIT_SIGN="2 per minute")
    world = make_world(app)
    phone = app.test_client()
    with database(app) as db:
        path = f"/petitions/{db.get(Demand, world.demand_ids[0]).slug}"
    statuses = [phone.post(f"{path}/sign", data={**signer(email=f"phone{i}@example.org"),
                                                 "csrf_token": csrf_token(phone, path)}
                           ).status_code for i in range(3)]
    assert statuses == [303, 303, 429]  # the stall's network is over its limit for phones
    kiosk = app.test_client()
    assert start_kiosk(kiosk, world.slug, world.stall).status_code == 303
    assert [kiosk_post(kiosk, email=f"k{i}@example.org").status_code for i in range(2)] == [303, 303]
    assert kiosk_post(kiosk, email="k2@example.org").status_code == 429  # its own limit
    assert len(signatures(app)) == 4


def test_double_submit_signs_once_and_sends_one_email(kiosk, app, outbox):
    page = kiosk.get("/kiosk").text
    data = {**hidden(page), **SIGNER}
    first = kiosk.post("/kiosk", data=data)
    second = kiosk.post("/kiosk", data=data)  # a replay after the first was answered
    assert first.status_code == second.status_code == 303
    assert second.headers["Location"] == "/kiosk/thanks"
    assert kiosk.get("/kiosk/thanks").status_code == 200
    [signature] = signatures(app)
    assert signature.emails_sent == 1
    assert len(emails_to(outbox, SIGNER["email"])) == 1


def test_when_the_database_cannot_take_the_signature_the_kiosk_keeps_the_details(
        kiosk, app, outbox, monkeypatch):
    """The database goes away between showing the form and signing (a restart): the next
    person sees their details and what happened (503), and sending again signs once."""
    real = signing_services.sign

    def unreachable(*_args, **_kwargs):  # noqa: ANN002, ANN003, ANN202
        raise OperationalError("INSERT ...", {}, Exception("server closed the connection"))

    monkeypatch.setattr(signing_services, "sign", unreachable)
    data = {**hidden(kiosk.get("/kiosk").text), **SIGNER}
    response = kiosk.post("/kiosk", data=data)
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "30"
    text = unescape(response.text)
    assert "Your signature could not be saved just now" in text
    assert f'value="{SIGNER["email"]}"' in text and SIGNER["name"] in text
    assert hidden(response.text)["form_nonce"] == data["form_nonce"]  # still open
    assert signatures(app) == []
    monkeypatch.setattr(signing_services, "sign", real)
    again = kiosk.post("/kiosk", data={**hidden(response.text), **SIGNER})
    assert again.status_code == 303
    assert len(signatures(app)) == 1 and len(emails_to(outbox, SIGNER["email"])) == 1


def test_double_tap_before_the_cookie_changes_signs_once(kiosk, app, outbox):
    """Two submissions of one form that both still hold the open nonce (sent together)."""
    page = kiosk.get("/kiosk").text
    data = {**hidden(page), **SIGNER}
    cookie = kiosk.get_cookie("session").value
    assert kiosk.post("/kiosk", data=data).status_code == 303
    kiosk.set_cookie("session", cookie)  # the second tap left with the old cookie
    assert kiosk.post("/kiosk", data=data).status_code == 303
    [signature] = signatures(app)
    assert signature.emails_sent == 1
    assert len(emails_to(outbox, SIGNER["email"])) == 1
    with database(app) as db:
        assert db.scalar(select(func.count()).select_from(OutboxMessage)) == 1
    # The next person gets an empty form, no error.
    fresh = kiosk.get("/kiosk")
    assert fresh.status_code == 200 and "Ayşe" not in unescape(fresh.text)


def test_concurrent_double_tap_signs_once(kiosk, app, outbox):
    """Both requests really run at the same time, each with the cookie holding the nonce."""
    page = kiosk.get("/kiosk").text
    data = {**hidden(page), **SIGNER}
    cookie = kiosk.get_cookie("session").value
    barrier = threading.Barrier(2)
    statuses: list[int] = []

    def tap() -> None:
        tapper = app.test_client()
        tapper.set_cookie("session", cookie)
        barrier.wait()
        statuses.append(tapper.post("/kiosk", data=data).status_code)

    threads = [threading.Thread(target=tap) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert statuses == [303, 303]
    [signature] = signatures(app)
    assert signature.emails_sent == 1
    assert len(emails_to(outbox, SIGNER["email"])) == 1


def test_same_person_on_a_new_form_follows_the_normal_dedup_rules(kiosk, app, outbox):
    assert kiosk_post(kiosk).status_code == 303
    assert kiosk_post(kiosk).status_code == 303  # a new form: they sign again
    [signature] = signatures(app)
    assert signature.emails_sent == 2  # the confirmation again, as on the public form
    assert len(emails_to(outbox, SIGNER["email"])) == 2


def test_two_people_one_after_the_other(kiosk, app, outbox):
    kiosk_post(kiosk)
    kiosk_post(kiosk, **signer(name="Bora Demir", email="bora@example.org", country="TR"))
    assert [s.source for s in signatures(app)] == ["stall-1", "stall-1"]
    assert len(emails_to(outbox, "bora@example.org")) == 1
    assert len(emails_to(outbox, SIGNER["email"])) == 1


def test_closed_petition_shows_no_form(kiosk, app, world):
    page = kiosk.get("/kiosk").text
    with database(app) as db:
        db.get(Campaign, world.campaign_id).demands[0].status = DemandStatus.CLOSED
        db.commit()
    response = kiosk.get("/kiosk")
    assert response.status_code == 200
    assert "no longer accepts signatures" in response.text
    assert 'action="/kiosk"' not in response.text
    response = kiosk.post("/kiosk", data={**hidden(page), **SIGNER})
    assert response.status_code == 409
    assert signatures(app) == []


def test_kiosk_pages_need_kiosk_mode(client):
    response = client.get("/kiosk")
    assert response.status_code == 404
    assert "Kiosk mode is not running" in response.text
    assert response.headers["Cache-Control"] == "no-store"
    assert client.post("/kiosk", data=SIGNER).status_code == 404
    assert client.get("/kiosk/thanks").status_code == 404
    response = client.get("/kiosk/exit")
    assert response.status_code == 303 and "/organiser/login" in response.headers["Location"]


def test_deleted_event_makes_the_kiosk_unavailable(kiosk, app, world):
    with database(app) as db:
        db.delete(db.get(Event, world.stall))
        db.commit()
    response = kiosk.get("/kiosk")
    assert response.status_code == 404
    assert "/kiosk/exit" in response.text


@pytest.mark.parametrize("event", ["stall", "rally"])
def test_with_the_display_cache_on_the_kiosk_signs_and_shows_changes_at_once(
        make_app, outbox, event):
    """As deployed, what a kiosk signs for is read like public pages (kept for a second,
    detached from any session). It still signs, emails and names every demand, and an edit
    made in the process (the event moved to another demand, a demand closed, the event
    deleted) shows on its next page at once, not after the cache's lifetime."""
    app = make_app(DISPLAY_CACHE_SECONDS=600)
    world = make_world(app)
    client = app.test_client()
    event_id = getattr(world, event)
    assert start_kiosk(client, world.slug, event_id).status_code == 303
    ticked = {"demands": [str(i) for i in world.demand_ids]} if event == "rally" else {}
    assert kiosk_post(client, **ticked).status_code == 303
    [message] = emails_to(outbox, SIGNER["email"])
    body = message.get_body(("plain",)).get_content()
    signed = world.demand_titles if event == "rally" else world.demand_titles[:1]
    assert all(title in body for title in signed) and "Test campaign" in body
    assert len(signatures(app)) == len(signed)

    with database(app) as db:  # the event now leads to the second demand
        campaign = db.get(Campaign, world.campaign_id)
        row = db.get(Event, event_id)
        events.update_event(db, campaign, row, events.EventInput(
            name=row.name, date=row.date, code=row.code, demand_id=world.demand_ids[1]),
            organiser_id=None)
        db.commit()
    page = unescape(client.get("/kiosk").text)
    assert f"<h1>{world.demand_titles[1]}</h1>" in page
    with database(app) as db:
        db.get(Campaign, world.campaign_id).demands[1].status = DemandStatus.CLOSED
        db.commit()
    assert "no longer accepts signatures" in client.get("/kiosk").text
    with database(app) as db:
        db.delete(db.get(Event, event_id))
        db.commit()
    assert client.get("/kiosk").status_code == 404


# --- leaving kiosk mode ------------------------------------------------------------------


def _exit(client, email, password):  # noqa: ANN001, ANN201
    page = client.get("/kiosk/exit")
    assert page.status_code == 200
    assert page.headers["Cache-Control"] == "no-store"
    assert re.search(r'<form method="post" action="/kiosk/exit" autocomplete="off"', page.text)
    return client.post("/kiosk/exit", data={"csrf_token": hidden(page.text)["csrf_token"],
                                            "email": email, "password": password})


def test_exit_needs_the_right_password(kiosk):
    response = _exit(kiosk, "org@example.org", "wrong password!")
    assert response.status_code == 400
    assert response.headers["Cache-Control"] == "no-store"
    assert "not correct" in response.text
    assert 'value="wrong password!"' not in response.text
    assert kiosk.get("/kiosk").status_code == 200  # still a kiosk
    assert kiosk.get("/organiser/").status_code == 302


def test_leaving_while_the_database_is_unavailable_keeps_the_kiosk_screen(kiosk, monkeypatch):
    """The exit login cannot be checked: the kiosk's own "one moment" screen, which comes
    back to the exit form by itself (never the site's error page, with its navigation)."""
    from petition.organiser import kiosk_mode  # noqa: PLC0415 - imported by the view there too

    def unreachable(*_args, **_kwargs):  # noqa: ANN002, ANN003, ANN202
        raise OperationalError("SELECT ...", {}, Exception("server closed the connection"))

    monkeypatch.setattr(kiosk_mode, "end_kiosk", unreachable)
    response = _exit(kiosk, "org@example.org", PASSWORD)
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "30"
    assert response.headers["Cache-Control"] == "no-store"
    assert "This kiosk cannot reach the site's database just now." in unescape(response.text)
    assert '<meta http-equiv="refresh" content="30;url=/kiosk/exit">' in response.text
    assert 'href="/"' not in response.text and 'href="/organiser/"' not in response.text
    monkeypatch.undo()
    assert _exit(kiosk, "org@example.org", PASSWORD).status_code == 303


def test_exit_refuses_a_viewer_and_strangers(kiosk, app, world):
    with database(app) as db:
        make_organiser(db, email="viewer@example.org",
                       campaign=db.get(Campaign, world.campaign_id), role="viewer")
        make_organiser(db, email="stranger@example.org")
    for email in ("viewer@example.org", "stranger@example.org", "nobody@example.org"):
        assert _exit(kiosk, email, PASSWORD).status_code == 400
    assert kiosk.get("/kiosk").status_code == 200
    assert kiosk.get("/organiser/").status_code == 302


def test_exit_logs_the_organiser_in_on_the_events_page(kiosk, world):
    response = _exit(kiosk, " ORG@example.org ", PASSWORD)
    assert response.status_code == 303
    assert response.headers["Location"] == f"/organiser/campaigns/{world.slug}/events"
    page = kiosk.get(response.headers["Location"])
    assert page.status_code == 200
    assert "Kiosk mode has ended" in page.text
    assert kiosk.get("/kiosk").status_code == 404  # the kiosk marker is gone


def test_an_editor_may_end_the_kiosk(kiosk, app, world):
    with database(app) as db:
        make_organiser(db, email="editor@example.org",
                       campaign=db.get(Campaign, world.campaign_id), role="editor")
    assert _exit(kiosk, "editor@example.org", PASSWORD).status_code == 303
    assert kiosk.get("/organiser/").status_code == 200
    assert kiosk.get("/kiosk").status_code == 404
