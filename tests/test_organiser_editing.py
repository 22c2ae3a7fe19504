"""Organiser editing: campaigns and demands, preview, slugs, ordering, roles (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from markupsafe import escape
from sqlalchemy import func, select

from petition.models import (
    AuditEntry,
    Campaign,
    CampaignMember,
    CampaignStatus,
    Demand,
    DemandStatus,
    Organiser,
)
from petition.organiser.services import add_demand, create_campaign
from tests.helpers import csrf_token, login, make_campaign, make_organiser

EMAIL = "org@example.org"


def _committed(db):
    """The test's session with only what requests committed (their leftovers dropped)."""
    db.rollback()
    return db


def _audit(db, action: str) -> list[AuditEntry]:
    return list(_committed(db).scalars(
        select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id)))


def _count(db, model) -> int:
    return _committed(db).scalar(select(func.count()).select_from(model))


def _token(client) -> str:
    return csrf_token(client, "/organiser/")


def _as(client, db, campaign, role: str | None, email: str = EMAIL) -> None:
    """Log in as an organiser with this role in the campaign (None: not a member)."""
    make_organiser(db, email=email, campaign=campaign if role else None, role=role or "owner")
    login(client, email)


def _assert_kept(response, data: dict[str, str], bad: dict[str, str | None]) -> None:
    """The page shows what was typed: the bad values and the other fields."""
    for name, value in data.items():
        if name not in ("save", "status", "csrf_token") and value:
            assert str(escape(value)) in response.text, name
    for name, value in bad.items():
        if name != "status" and value:
            assert str(escape(value)) in response.text, name


def _campaign_form(**overrides) -> dict[str, str]:
    data = {"title": "Justice for the detained", "slug": "", "summary": "A short summary",
            "body": "Some *text*", "organisation": "Rights Group", "status": "draft",
            "save": "Save"}
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def _demand_form(**overrides) -> dict[str, str]:
    data = {"title": "Release everyone held without charge", "slug": "", "body": "Why it matters",
            "target": "The Interior Minister", "goal": "5000", "opens_on": "", "closes_on": "",
            "status": "draft", "save": "Save"}
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


@pytest.fixture
def campaign(db) -> Campaign:
    """An open campaign with three open demands."""
    return make_campaign(db, title="Free the detainees", demands=3)


@pytest.fixture
def draft(db) -> Campaign:
    """A draft campaign with one draft demand."""
    c = create_campaign(db, title="Draft campaign", status=CampaignStatus.DRAFT)
    add_demand(db, c, title="Draft demand", status=DemandStatus.DRAFT)
    db.commit()
    return c


# --- Access -----------------------------------------------------------------------------------

def _routes(c: Campaign) -> list[tuple[str, str]]:
    d = c.demands[1].slug
    base = f"/organiser/campaigns/{c.slug}"
    return [("GET", f"{base}/edit"), ("POST", f"{base}/edit"),
            ("GET", f"{base}/demands/new"), ("POST", f"{base}/demands/new"),
            ("GET", f"{base}/demands/{d}/edit"), ("POST", f"{base}/demands/{d}/edit"),
            ("POST", f"{base}/demands/{d}/move"),
            ("GET", f"{base}/import"), ("POST", f"{base}/import")]


@pytest.mark.parametrize("role", ["owner", "editor"])
def test_owners_and_editors_can_open_every_page(client, db, campaign, role):
    _as(client, db, campaign, role)
    for method, url in _routes(campaign):
        if method == "GET":
            assert client.get(url).status_code == 200, url
    token = _token(client)
    move = _routes(campaign)[6][1]
    response = client.post(move, data={"csrf_token": token, "direction": "up"})
    assert response.status_code == 303
    assert client.get("/organiser/campaigns/new").status_code == 200


