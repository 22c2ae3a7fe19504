"""Events: organiser pages, short links and source attribution end to end."""

from __future__ import annotations

import datetime as dt
import re
from html import unescape
from urllib.parse import parse_qs, urlsplit

import pytest
from alembic import command
from sqlalchemy import inspect, select

from petition.events import services
from petition.models import CampaignStatus, DemandStatus, Event, Signature
from tests.helpers import csrf_token, login, make_campaign, make_organiser, signer
from tests.test_qr import decode

BASE = "http://petition.test"
DAY = dt.date(2026, 12, 5)


def add_event(db, campaign, *, name="Stall", code="", demand=None, date=DAY):  # noqa: ANN001, ANN201
    """An event made through the service, committed."""
    event = services.create_event(db, campaign, services.EventInput(
        name=name, date=date, code=code, demand_id=demand.id if demand else None),
        organiser_id=None)
    db.commit()
    return event


def _events(db):  # noqa: ANN001, ANN202
    db.expire_all()
    return db.scalars(select(Event).order_by(Event.id)).all()


def _form(**overrides):  # noqa: ANN003, ANN202
    data = {"name": "Stall at Alexanderplatz", "date": "2026-12-05", "place": "Berlin",
            "demand_id": "", "code": ""}
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def _post_new(client, campaign, **fields):  # noqa: ANN001, ANN003, ANN202
    path = f"/organiser/campaigns/{campaign.slug}/events/new"
    return client.post(path, data={"csrf_token": csrf_token(client, path), **_form(**fields)})


@pytest.fixture
def campaign(db):  # noqa: ANN001, ANN201
    """An open campaign with two open demands."""
    return make_campaign(db, demands=2)


@pytest.fixture
def owner(client, db, campaign):  # noqa: ANN001, ANN201
    """The client logged in as the campaign's owner."""
    make_organiser(db, campaign=campaign, role="owner")
    login(client)
    return client


# --- organiser pages ---------------------------------------------------------------------


def test_create_event_with_suggested_code(owner, db, campaign):
    response = _post_new(owner, campaign)
    assert response.status_code == 303
    assert response.headers["Location"].endswith(f"/organiser/campaigns/{campaign.slug}/events")
    [event] = _events(db)
    assert (event.name, event.date, event.place) == ("Stall at Alexanderplatz", DAY, "Berlin")
    assert event.code == "stall-at-alexanderplatz-2026-12-05"
    assert event.demand_id is None and event.campaign_id == campaign.id
    assert event.created_at.tzinfo is not None

    assert _post_new(owner, campaign).status_code == 303
    assert _events(db)[1].code == "stall-at-alexanderplatz-2026-12-05-2"
    page = owner.get(response.headers["Location"])
    assert "The event Stall at Alexanderplatz was added." in page.text


def test_create_event_for_a_petition_with_own_code(owner, db, campaign):
    demand = campaign.demands[1]
    response = _post_new(owner, campaign, code="  Rally-Berlin ", demand_id=str(demand.id))
    assert response.status_code == 303
    [event] = _events(db)
    assert event.code == "rally-berlin"
    assert event.demand_id == demand.id


def test_event_list_shows_short_link_and_qr_codes(owner, db, campaign):
    demand = campaign.demands[0]
    add_event(db, campaign, name="Poster run", code="poster-1", demand=demand)
    add_event(db, campaign, name="Film night", code="film")
    page = owner.get(f"/organiser/campaigns/{campaign.slug}/events")
    assert page.status_code == 200
    text = unescape(page.text)
    assert f"{BASE}/e/poster-1" in text and f"{BASE}/e/film" in text
    assert f"{BASE}/petitions/{demand.slug}?src=poster-1" in text
    assert f"{BASE}/campaigns/{campaign.slug}?src=film" in text

    links = [unescape(h) for h in re.findall(r'<a href="([^"]+)" download=', page.text)]
    assert len(links) == 8
    expected = {
        "/e/poster-1/": f"{BASE}/e/poster-1",
        f"/petitions/{demand.slug}/": f"{BASE}/petitions/{demand.slug}?src=poster-1",
        "/e/film/": f"{BASE}/e/film",
        f"/campaigns/{campaign.slug}/": f"{BASE}/campaigns/{campaign.slug}?src=film",
    }
    for link in links:
        response = owner.get(link)
        assert response.status_code == 200, link
        fmt = "svg" if ".svg" in link else "png"
        [want] = [url for prefix, url in expected.items() if link.startswith(prefix)]
        assert decode(response.data, fmt) == want
    assert "style=" not in page.text and "<script>" not in page.text


