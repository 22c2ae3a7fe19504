"""The audit log records events (create, edit) and kiosk mode (start, exit), through HTTP.

Data is arranged and checked in app contexts of their own (see tests/test_kiosk.py): the
kiosk flows log organisers in and out, which a shared app context (and `g`) would confuse.
"""

from __future__ import annotations

import json
import re
from html import unescape

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from petition.models import AuditEntry, Campaign, CampaignStatus, Event, Organiser
from tests.helpers import csrf_token, login, make_campaign, make_organiser
from tests.test_kiosk import PASSWORD, SIGNER, World, add_event, database, hidden, start_kiosk

NAME = "Stall <Berlin> & Co"


@pytest.fixture
def world(app: Flask) -> World:
    """An open campaign of two demands, its owner org@example.org and two events."""
    with database(app) as db:
        campaign = make_campaign(db, demands=2)
        stall = add_event(db, campaign, "Stall", "stall-1", campaign.demands[0].id)
        rally = add_event(db, campaign, "Rally", "rally")
        make_organiser(db, campaign=campaign, role="owner")
        return World(campaign.slug, campaign.id, [d.id for d in campaign.demands],
                     [d.title for d in campaign.demands], stall.id, rally.id)


def _add_member(app: Flask, world: World, email: str, role: str) -> int:
    with database(app) as db:
        return make_organiser(db, email=email, campaign=db.get(Campaign, world.campaign_id),
                              role=role).id


def _organiser_id(app: Flask, email: str = "org@example.org") -> int:
    with database(app) as db:
        return db.scalar(select(Organiser.id).where(Organiser.email == email))


def _entries(app: Flask, after: int = 0) -> list[AuditEntry]:
    """Audit entries with an id above `after`, oldest first (detached: columns only)."""
    with database(app) as db:
        return list(db.scalars(
            select(AuditEntry).where(AuditEntry.id > after).order_by(AuditEntry.id)))


def _last_id(app: Flask) -> int:
    entries = _entries(app)
    return entries[-1].id if entries else 0


def _event(app: Flask, event_id: int) -> Event:
    with database(app) as db:
        return db.get(Event, event_id)


def _form(**overrides: str) -> dict[str, str]:
    return {"name": NAME, "date": "2026-12-05", "place": "Berlin", "demand_id": "",
            "code": "", **overrides}


def _post_event(client: FlaskClient, path: str, **fields: str):  # noqa: ANN202
    return client.post(path, data={"csrf_token": csrf_token(client, path), **_form(**fields)})


def _exit(client: FlaskClient, email: str, password: str):  # noqa: ANN202
    page = client.get("/kiosk/exit")
    assert page.status_code == 200
    return client.post("/kiosk/exit", data={"csrf_token": hidden(page.text)["csrf_token"],
                                            "email": email, "password": password})


def _audit_page(client: FlaskClient, world: World) -> str:
    response = client.get(f"/organiser/campaigns/{world.slug}/audit")
    assert response.status_code == 200
    return response.text


def _row(page: str, entry_id: int) -> str:
    """The audit page's table row of one entry, tags removed and entities decoded."""
    match = re.search(rf'<tr id="entry-{entry_id}">(.*?)</tr>', page, re.S)
    assert match, f"no row for entry {entry_id}"
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", match.group(1))).split())


# --- events ------------------------------------------------------------------------------


def test_creating_an_event_writes_one_entry(client, app, world):
    owner_id = _organiser_id(app)
    login(client)
    before = _last_id(app)
    response = _post_event(client, f"/organiser/campaigns/{world.slug}/events/new",
                           code="stall-berlin")
    assert response.status_code == 303
    [entry] = _entries(app, before)
    with database(app) as db:
        event_id = db.scalar(select(Event.id).where(Event.code == "stall-berlin"))
    assert (entry.action, entry.organiser_id, entry.campaign_id) == (
        "event.create", owner_id, world.campaign_id)
    assert entry.detail == {"event_id": event_id, "event": "stall-berlin", "name": NAME}
    assert entry.row_count is None

    page = _audit_page(client, world)
    assert _row(page, entry.id).startswith(f"{entry.created_at:%Y-%m-%d %H:%M} org@example.org "
                                           f"Added an event #{entry.id}")
    assert f"Event {NAME} (stall-berlin)" in _row(page, entry.id)
    assert "Stall &lt;Berlin&gt; &amp; Co" in page and NAME not in page  # escaped