@pytest.mark.parametrize(("role", "status"), [("viewer", 403), (None, 404)])
def test_viewers_get_403_and_non_members_404_everywhere(client, db, campaign, role, status):
    _as(client, db, campaign, role)
    token = _token(client)
    before = [(d.slug, d.title, d.ordinal) for d in campaign.demands]
    for method, url in _routes(campaign):
        if method == "GET":
            response = client.get(url)
        else:
            data = {"csrf_token": token, **_demand_form(title="Hijacked"), "direction": "up",
                    "text": "1. One thing to do\n2. Another thing to do", "find": "1"}
            response = client.post(url, data=data)
        assert response.status_code == status, (method, url)
        assert "Hijacked" not in response.text
    db.expire_all()
    c = _committed(db).get(Campaign, campaign.id)
    assert [(d.slug, d.title, d.ordinal) for d in c.demands] == before
    assert c.title == "Free the detainees"
    assert _count(db, Demand) == 3
    assert _count(db, AuditEntry) == 0


def test_unknown_campaign_and_demand_are_404(client, db, campaign):
    _as(client, db, campaign, "owner")
    assert client.get("/organiser/campaigns/no-such-campaign/edit").status_code == 404
    assert client.get(f"/organiser/campaigns/{campaign.slug}/demands/nope/edit").status_code == 404
    # A demand of another campaign is not reachable under this campaign's address.
    other = make_campaign(db, title="Other campaign", demands=1)
    url = f"/organiser/campaigns/{campaign.slug}/demands/{other.demands[0].slug}/edit"
    assert client.get(url).status_code == 404


def test_anonymous_is_sent_to_login(client, db, campaign):
    for method, url in [*_routes(campaign), ("GET", "/organiser/campaigns/new"),
                        ("POST", "/organiser/campaigns/new")]:
        if method == "GET":
            response = client.get(url)
        else:
            token = csrf_token(client, "/organiser/login")
            response = client.post(url, data={"csrf_token": token})
        assert response.status_code == 302, url
        assert "/organiser/login" in response.headers["Location"]


@pytest.mark.parametrize("which", ["new_campaign", "edit_campaign", "new_demand", "edit_demand",
                                   "move"])
def test_missing_csrf_token_is_400_and_writes_nothing(client, db, campaign, which):
    _as(client, db, campaign, "owner")
    base = f"/organiser/campaigns/{campaign.slug}"
    d = campaign.demands[1].slug
    url, data = {
        "new_campaign": ("/organiser/campaigns/new", _campaign_form()),
        "edit_campaign": (f"{base}/edit", _campaign_form(status="open")),
        "new_demand": (f"{base}/demands/new", _demand_form()),
        "edit_demand": (f"{base}/demands/{d}/edit", _demand_form(status="open")),
        "move": (f"{base}/demands/{d}/move", {"direction": "up"}),
    }[which]
    response = client.post(url, data=data)
    assert response.status_code == 400
    assert "did not come from this site" in response.text
    db.expire_all()
    assert _count(db, Campaign) == 1
    assert _count(db, Demand) == 3
    assert _committed(db).get(Campaign, campaign.id).title == "Free the detainees"
    assert [o for _, o in _order(db, campaign)] == [1, 2, 3]
    assert _count(db, AuditEntry) == 0


# --- Campaigns --------------------------------------------------------------------------------

def test_new_campaign_makes_the_creator_its_owner(client, db):
    make_organiser(db)
    login(client)
    token = csrf_token(client, "/organiser/campaigns/new")
    response = client.post("/organiser/campaigns/new", data={"csrf_token": token, **_campaign_form()})
    assert response.status_code == 303
    assert response.headers["Location"].endswith("/organiser/campaigns/justice-for-the-detained/edit")
    db = _committed(db)
    campaign = db.scalar(select(Campaign))
    assert (campaign.title, campaign.summary, campaign.body, campaign.organisation, campaign.status) \
        == ("Justice for the detained", "A short summary", "Some *text*", "Rights Group", "draft")
    organiser = db.scalar(select(Organiser).where(Organiser.email == EMAIL))
    member = db.get(CampaignMember, (campaign.id, organiser.id))
    assert member.role == "owner"
    [entry] = _audit(db, "campaign.create")
    assert (entry.campaign_id, entry.organiser_id) == (campaign.id, organiser.id)
    page = client.get(response.headers["Location"])
    assert "The campaign was created" in page.text
    assert 'name="slug"' in page.text  # still a draft: the slug can be edited