def test_edit_event(owner, db, campaign):
    event = add_event(db, campaign, code="old-code")
    path = f"/organiser/campaigns/{campaign.slug}/events/{event.id}"
    form = owner.get(path)
    assert form.status_code == 200
    assert 'value="old-code"' in form.text
    assert 'value="2026-12-05"' in form.text
    demand = campaign.demands[0]
    response = owner.post(path, data={"csrf_token": csrf_token(owner, path), **_form(
        name="Renamed", date="2027-01-02", code="new-code", demand_id=str(demand.id))})
    assert response.status_code == 303
    [event] = _events(db)
    assert (event.name, event.date, event.code, event.demand_id) == (
        "Renamed", dt.date(2027, 1, 2), "new-code", demand.id)
    # Keeping its own code is not a clash with itself.
    response = owner.post(path, data={"csrf_token": csrf_token(owner, path), **_form(
        code="new-code")})
    assert response.status_code == 303


def test_edit_form_preselects_the_target(owner, db, campaign):
    demand = campaign.demands[1]
    event = add_event(db, campaign, demand=demand)
    page = owner.get(f"/organiser/campaigns/{campaign.slug}/events/{event.id}")
    assert re.search(rf'<option selected value="{demand.id}">|<option value="{demand.id}" selected',
                     page.text)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"name": ""}, "Please enter a name for the event."),
        ({"name": "   "}, "Please enter a name for the event."),
        ({"name": "n" * 121}, "The name can be at most 120 characters long."),
        ({"date": ""}, "Please enter the date as year-month-day"),
        ({"date": None}, "Please enter the date of the event."),
        ({"date": "5.12.2026"}, "Please enter the date as year-month-day"),
        ({"date": "2026-02-30"}, "Please enter the date as year-month-day"),
        ({"place": "p" * 201}, "The place can be at most 200 characters long."),
        ({"code": "stall_1"}, "The code can only contain letters a-z, digits and dashes."),
        ({"code": "stall 1"}, "The code can only contain letters a-z, digits and dashes."),
        ({"code": "straße"}, "The code can only contain letters a-z, digits and dashes."),
        ({"code": "c" * 49}, "The code can be at most 48 characters long."),
        ({"demand_id": "999999"}, "Not a valid choice"),
        ({"demand_id": "abc"}, "Not a valid choice"),
    ],
)
def test_bad_event_input_is_explained_and_kept(owner, db, campaign, fields, message):
    response = _post_new(owner, campaign, **fields)
    assert response.status_code == 400
    assert message in unescape(response.text)
    assert _events(db) == []
    if "name" not in fields:
        assert 'value="Stall at Alexanderplatz"' in response.text  # what was typed is kept


def test_duplicate_code_is_refused(owner, db, campaign):
    other = make_campaign(db, title="Other campaign", demands=1)
    add_event(db, other, code="taken")
    response = _post_new(owner, campaign, code="TAKEN")
    assert response.status_code == 400
    assert "This code is already used by another event." in response.text
    assert len(_events(db)) == 1

    mine = add_event(db, campaign, code="mine")
    path = f"/organiser/campaigns/{campaign.slug}/events/{mine.id}"
    response = owner.post(path, data={"csrf_token": csrf_token(owner, path), **_form(
        code="taken")})
    assert response.status_code == 400
    assert "This code is already used by another event." in response.text
    assert {e.code for e in _events(db)} == {"taken", "mine"}


def test_service_refuses_a_demand_of_another_campaign(db, campaign):
    other = make_campaign(db, title="Other campaign", demands=1)
    with pytest.raises(services.EventError) as error:
        services.create_event(db, campaign, services.EventInput(
            name="x", date=DAY, demand_id=other.demands[0].id), organiser_id=None)
    assert error.value.field == "demand_id"


def test_concurrent_duplicate_code_is_an_event_error(db, campaign, monkeypatch):
    add_event(db, campaign, code="race")
    # As if another request took the code between the check and the insert.
    monkeypatch.setattr(services, "_check", lambda *args: "race")
    with pytest.raises(services.EventError) as error:
        services.create_event(db, campaign, services.EventInput(name="x", date=DAY),
                              organiser_id=None)
    assert error.value.field == "code"
    db.rollback()
    assert [e.code for e in _events(db)] == ["race"]


