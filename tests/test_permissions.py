"""Who may open which organiser page: a sweep over every organiser route, plus login hardening.

The sweep discovers the routes from `app.url_map` when it runs, so routes added later are
covered without touching this file. Expected behaviour:

- anonymous: every organiser route except PUBLIC_ENDPOINTS sends to the login page;
- logged in but not a member of the campaign: 404 on every campaign route (GET and POST),
  exactly as for a campaign that does not exist, and the page does not name the campaign;
- viewer: 403 on every POST except the routes in VIEWER_POST_ALLOWED; GET pages never fail.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from werkzeug.routing import IntegerConverter, Rule

from petition.events.services import EventInput, create_event
from petition.models import Campaign, Organiser
from petition.organiser import audit
from tests.helpers import csrf_token, login, make_campaign, make_organiser

# Organiser routes anyone may open without logging in.
PUBLIC_ENDPOINTS = {"organiser.login", "organiser.accept_invitation"}
# POST routes documented as allowed for viewers (every other campaign POST is owner/editor).
VIEWER_POST_ALLOWED: set[str] = set()

PASSWORD = "correct horse battery"
OWNER, VIEWER, OUTSIDER = "owner@example.org", "viewer@example.org", "outsider@example.org"
TITLE = "Confidential campaign Zq7"


@pytest.fixture
def db(app):
    """A session of the test's own, with no app context held open.

    (The shared `db` fixture keeps an app context pushed, so all requests would share one
    `g`, and Flask-Login caches the logged-in user there: every client would look logged in
    as the last one.)
    """
    session = app.extensions["petition.sessionmaker"]()
    yield session
    session.close()


@dataclass
class Arena:
    """Campaign A (owner, viewer) and campaign B owned by an outsider to A."""

    campaign: Campaign
    other: Campaign
    values: dict[str, object]  # URL variables filled with A's real objects
    other_values: dict[str, object]  # B's slug with A's other objects (cross-campaign ids)


@pytest.fixture
def arena(app: Flask, db) -> Arena:
    """Two campaigns with demands and audit entries; three organisers."""
    with app.app_context():
        campaign = make_campaign(db, title=TITLE, demands=2)
        other = make_campaign(db, title="Outsider's own campaign", demands=1)
    owner = make_organiser(db, email=OWNER, campaign=campaign, role="owner")
    make_organiser(db, email=VIEWER, campaign=campaign, role="viewer")
    make_organiser(db, email=OUTSIDER, campaign=other, role="owner")
    entry = audit.record(db, campaign_id=campaign.id, organiser_id=owner.id,
                         action="signature.invalidate", detail={"signature_ids": []},
                         row_count=0)
    event = create_event(db, campaign, EventInput(
        name="Stall", date=dt.date(2026, 12, 5), code="perm-stall",
        demand_id=campaign.demands[0].id), organiser_id=None)
    db.commit()
    values: dict[str, object] = {
        "slug": campaign.slug,
        "demand_slug": campaign.demands[0].slug,
        "demand_id": campaign.demands[0].id,
        "entry_id": entry.id,
        "event_id": event.id,
    }
    return Arena(campaign, other, values, {**values, "slug": other.slug})


def _rules(app: Flask, *, with_slug: bool | None = None) -> list[Rule]:
    rules = [r for r in app.url_map.iter_rules() if r.endpoint.startswith("organiser.")]
    if with_slug is not None:
        rules = [r for r in rules if ("slug" in r.arguments) == with_slug]
    assert rules, "no organiser routes found"
    return sorted(rules, key=lambda r: r.rule)


def _methods(rule: Rule) -> list[str]:
    return sorted((rule.methods or set()) & {"GET", "POST"})


def _url(app: Flask, rule: Rule, values: dict[str, object]) -> str:
    """The rule's path with its variables filled: known names from values, others made up."""
    filled = {}
    for name in rule.arguments:
        if name in values:
            filled[name] = values[name]
        elif isinstance(rule._converters.get(name), IntegerConverter):
            filled[name] = 1
        else:
            filled[name] = "x"
    return app.url_map.bind("localhost").build(rule.endpoint, filled)


def _client(app: Flask, email: str | None) -> tuple[FlaskClient, str]:
    """A client (logged in as email, or anonymous) and a valid CSRF token for its session."""
    client = app.test_client()
    if email is None:
        return client, csrf_token(client, "/organiser/login")
    login(client, email, PASSWORD)
    return client, csrf_token(client, "/organiser/password")


def _request(client: FlaskClient, method: str, url: str, token: str):  # noqa: ANN202
    if method == "POST":
        return client.post(url, data={"csrf_token": token})
    return client.get(url)


def _report(failures: list[str]) -> str:
    return "\n".join(["routes misbehaving:", *failures])


# -- the sweep ---------------------------------------------------------------------------------


def test_sweep_finds_the_campaign_routes(app):
    endpoints = {r.endpoint for r in _rules(app, with_slug=True)}
    assert "organiser.members" in endpoints
    assert "organiser.accept_invitation" not in endpoints