def test_new_campaign_with_own_slug_and_duplicate_slug(client, db, campaign):
    make_organiser(db)
    login(client)
    token = _token(client)
    ok = client.post("/organiser/campaigns/new",
                     data={"csrf_token": token, **_campaign_form(slug="my-own-slug")})
    assert ok.status_code == 303
    taken = client.post("/organiser/campaigns/new",
                        data={"csrf_token": token, **_campaign_form(slug=campaign.slug,
                                                                    title="Second try")})
    assert taken.status_code == 400
    assert "This web address is already in use" in taken.text
    assert f"{campaign.slug}-2" in taken.text  # a suggestion
    assert 'value="Second try"' in taken.text
    slugs = set(_committed(db).scalars(select(Campaign.slug)))
    assert slugs == {campaign.slug, "my-own-slug"}


TOO_LONG = "x" * 201

CAMPAIGN_ERRORS = [
    ({"title": ""}, "Please enter a title."),
    ({"title": "   "}, "Please enter a title."),
    ({"title": "\u200b…"}, "at least one letter or digit"),
    ({"title": TOO_LONG}, "The title can be at most 200 characters long."),
    ({"summary": "s" * 501}, "The summary can be at most 500 characters long."),
    ({"organisation": TOO_LONG}, "The organisation can be at most 200 characters long."),
    ({"body": "b" * 20_001}, "The text can be at most 20000 characters long."),
    ({"status": "published"}, "Please choose one of the statuses listed."),
    ({"status": None}, "Please choose a status."),
    ({"slug": "Upper-Case"}, "Use only lower-case letters, digits and single dashes"),
    ({"slug": "with space"}, "Use only lower-case letters, digits and single dashes"),
    ({"slug": "double--dash"}, "Use only lower-case letters, digits and single dashes"),
    ({"slug": "-leading"}, "Use only lower-case letters, digits and single dashes"),
    ({"slug": "ünïcode"}, "Use only lower-case letters, digits and single dashes"),
    ({"slug": "a" * 81}, "The web address can be at most 80 characters long."),
]


@pytest.mark.parametrize(("fields", "message"), CAMPAIGN_ERRORS)
def test_new_campaign_bad_input_is_400_with_message_and_kept(client, db, fields, message):
    make_organiser(db)
    login(client)
    data = _campaign_form(**{"organisation": "Kept org", "summary": "Kept summary", **fields})
    response = client.post("/organiser/campaigns/new", data={"csrf_token": _token(client), **data})
    assert response.status_code == 400
    assert message in response.text
    _assert_kept(response, data, fields)
    assert _count(db, Campaign) == 0
    assert _count(db, CampaignMember) == 0


@pytest.mark.parametrize(("fields", "message"), CAMPAIGN_ERRORS[:9])
def test_edit_campaign_bad_input_is_400_and_saves_nothing(client, db, draft, fields, message):
    _as(client, db, draft, "editor")
    url = f"/organiser/campaigns/{draft.slug}/edit"
    data = _campaign_form(**{"slug": draft.slug, "organisation": "Kept org",
                             "summary": "Kept summary", **fields})
    response = client.post(url, data={"csrf_token": _token(client), **data})
    assert response.status_code == 400
    assert message in response.text
    _assert_kept(response, data, fields)
    c = _committed(db).get(Campaign, draft.id)
    assert (c.title, c.summary, c.status) == ("Draft campaign", "", "draft")
    assert _audit(db, "campaign.edit") == []


def test_edit_campaign_saves_and_audits_changed_fields(client, db, campaign):
    _as(client, db, campaign, "editor")
    url = f"/organiser/campaigns/{campaign.slug}/edit"
    page = client.get(url)
    assert 'value="Free the detainees"' in page.text
    assert 'name="slug"' not in page.text  # open: the slug is shown read-only
    assert f"<code>{campaign.slug}</code>" in page.text
    data = _campaign_form(title="Free them all", summary="Summary", body="New **body**",
                          organisation="Test Org", status="closed")
    del data["slug"]
    response = client.post(url, data={"csrf_token": _token(client), **data})
    assert response.status_code == 303
    c = _committed(db).get(Campaign, campaign.id)
    assert (c.title, c.body, c.status, c.slug) == ("Free them all", "New **body**", "closed",
                                                    "free-the-detainees")
    [entry] = _audit(db, "campaign.edit")
    assert entry.detail["fields"] == ["title", "body", "status"]
    assert "The campaign was saved." in client.get(response.headers["Location"]).text

    # The same values again: nothing to save, nothing audited.
    again = client.post(url, data={"csrf_token": _token(client), **data})
    assert again.status_code == 303
    assert "There were no changes to save." in client.get(again.headers["Location"]).text
    assert len(_audit(db, "campaign.edit")) == 1