def test_viewer_sees_the_list_but_cannot_edit(client, db, campaign):
    make_organiser(db, campaign=campaign, role="viewer")
    event = add_event(db, campaign, code="seen")
    login(client)
    page = client.get(f"/organiser/campaigns/{campaign.slug}/events")
    assert page.status_code == 200
    assert f"{BASE}/e/seen" in page.text
    assert "/events/new" not in page.text and f"/events/{event.id}" not in page.text
    assert client.get(f"/organiser/campaigns/{campaign.slug}/events/new").status_code == 403
    assert client.get(f"/organiser/campaigns/{campaign.slug}/events/{event.id}").status_code == 403


def test_editor_can_create(client, db, campaign):
    make_organiser(db, campaign=campaign, role="editor")
    login(client)
    assert _post_new(client, campaign).status_code == 303


def test_non_members_get_404(client, db, campaign):
    other = make_campaign(db, title="Other campaign", demands=1)
    make_organiser(db, campaign=other, role="owner")
    event = add_event(db, campaign)
    login(client)
    for path in (
        f"/organiser/campaigns/{campaign.slug}/events",
        f"/organiser/campaigns/{campaign.slug}/events/new",
        f"/organiser/campaigns/{campaign.slug}/events/{event.id}",
    ):
        assert client.get(path).status_code == 404, path
    # Another campaign's event through one's own campaign: 404 too.
    assert client.get(f"/organiser/campaigns/{other.slug}/events/{event.id}").status_code == 404


def test_logged_out_is_sent_to_login(client, campaign):
    response = client.get(f"/organiser/campaigns/{campaign.slug}/events")
    assert response.status_code == 302
    assert "/organiser/login" in response.headers["Location"]


# --- short links -------------------------------------------------------------------------


def _location(response) -> tuple[str, dict[str, list[str]]]:  # noqa: ANN001
    assert response.status_code == 302
    parts = urlsplit(response.headers["Location"])
    return parts.path, parse_qs(parts.query)


def test_short_link_to_petition_and_campaign(client, db, campaign):
    demand = campaign.demands[1]
    add_event(db, campaign, code="poster-1", demand=demand)
    add_event(db, campaign, code="film")
    assert _location(client.get("/e/poster-1")) == (
        f"/petitions/{demand.slug}", {"src": ["poster-1"]})
    assert _location(client.get("/e/film")) == (f"/campaigns/{campaign.slug}", {"src": ["film"]})
    # Typed from a poster in capitals, or with a trailing dot from a sentence.
    assert _location(client.get("/e/POSTER-1")) == (
        f"/petitions/{demand.slug}", {"src": ["poster-1"]})
    assert _location(client.get("/e/poster-1.")) == (
        f"/petitions/{demand.slug}", {"src": ["poster-1"]})


@pytest.mark.parametrize(
    ("code", "src"),
    [
        ("no-such-event", "no-such-event"),
        ("Bad Code!!", "badcode"),
        ("x" * 200, "x" * 64),
        ("%3Cscript%3E", "script"),
        ("a.b:c_d", "a.b:c_d"),
    ],
)
def test_unknown_codes_go_to_the_index_keeping_the_source(client, code, src):
    path, query = _location(client.get(f"/e/{code}"))
    assert path == "/"
    assert query == {"src": [src]}
    assert client.get(f"/?src={src}").status_code == 200


def test_code_with_nothing_usable_goes_to_the_plain_index(client):
    assert _location(client.get("/e/%21%21%21")) == ("/", {})


def test_unpublished_targets_never_dead_end(client, db, campaign):
    demand = campaign.demands[0]
    add_event(db, campaign, code="to-demand", demand=demand)
    demand.status = DemandStatus.DRAFT
    db.commit()
    assert _location(client.get("/e/to-demand")) == (
        f"/campaigns/{campaign.slug}", {"src": ["to-demand"]})

    draft = make_campaign(db, title="Draft", demands=1, status=CampaignStatus.DRAFT)
    add_event(db, draft, code="too-early")
    assert _location(client.get("/e/too-early")) == ("/", {"src": ["too-early"]})


def test_deleted_demand_falls_back_to_the_campaign(client, db, campaign):
    demand = campaign.demands[0]
    add_event(db, campaign, code="gone", demand=demand)
    db.delete(demand)
    db.commit()
    [event] = _events(db)
    assert event.demand_id is None
    assert _location(client.get("/e/gone")) == (f"/campaigns/{campaign.slug}", {"src": ["gone"]})