def test_anonymous_is_sent_to_login_everywhere(app, arena):
    client, token = _client(app, None)
    failures = []
    for rule in _rules(app):
        if rule.endpoint in PUBLIC_ENDPOINTS:
            continue
        for method in _methods(rule):
            url = _url(app, rule, arena.values)
            response = _request(client, method, url, token)
            location = response.headers.get("Location", "")
            if not (response.status_code in (301, 302, 303, 401)
                    and (response.status_code == 401 or location.startswith("/organiser/login"))):
                failures.append(f"{method} {url} ({rule.endpoint}): {response.status_code} "
                                f"{location}")
    assert not failures, _report(failures)


def test_non_member_gets_404_on_every_campaign_route(app, arena):
    client, token = _client(app, OUTSIDER)
    failures = []
    for rule in _rules(app, with_slug=True):
        for method in _methods(rule):
            for values in (arena.values, {**arena.values, "slug": "no-such-campaign"}):
                url = _url(app, rule, values)
                response = _request(client, method, url, token)
                if response.status_code != 404:
                    failures.append(f"{method} {url} ({rule.endpoint}): {response.status_code}, "
                                    "expected 404")
                elif TITLE in response.get_data(as_text=True):
                    failures.append(f"{method} {url} ({rule.endpoint}): 404 page names the "
                                    "campaign")
    assert not failures, _report(failures)
    # Nothing the outsider sent changed campaign A's membership.
    assert client.get(f"/organiser/campaigns/{arena.campaign.slug}/members").status_code == 404


def test_objects_of_another_campaign_are_404(app, arena):
    """The outsider's own slug with campaign A's demand slugs and ids reaches nothing of A."""
    client, token = _client(app, OUTSIDER)
    failures = []
    for rule in _rules(app, with_slug=True):
        if set(rule.arguments) == {"slug"}:
            continue
        for method in _methods(rule):
            url = _url(app, rule, arena.other_values)
            response = _request(client, method, url, token)
            if response.status_code != 404:
                failures.append(f"{method} {url} ({rule.endpoint}): {response.status_code}, "
                                "expected 404")
    assert not failures, _report(failures)


def test_viewer_cannot_post_and_can_read(app, arena):
    client, token = _client(app, VIEWER)
    failures = []
    for rule in _rules(app, with_slug=True):
        for method in _methods(rule):
            url = _url(app, rule, arena.values)
            status = _request(client, method, url, token).status_code
            if method == "POST" and rule.endpoint not in VIEWER_POST_ALLOWED:
                if status != 403:
                    failures.append(f"POST {url} ({rule.endpoint}): {status}, expected 403")
            elif status not in (200, 302, 303, 403):
                failures.append(f"{method} {url} ({rule.endpoint}): {status}")
    assert not failures, _report(failures)


def test_owner_pages_open(app, arena):
    """Every campaign page an owner opens renders (no 5xx, no 404 with real URL values)."""
    client, _token = _client(app, OWNER)
    failures = []
    for rule in _rules(app, with_slug=True):
        if "GET" not in _methods(rule):
            continue
        if set(rule.arguments) - set(arena.values):
            continue  # made-up ids: a 404 would be right
        url = _url(app, rule, arena.values)
        status = client.get(url).status_code
        if status not in (200, 302, 303):
            failures.append(f"GET {url} ({rule.endpoint}): {status}")
    assert not failures, _report(failures)


# -- login -------------------------------------------------------------------------------------


def _login_post(client: FlaskClient, email: str, password: str, **kwargs):  # noqa: ANN202
    """GET the login page for its CSRF token, then POST (kwargs go to both requests)."""
    page = client.get("/organiser/login", **kwargs)
    assert page.status_code == 200, page.status_code
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page.text).group(1)
    return client.post("/organiser/login", data={"csrf_token": token, "email": email,
                                                 "password": password}, **kwargs)


def _error_summary(html: str) -> str:
    match = re.search(r'<div class="error-summary".*?</div>', html, re.S)
    assert match, "no error summary"
    return match.group(0)


def test_wrong_password_and_unknown_account_look_the_same(app, db):
    make_organiser(db, email=OWNER)
    wrong = _login_post(app.test_client(), OWNER, "not the password at all")
    unknown = _login_post(app.test_client(), "nobody@example.org", "not the password at all")
    assert wrong.status_code == unknown.status_code == 400
    assert "The email address or password is not correct." in wrong.text
    assert _error_summary(wrong.text) == _error_summary(unknown.text)