def test_published_campaign_slug_cannot_change(client, db, campaign):
    _as(client, db, campaign, "owner")
    url = f"/organiser/campaigns/{campaign.slug}/edit"
    data = _campaign_form(title="Changed title", slug="a-new-address", status="open")
    response = client.post(url, data={"csrf_token": _token(client), **data})
    assert response.status_code == 400
    assert "cannot be changed once published" in response.text
    c = _committed(db).get(Campaign, campaign.id)
    assert (c.slug, c.title) == ("free-the-detainees", "Free the detainees")
    # Posting the unchanged slug is fine.
    same = client.post(url, data={"csrf_token": _token(client),
                                  **_campaign_form(slug=campaign.slug, status="open")})
    assert same.status_code == 303


def test_draft_campaign_slug_can_change_but_must_be_unique(client, db, campaign, draft):
    _as(client, db, draft, "owner")
    url = f"/organiser/campaigns/{draft.slug}/edit"
    taken = client.post(url, data={"csrf_token": _token(client),
                                   **_campaign_form(slug=campaign.slug)})
    assert taken.status_code == 400
    assert "This web address is already in use" in taken.text
    empty = client.post(url, data={"csrf_token": _token(client), **_campaign_form(slug="")})
    assert empty.status_code == 400
    assert "Please enter a web address (slug)." in empty.text
    assert _committed(db).get(Campaign, draft.id).slug == "draft-campaign"

    ok = client.post(url, data={"csrf_token": _token(client),
                                **_campaign_form(slug="better-address", status="open")})
    assert ok.status_code == 303
    assert ok.headers["Location"].endswith("/organiser/campaigns/better-address/edit")
    c = _committed(db).get(Campaign, draft.id)
    assert (c.slug, c.status) == ("better-address", "open")
    [entry] = _audit(db, "campaign.edit")
    assert entry.detail["slug"] == {"from": "draft-campaign", "to": "better-address"}


def test_preview_renders_sanitised_markdown_without_saving(client, db, campaign):
    _as(client, db, campaign, "editor")
    url = f"/organiser/campaigns/{campaign.slug}/edit"
    body = "Some **strong** words\n\n<script>alert(1)</script>\n\n[x](javascript:alert(1))"
    data = _campaign_form(title="Preview title", body=body, status="open")
    del data["save"], data["slug"]
    response = client.post(url, data={"csrf_token": _token(client), **data, "preview": "Preview"})
    assert response.status_code == 200
    assert "<strong>strong</strong>" in response.text
    assert "<script>alert" not in response.text
    assert 'href="javascript' not in response.text
    assert "Nothing is saved until you press Save" in response.text
    assert "Preview title" in response.text
    c = _committed(db).get(Campaign, campaign.id)
    assert (c.title, c.body) == ("Free the detainees", "Some **bold** text")
    assert _count(db, AuditEntry) == 0


def test_new_campaign_preview_does_not_create(client, db):
    make_organiser(db)
    login(client)
    data = _campaign_form(body="# Heading\n\n*emphasis*")
    del data["save"]
    response = client.post("/organiser/campaigns/new",
                           data={"csrf_token": _token(client), **data, "preview": "Preview"})
    assert response.status_code == 200
    assert "<em>emphasis</em>" in response.text
    assert _count(db, Campaign) == 0


def test_control_characters_are_dropped_not_a_server_error(client, db, draft):
    _as(client, db, draft, "owner")
    url = f"/organiser/campaigns/{draft.slug}/edit"
    data = _campaign_form(slug=draft.slug, title="Nul\x00 title\x07", body="Line\r\nbreak\x00")
    response = client.post(url, data={"csrf_token": _token(client), **data})
    assert response.status_code == 303
    c = _committed(db).get(Campaign, draft.id)
    assert (c.title, c.body) == ("Nul title", "Line\nbreak")