@pytest.mark.parametrize("fmt", ["png", "svg"])
def test_short_link_qr_code(client, db, fmt):
    draft = make_campaign(db, title="Draft", demands=1, status=CampaignStatus.DRAFT)
    add_event(db, draft, code="poster-run")
    response = client.get(f"/e/poster-run/qr.{fmt}?ec=Q")
    assert response.status_code == 200
    assert decode(response.data, fmt) == f"{BASE}/e/poster-run"
    assert client.get(f"/e/unknown/qr.{fmt}").status_code == 404
    assert client.get(f"/e/poster-run/qr.{fmt}?size=1").status_code == 400


def test_short_link_attribution_end_to_end_petition(client, db, campaign):
    demand = campaign.demands[0]
    add_event(db, campaign, code="stall-2026-12-05", demand=demand)
    response = client.get("/e/stall-2026-12-05", follow_redirects=True)
    assert response.status_code == 200
    assert response.request.path == f"/petitions/{demand.slug}"
    assert 'name="src" type="hidden" value="stall-2026-12-05"' in response.text or \
        'type="hidden" name="src" value="stall-2026-12-05"' in response.text
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', response.text).group(1)
    signed = client.post(f"/petitions/{demand.slug}/sign", data={
        "csrf_token": token, "src": "stall-2026-12-05", **signer()})
    assert signed.status_code == 303
    db.expire_all()
    [signature] = db.scalars(select(Signature)).all()
    assert signature.source == "stall-2026-12-05"
    assert signature.demand_id == demand.id


def test_short_link_attribution_end_to_end_campaign(client, db, campaign):
    add_event(db, campaign, code="rally")
    response = client.get("/e/rally", follow_redirects=True)
    assert response.request.path == f"/campaigns/{campaign.slug}"
    src = re.search(r'name="src" type="hidden" value="([^"]*)"|type="hidden" name="src" '
                    r'value="([^"]*)"', response.text)
    assert src and "rally" in src.groups()
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', response.text).group(1)
    ids = [str(d.id) for d in campaign.demands]
    signed = client.post(f"/campaigns/{campaign.slug}/sign", data={
        "csrf_token": token, "src": "rally", "demands": ids, **signer()})
    assert signed.status_code == 303
    db.expire_all()
    signatures = db.scalars(select(Signature)).all()
    assert len(signatures) == 2
    assert {s.source for s in signatures} == {"rally"}


# --- migration ---------------------------------------------------------------------------


def test_events_migration_downgrades_and_upgrades(make_app, database_url):
    if not database_url.startswith("sqlite"):
        return  # the shared PostgreSQL schema is reused by the other tests
    app = make_app()
    engine = app.extensions["petition.engine"]
    with app.app_context():
        from petition.cli import alembic_config

        cfg = alembic_config()
        command.downgrade(cfg, "0002")
        assert not inspect(engine).has_table("events")
        command.upgrade(cfg, "head")
    inspector = inspect(engine)
    assert {c["name"] for c in inspector.get_columns("events")} == {
        "id", "campaign_id", "name", "date", "place", "code", "demand_id", "created_at"}
    assert [u["column_names"] for u in inspector.get_unique_constraints("events")] == [["code"]]


def test_index_passes_an_unknown_code_on_to_the_campaign_links(client, db):
    from tests.helpers import make_campaign

    campaign = make_campaign(db)
    page = client.get("/?src=poster-9<x>")
    assert f'/campaigns/{campaign.slug}?src=poster-9x"' in page.text


def test_event_list_links_each_event_to_its_big_screen(owner, db, campaign):
    demand = campaign.demands[0]
    add_event(db, campaign, name="Poster run", code="poster-1", demand=demand)
    add_event(db, campaign, name="Film night", code="film")
    page = owner.get(f"/organiser/campaigns/{campaign.slug}/events")
    screens = [unescape(h) for h in re.findall(r'<a href="([^"]+)" class="screen-link"', page.text)]
    assert sorted(screens) == sorted([f"/petitions/{demand.slug}/screen?src=poster-1",
                                      f"/campaigns/{campaign.slug}/screen?src=film"])
    for screen in screens:
        response = owner.get(screen)
        assert response.status_code == 200
        code = screen.rsplit("=", 1)[1]
        assert f"qr.svg?src={code}" in unescape(response.text)  # its QR code credits the event