def test_login_is_throttled(make_app):
    app = make_app(RATELIMIT_ENABLED=True, RATELIMIT_LOGIN="3 per minute")
    client = app.test_client()
    # An address of its own, so other apps' counters (same process) cannot interfere.
    environ = {"REMOTE_ADDR": f"198.51.100.{id(app) % 250 + 1}"}
    for _ in range(3):
        response = _login_post(client, OWNER, "wrong password here", environ_base=environ)
        assert response.status_code == 400
    response = _login_post(client, OWNER, "wrong password here", environ_base=environ)
    assert response.status_code == 429
    assert "Too many requests" in response.text
    assert "Please wait a minute and try again." in response.text
    assert client.get("/organiser/login", environ_base=environ).status_code == 200


def _session_cookie(response) -> str:
    cookies = [c for c in response.headers.getlist("Set-Cookie") if c.startswith("session=")]
    assert cookies, "no session cookie set"
    return cookies[-1]


def test_session_cookie_flags(app, db):
    make_organiser(db, email=OWNER)
    response = _login_post(app.test_client(), OWNER, PASSWORD)
    assert response.status_code == 303
    cookie = _session_cookie(response)
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    assert "Secure" not in cookie  # PUBLIC_URL is http in tests


def _https_app_with_owner(make_app) -> Flask:
    app = make_app(PUBLIC_URL="https://petition.test")
    with app.app_context():
        from petition.db import get_session

        make_organiser(get_session(), email=OWNER)
    return app


def test_session_cookie_is_secure_behind_https(make_app):
    app = _https_app_with_owner(make_app)
    response = _login_post(app.test_client(), OWNER, PASSWORD, base_url="https://petition.test",
                           headers={"Referer": "https://petition.test/organiser/login"})
    assert response.status_code == 303
    cookie = _session_cookie(response)
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_login_over_https_needs_a_same_origin_referer(make_app):
    """Pages send `Referrer-Policy: same-origin`: a browser's own form POST over https carries
    the Referer that the strict CSRF check wants, while other sites learn nothing."""
    app = _https_app_with_owner(make_app)
    client = app.test_client()
    page = client.get("/organiser/login", base_url="https://petition.test")
    assert page.headers["Referrer-Policy"] == "same-origin"
    refused = _login_post(client, OWNER, PASSWORD, base_url="https://petition.test",
                          headers={"Referer": "https://elsewhere.example/"})
    assert refused.status_code == 400
    response = _login_post(client, OWNER, PASSWORD, base_url="https://petition.test",
                           headers={"Referer": "https://petition.test/organiser/login"})
    assert response.status_code == 303, "a browser could not log in over https"


def test_password_change_logs_out_other_sessions(app, db):
    make_organiser(db, email=OWNER)
    here, elsewhere = app.test_client(), app.test_client()
    login(here, OWNER, PASSWORD)
    login(elsewhere, OWNER, PASSWORD)
    assert elsewhere.get("/organiser/").status_code == 200

    token = csrf_token(here, "/organiser/password")
    response = here.post("/organiser/password", data={
        "csrf_token": token, "current": PASSWORD, "new": "a brand new password",
        "repeat": "a brand new password"})
    assert response.status_code == 303
    assert here.get("/organiser/").status_code == 200  # this session stays logged in
    response = elsewhere.get("/organiser/")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/organiser/login")
    # And the old password no longer works.
    assert _login_post(app.test_client(), OWNER, PASSWORD).status_code == 400


# -- the create-organiser command --------------------------------------------------------------


def _organisers(db) -> list[str]:
    db.rollback()
    return list(db.scalars(select(Organiser.email).order_by(Organiser.id)))


def test_create_organiser_command(app, db):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["create-organiser", "New@Example.org", "--password-stdin"],
                           input="a long enough password\n")
    assert result.exit_code == 0, result.output
    assert "Organiser new@example.org created." in result.output
    assert _organisers(db) == ["new@example.org"]
    login(app.test_client(), "new@example.org", "a long enough password")


@pytest.mark.parametrize(
    ("email", "password", "message"),
    [
        ("short@example.org", "short", "at least 10 characters"),
        ("first@example.org", "another long password", "already exists"),
        ("FIRST@example.org", "another long password", "already exists"),
        ("not-an-email", "a long enough password", "not valid"),
    ],
)
def test_create_organiser_command_rejects(app, db, email, password, message):
    make_organiser(db, email="first@example.org")
    result = app.test_cli_runner().invoke(
        args=["create-organiser", email, "--password-stdin"], input=password + "\n")
    assert result.exit_code != 0
    assert message in result.output
    assert "Error:" in result.output
    assert _organisers(db) == ["first@example.org"]


def test_an_organiser_cookie_replayed_from_another_browser_is_logged_out(app, db):
    """Session protection ("strong") still guards organisers: the same cookie sent with
    another browser's User-Agent is no longer logged in."""
    make_organiser(db, email=OWNER)
    client = app.test_client()
    assert _login_post(client, OWNER, PASSWORD).status_code == 303
    assert client.get("/organiser/").status_code == 200
    stolen = client.get("/organiser/", headers={"User-Agent": "Another browser/1.0"})
    assert stolen.status_code == 302
    assert "/organiser/login" in stolen.headers["Location"]