def test_long_text_above_the_default_request_limit_is_accepted(client, db, draft):
    _as(client, db, draft, "owner")
    url = f"/organiser/campaigns/{draft.slug}/edit"
    body = "ş" * 20_000  # ~120 KB urlencoded, above the app-wide 64 KiB
    response = client.post(url, data={"csrf_token": _token(client),
                                      **_campaign_form(slug=draft.slug, body=body)})
    assert response.status_code == 303
    assert _committed(db).get(Campaign, draft.id).body == body
    too_long = client.post(url, data={"csrf_token": _token(client),
                                      **_campaign_form(slug=draft.slug, body=body + "ş")})
    assert too_long.status_code == 400
    assert "The text can be at most 20000 characters long." in too_long.text


# --- Demands ----------------------------------------------------------------------------------

def test_new_demand_is_appended(client, db, campaign):
    _as(client, db, campaign, "editor")
    url = f"/organiser/campaigns/{campaign.slug}/demands/new"
    page = client.get(url)
    assert 'value="1000"' in page.text
    data = _demand_form(opens_on="2026-03-01", closes_on="2026-09-30")
    response = client.post(url, data={"csrf_token": _token(client), **data})
    assert response.status_code == 303
    assert response.headers["Location"].endswith(f"/organiser/campaigns/{campaign.slug}/edit#demands")
    demand = _committed(db).scalar(select(Demand).where(Demand.slug == "release-everyone-held-without-charge"))
    assert (demand.campaign_id, demand.ordinal, demand.goal, demand.status, demand.target) == \
        (campaign.id, 4, 5000, "draft", "The Interior Minister")
    assert demand.opens_at == datetime(2026, 3, 1, tzinfo=UTC)
    assert demand.closes_at == datetime(2026, 9, 30, tzinfo=UTC)
    [entry] = _audit(db, "demand.create")
    assert entry.detail == {"demand": demand.slug}


DEMAND_ERRORS = [
    ({"title": ""}, "Please enter a title."),
    ({"title": TOO_LONG}, "The title can be at most 200 characters long."),
    ({"target": TOO_LONG}, "The target can be at most 200 characters long."),
    ({"body": "b" * 20_001}, "The text can be at most 20000 characters long."),
    ({"goal": ""}, "Please enter a goal."),
    ({"goal": "lots"}, "Please enter a whole number, e.g. 1000."),
    ({"goal": "1.5"}, "Please enter a whole number, e.g. 1000."),
    ({"goal": "1e6"}, "Please enter a whole number, e.g. 1000."),
    ({"goal": "0"}, "The goal must be a whole number from 1 to 10,000,000."),
    ({"goal": "-5"}, "The goal must be a whole number from 1 to 10,000,000."),
    ({"goal": "10000001"}, "The goal must be a whole number from 1 to 10,000,000."),
    ({"goal": "9" * 5000}, "Please enter a whole number, e.g. 1000."),
    ({"opens_on": "2026-13-01"}, "Please enter a date as YYYY-MM-DD"),
    ({"closes_on": "next week"}, "Please enter a date as YYYY-MM-DD"),
    ({"opens_on": "1999-12-31"}, "Please enter a date between the years 2000 and 2100."),
    ({"opens_on": "2026-05-01", "closes_on": "2026-04-30"},
     "The closing date must be after the opening date."),
    ({"opens_on": "2026-05-01", "closes_on": "2026-05-01"},
     "The closing date must be after the opening date."),
    ({"status": "pending"}, "Please choose one of the statuses listed."),
    ({"slug": "Bad Slug"}, "Use only lower-case letters, digits and single dashes"),
]


@pytest.mark.parametrize(("fields", "message"), DEMAND_ERRORS)
def test_new_demand_bad_input_is_400_with_message(client, db, campaign, fields, message):
    _as(client, db, campaign, "owner")
    url = f"/organiser/campaigns/{campaign.slug}/demands/new"
    data = _demand_form(**{"target": "Kept target", "body": "Kept body", **fields})
    response = client.post(url, data={"csrf_token": _token(client), **data})
    assert response.status_code == 400
    assert message in response.text
    _assert_kept(response, data, fields)
    assert _count(db, Demand) == 3
    assert _audit(db, "demand.create") == []