def test_editing_an_event_records_the_changed_fields(client, app, world):
    editor_id = _add_member(app, world, "editor@example.org", "editor")
    login(client, "editor@example.org")
    path = f"/organiser/campaigns/{world.slug}/events/{world.rally}"
    before = _last_id(app)
    response = _post_event(client, path, name="Rally at the square", code="rally-square",
                           date="2026-12-05", place="")
    assert response.status_code == 303
    [entry] = _entries(app, before)
    assert (entry.action, entry.organiser_id, entry.campaign_id) == (
        "event.edit", editor_id, world.campaign_id)
    assert entry.detail == {
        "event_id": world.rally, "event": "rally-square", "name": "Rally at the square",
        "fields": ["name", "code"], "from": {"name": "Rally", "code": "rally"},
    }
    row = _row(_audit_page(client, world), entry.id)
    assert "editor@example.org Edited an event" in row
    assert "Event Rally at the square (rally-square)" in row
    assert "Changed: name, code" in row and "Before: Rally (rally)" in row

    # Saving the same values again changes nothing, so nothing is recorded.
    before = _last_id(app)
    again = _post_event(client, path, name="Rally at the square", code="rally-square", place="")
    assert again.status_code == 303
    assert _entries(app, before) == []

    # A change of place or petition names the field only; name and code are not "before".
    response = _post_event(client, path, name="Rally at the square", code="rally-square",
                           place="Leipzig", demand_id=str(world.demand_ids[1]))
    assert response.status_code == 303
    [entry] = _entries(app, before)
    assert entry.detail["fields"] == ["place", "demand_id"] and "from" not in entry.detail
    assert _event(app, world.rally).place == "Leipzig"


@pytest.mark.parametrize(("fields", "message"), [
    ({"code": "stall-1"}, "This code is already used by another event."),
    ({"code": "Not a code!"}, "The code can only contain letters a-z"),
    ({"name": ""}, None),
])
def test_an_invalid_event_form_writes_nothing(client, app, world, fields, message):
    login(client)
    before = _last_id(app)
    for path in (f"/organiser/campaigns/{world.slug}/events/new",
                 f"/organiser/campaigns/{world.slug}/events/{world.rally}"):
        response = _post_event(client, path, **fields)
        assert response.status_code == 400, path
        assert message is None or message in unescape(response.text)
    assert _entries(app, before) == []
    assert (_event(app, world.rally).name, _event(app, world.rally).code) == ("Rally", "rally")


def test_a_viewer_cannot_add_events_and_nothing_is_recorded(client, app, world):
    _add_member(app, world, "viewer@example.org", "viewer")
    login(client, "viewer@example.org")
    before = _last_id(app)
    path = f"/organiser/campaigns/{world.slug}/events/new"
    response = client.post(path, data={"csrf_token": csrf_token(client, "/organiser/"),
                                       **_form()})
    assert response.status_code == 403
    assert _entries(app, before) == []


# --- kiosk mode --------------------------------------------------------------------------


