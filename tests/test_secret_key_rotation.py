"""Changing PETITION_SECRET_KEY with the old key in PETITION_SECRET_KEY_FALLBACKS: what was
signed with the old key (organiser sessions, open forms, emailed confirmation and invitation
links) keeps working, what is signed now uses the new key, and without the fallback the old
key's signatures are refused (SQLite and PostgreSQL)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from petition.config import signing_keys
from tests.conftest import Outbox
from tests.helpers import csrf_token, login, make_campaign, make_organiser, signer

OLD = "the-old-secret-key"
NEW = "the-new-secret-key"


@pytest.fixture
def apps(make_app):
    """The app before the change, after it with the old key as fallback, and after it
    without (the same database and outbox)."""
    return (make_app(SECRET_KEY=OLD), make_app(SECRET_KEY=NEW, SECRET_KEY_FALLBACKS=OLD),
            make_app(SECRET_KEY=NEW))


@pytest.fixture
def campaign(apps):
    old = apps[0]
    session = old.extensions["petition.sessionmaker"]()
    try:
        with old.app_context():
            campaign = make_campaign(session, title="Free the detained")
        make_organiser(session, email="org@example.org", campaign=campaign)
        return campaign
    finally:
        session.close()


def _move_session(source, target) -> None:
    """Give the target client the source client's session cookie (one browser, the server's
    key changed in between)."""
    cookie = source.get_cookie("session")
    assert cookie is not None
    target.set_cookie("session", cookie.value)


def test_keys_list_oldest_first_without_the_current_key(make_app):
    app = make_app(SECRET_KEY=NEW, SECRET_KEY_FALLBACKS=f" k2, k1\n{NEW} k2 ")
    assert app.config["SECRET_KEY_FALLBACKS"] == ["k2", "k1"]
    assert signing_keys(app.config) == ["k1", "k2", NEW]
    assert app.config["WTF_CSRF_SECRET_KEY"] == ["k1", "k2", NEW]
    assert make_app(SECRET_KEY=NEW, SECRET_KEY_FALLBACKS=["k3", ""]).config[
        "SECRET_KEY_FALLBACKS"] == ["k3"]
    plain = make_app(SECRET_KEY=NEW)
    assert plain.config["SECRET_KEY_FALLBACKS"] == []
    assert "WTF_CSRF_SECRET_KEY" not in plain.config


@pytest.mark.parametrize("value, expected", [('["k1", "k2"]', ["k1", "k2"]), ("k1", ["k1"]),
                                             ("k1,k2", ["k1", "k2"])])
def test_the_environment_variable_takes_a_json_list_or_separated_keys(
        make_app, monkeypatch, value, expected):
    monkeypatch.setenv("PETITION_SECRET_KEY_FALLBACKS", value)
    assert make_app(SECRET_KEY=NEW).config["SECRET_KEY_FALLBACKS"] == expected


def test_an_emailed_confirmation_link_still_confirms_with_the_fallback(apps, campaign):
    old, new, without = apps
    demand = campaign.demands[0]
    browser = old.test_client()
    token = csrf_token(browser, f"/petitions/{demand.slug}")
    response = browser.post(f"/petitions/{demand.slug}/sign",
                            data={"csrf_token": token, **signer()})
    assert response.status_code == 303
    outbox = Outbox(Path(old.config["OUTBOX_DIR"]))
    link = outbox.link(outbox.last(), "confirm")

    refused = without.test_client().get(link)
    assert refused.status_code == 404
    assert "This link is not valid" in refused.text
    page = new.test_client().get(link)
    assert page.status_code == 200
    assert "confirmed and counted" in page.text


def test_links_made_after_the_change_are_signed_with_the_new_key(apps, campaign):
    old, new, without = apps
    demand = campaign.demands[0]
    browser = new.test_client()
    token = csrf_token(browser, f"/petitions/{demand.slug}")
    response = browser.post(f"/petitions/{demand.slug}/sign",
                            data={"csrf_token": token, **signer(email="later@example.org")})
    assert response.status_code == 303
    outbox = Outbox(Path(new.config["OUTBOX_DIR"]))
    link = outbox.link(outbox.last(), "confirm")
    assert old.test_client().get(link).status_code == 404  # not the old key's
    page = without.test_client().get(link)  # the new key alone verifies it
    assert page.status_code == 200
    assert "confirmed and counted" in page.text


def test_a_form_opened_before_the_change_still_submits_with_the_fallback(apps, campaign):
    old, new, without = apps
    demand = campaign.demands[0]
    before = old.test_client()
    token = csrf_token(before, f"/petitions/{demand.slug}")  # page loaded, then the restart

    stale = without.test_client()
    _move_session(before, stale)
    refused = stale.post(f"/petitions/{demand.slug}/sign", data={"csrf_token": token, **signer()})
    assert refused.status_code == 400
    assert "Ayşe Yılmaz" in refused.text  # the form comes back with what was typed

    after = new.test_client()
    _move_session(before, after)
    response = after.post(f"/petitions/{demand.slug}/sign", data={"csrf_token": token, **signer()})
    assert response.status_code == 303, response.text


def test_an_organiser_stays_logged_in_with_the_fallback(apps, campaign):
    old, new, without = apps
    before = old.test_client()
    login(before)
    assert before.get("/organiser/").status_code == 200

    after = new.test_client()
    _move_session(before, after)
    home = after.get("/organiser/")
    assert home.status_code == 200
    assert "Free the detained" in home.text

    stale = without.test_client()
    _move_session(before, stale)
    response = stale.get("/organiser/")
    assert response.status_code in (302, 303)
    assert "/organiser/login" in response.headers["Location"]


def test_an_invitation_link_still_opens_with_the_fallback(apps, campaign):
    old, new, without = apps
    owner = old.test_client()
    login(owner)
    members = f"/organiser/campaigns/{campaign.slug}/members"
    token = csrf_token(owner, members)
    response = owner.post(members, data={"csrf_token": token, "action": "invite",
                                         "email": "new@example.org", "role": "editor"})
    assert response.status_code == 303
    match = re.search(r"http://petition\.test(/organiser/invitations/\S+)",
                      Outbox.text(Outbox(Path(old.config["OUTBOX_DIR"])).last()))
    assert match
    link = match.group(1)

    stale = without.test_client().get(link)
    assert 'name="password"' not in stale.text
    assert stale.status_code in (400, 404, 410)
    page = new.test_client().get(link)
    assert page.status_code == 200
    assert "Free the detained" in page.text and 'name="password"' in page.text