@pytest.mark.parametrize(("fields", "message"), DEMAND_ERRORS)
def test_edit_demand_bad_input_is_400_and_saves_nothing(client, db, draft, fields, message):
    _as(client, db, draft, "editor")
    demand = draft.demands[0]
    url = f"/organiser/campaigns/{draft.slug}/demands/{demand.slug}/edit"
    data = _demand_form(**{"slug": demand.slug, **fields})
    response = client.post(url, data={"csrf_token": _token(client), **data})
    assert response.status_code == 400
    assert message in response.text
    d = _committed(db).get(Demand, demand.id)
    assert (d.title, d.goal, d.target, d.opens_at) == ("Draft demand", 1000, "", None)
    assert _audit(db, "demand.edit") == []


def test_edit_demand_saves_and_keeps_an_unchanged_time(client, db, campaign):
    demand = campaign.demands[0]
    demand.closes_at = datetime(2026, 6, 30, 18, 0, tzinfo=UTC)
    db.commit()
    _as(client, db, campaign, "owner")
    url = f"/organiser/campaigns/{campaign.slug}/demands/{demand.slug}/edit"
    page = client.get(url)
    assert 'value="2026-06-30"' in page.text
    assert 'name="slug"' not in page.text  # published
    data = _demand_form(title="Renamed demand", goal="250", status="won", closes_on="2026-06-30",
                        opens_on="2026-01-15")
    del data["slug"]
    response = client.post(url, data={"csrf_token": _token(client), **data})
    assert response.status_code == 303
    d = _committed(db).get(Demand, demand.id)
    assert (d.title, d.goal, d.status, d.slug) == ("Renamed demand", 250, "won", "demand-number-1")
    assert d.closes_at == datetime(2026, 6, 30, 18, 0, tzinfo=UTC)  # same day: time kept
    assert d.opens_at == datetime(2026, 1, 15, tzinfo=UTC)
    [entry] = _audit(db, "demand.edit")
    assert entry.detail["fields"] == ["title", "body", "target", "goal", "status", "opens_at"]
    assert entry.detail["demand"] == "demand-number-1"

    cleared = client.post(url, data={"csrf_token": _token(client),
                                     **{**data, "opens_on": "", "closes_on": ""}})
    assert cleared.status_code == 303
    d = _committed(db).get(Demand, demand.id)
    assert (d.opens_at, d.closes_at) == (None, None)


def test_published_demand_slug_cannot_change(client, db, campaign):
    _as(client, db, campaign, "owner")
    demand = campaign.demands[0]
    url = f"/organiser/campaigns/{campaign.slug}/demands/{demand.slug}/edit"
    data = _demand_form(slug="another-address", status="open")
    response = client.post(url, data={"csrf_token": _token(client), **data})
    assert response.status_code == 400
    assert "cannot be changed once published" in response.text
    assert _committed(db).get(Demand, demand.id).slug == "demand-number-1"


def test_open_demand_of_a_draft_campaign_may_change_slug(client, db, draft, campaign):
    demand = draft.demands[0]
    demand.status = DemandStatus.OPEN
    db.commit()
    _as(client, db, draft, "owner")
    url = f"/organiser/campaigns/{draft.slug}/demands/{demand.slug}/edit"
    assert 'name="slug"' in client.get(url).text
    taken = client.post(url, data={"csrf_token": _token(client),
                                   **_demand_form(slug=campaign.demands[0].slug, status="open")})
    assert taken.status_code == 400
    assert "This web address is already in use" in taken.text
    ok = client.post(url, data={"csrf_token": _token(client),
                                **_demand_form(slug="new-demand-address", status="open")})
    assert ok.status_code == 303
    assert ok.headers["Location"].endswith("/demands/new-demand-address/edit")
    assert _committed(db).get(Demand, demand.id).slug == "new-demand-address"


def test_demand_preview_without_saving(client, db, campaign):
    _as(client, db, campaign, "editor")
    demand = campaign.demands[0]
    url = f"/organiser/campaigns/{campaign.slug}/demands/{demand.slug}/edit"
    data = _demand_form(body="1. first\n2. second", goal="not checked on preview")
    del data["save"], data["slug"]
    response = client.post(url, data={"csrf_token": _token(client), **data, "preview": "Preview"})
    assert response.status_code == 200
    assert "<ol>" in response.text and "<li>first</li>" in response.text
    assert _committed(db).get(Demand, demand.id).body == "Body of demand 1"