def test_starting_and_ending_a_kiosk_write_one_entry_each(client, app, world):
    owner_id = _organiser_id(app)
    editor_id = _add_member(app, world, "editor@example.org", "editor")
    before = _last_id(app)
    response = start_kiosk(client, world.slug, world.stall)
    assert response.status_code == 303 and response.headers["Location"] == "/kiosk"
    [start] = _entries(app, before)
    assert (start.action, start.organiser_id, start.campaign_id) == (
        "kiosk.start", owner_id, world.campaign_id)
    assert start.detail == {"event_id": world.stall, "event": "stall-1", "name": "Stall"}

    # A supporter signs at the kiosk: nothing of theirs reaches the audit log.
    page = client.get("/kiosk")
    assert client.post("/kiosk", data={**hidden(page.text), **SIGNER}).status_code == 303

    # Refused exits write nothing: a wrong password, a viewer, a stranger.
    _add_member(app, world, "viewer@example.org", "viewer")
    assert _exit(client, "org@example.org", "wrong password!").status_code == 400
    assert _exit(client, "viewer@example.org", PASSWORD).status_code == 400
    assert _exit(client, "nobody@example.org", PASSWORD).status_code == 400
    assert _entries(app, start.id) == []
    assert client.get("/kiosk").status_code == 200  # still a kiosk

    # The editor ends it; the entry names the editor, not the organiser who started it.
    response = _exit(client, "editor@example.org", PASSWORD)
    assert response.status_code == 303
    [end] = _entries(app, start.id)
    assert (end.action, end.organiser_id, end.campaign_id) == (
        "kiosk.exit", editor_id, world.campaign_id)
    assert end.detail == {"event_id": world.stall, "event": "stall-1", "name": "Stall"}

    for entry in _entries(app):
        text = json.dumps(entry.detail, ensure_ascii=False).lower()
        assert "ayse" not in text and "ayşe" not in text and "10115" not in text

    page = _audit_page(client, world)  # the editor is logged in again
    assert "org@example.org Started a kiosk" in _row(page, start.id)
    assert "Event Stall (stall-1)" in _row(page, start.id)
    assert "editor@example.org Ended a kiosk" in _row(page, end.id)
    assert "Event Stall (stall-1)" in _row(page, end.id)
    assert "ayse" not in page.lower()


def test_refused_kiosk_starts_write_nothing(client, app, world):
    _add_member(app, world, "viewer@example.org", "viewer")
    before = _last_id(app)
    login(client, "viewer@example.org")
    token = csrf_token(client, "/organiser/")
    response = client.post(f"/organiser/campaigns/{world.slug}/events/{world.stall}/kiosk",
                           data={"csrf_token": token})
    assert response.status_code == 403
    owner = app.test_client()
    login(owner)
    response = owner.post(f"/organiser/campaigns/{world.slug}/events/99999/kiosk",
                          data={"csrf_token": csrf_token(owner, "/organiser/")})
    assert response.status_code == 404
    assert _entries(app, before) == []


def test_unpublished_campaign_kiosk_writes_nothing(client, app):
    with database(app) as db:
        campaign = make_campaign(db, demands=1, status=CampaignStatus.DRAFT)
        event_id = add_event(db, campaign, "Early", "early").id
        make_organiser(db, campaign=campaign)
        slug = campaign.slug
    before = _last_id(app)
    response = start_kiosk(client, slug, event_id)
    assert response.status_code == 303 and response.headers["Location"].endswith("/events")
    assert _entries(app, before) == []


def test_ending_the_kiosk_of_a_deleted_event_is_recorded_without_its_name(client, app, world):
    assert start_kiosk(client, world.slug, world.stall).status_code == 303
    with database(app) as db:
        db.delete(db.get(Event, world.stall))
        db.commit()
    before = _last_id(app)
    assert _exit(client, "org@example.org", PASSWORD).status_code == 303
    [end] = _entries(app, before)
    assert (end.action, end.organiser_id, end.campaign_id) == (
        "kiosk.exit", _organiser_id(app), world.campaign_id)
    assert end.detail == {"event_id": world.stall}
    row = _row(_audit_page(client, world), end.id)
    assert f"Ended a kiosk #{end.id}" in row
    assert f"An event that no longer exists (#{world.stall})" in row