# --- Ordering ---------------------------------------------------------------------------------

def _order(db, campaign) -> list[tuple[str, int]]:
    rows = _committed(db).execute(
        select(Demand.slug, Demand.ordinal).where(Demand.campaign_id == campaign.id)
        .order_by(Demand.ordinal))
    return [(slug, ordinal) for slug, ordinal in rows]


def test_move_demands_up_and_down(client, db, campaign):
    _as(client, db, campaign, "editor")
    base = f"/organiser/campaigns/{campaign.slug}/demands"
    token = _token(client)
    response = client.post(f"{base}/demand-number-3/move", data={"csrf_token": token, "direction": "up"})
    assert response.status_code == 303
    assert response.headers["Location"].endswith(f"/organiser/campaigns/{campaign.slug}/edit#demands")
    assert _order(db, campaign) == [("demand-number-1", 1), ("demand-number-3", 2),
                                    ("demand-number-2", 3)]
    client.post(f"{base}/demand-number-1/move", data={"csrf_token": token, "direction": "down"})
    assert [s for s, _ in _order(db, campaign)] == ["demand-number-3", "demand-number-1",
                                                    "demand-number-2"]
    page = client.get(response.headers["Location"])
    assert "was moved down" in page.text
    assert page.text.index("Demand number 3") < page.text.index("Demand number 1")
    entries = _audit(db, "demand.move")
    assert [e.detail["direction"] for e in entries] == ["up", "down"]


def test_move_at_the_ends_changes_nothing(client, db, campaign):
    _as(client, db, campaign, "owner")
    base = f"/organiser/campaigns/{campaign.slug}/demands"
    token = _token(client)
    first = client.post(f"{base}/demand-number-1/move", data={"csrf_token": token, "direction": "up"})
    last = client.post(f"{base}/demand-number-3/move", data={"csrf_token": token, "direction": "down"})
    assert first.status_code == last.status_code == 303
    assert "already at that end of the list" in client.get(first.headers["Location"]).text
    assert [o for _, o in _order(db, campaign)] == [1, 2, 3]
    assert _audit(db, "demand.move") == []


@pytest.mark.parametrize("direction", ["sideways", "", None])
def test_move_with_a_bad_direction_is_400(client, db, campaign, direction):
    _as(client, db, campaign, "owner")
    data = {"csrf_token": _token(client)}
    if direction is not None:
        data["direction"] = direction
    response = client.post(f"/organiser/campaigns/{campaign.slug}/demands/demand-number-2/move",
                           data=data)
    assert response.status_code == 400
    assert "Please use the Move up or Move down button." in response.text
    assert [o for _, o in _order(db, campaign)] == [1, 2, 3]


def test_move_repairs_duplicate_ordinals(client, db, campaign):
    for demand in campaign.demands:
        demand.ordinal = 1
    db.commit()
    _as(client, db, campaign, "owner")
    client.post(f"/organiser/campaigns/{campaign.slug}/demands/demand-number-3/move",
                data={"csrf_token": _token(client), "direction": "up"})
    assert _order(db, campaign) == [("demand-number-1", 1), ("demand-number-3", 2),
                                    ("demand-number-2", 3)]


def test_move_is_get_not_allowed(client, db, campaign):
    _as(client, db, campaign, "owner")
    url = f"/organiser/campaigns/{campaign.slug}/demands/demand-number-2/move"
    assert client.get(url).status_code == 405


def test_home_and_tabs_link_the_editing_pages(client, db, campaign):
    _as(client, db, campaign, "editor")
    home = client.get("/organiser/")
    assert 'href="/organiser/campaigns/new"' in home.text
    page = client.get(f"/organiser/campaigns/{campaign.slug}/edit")
    assert f'href="/organiser/campaigns/{campaign.slug}/import"' in page.text
    assert f'href="/organiser/campaigns/{campaign.slug}/demands/new"' in page.text
    assert f'href="/organiser/campaigns/{campaign.slug}/demands/demand-number-2/edit"' in page.text
    assert "style=" not in page.text and "<script>" not in page.text
