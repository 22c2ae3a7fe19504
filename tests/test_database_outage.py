"""PostgreSQL goes away (a restart, a failover, a network fault) and comes back.

The app reaches PostgreSQL through a TCP forwarder that the test cuts: every connection is
dropped and new ones are refused, as when the server restarts. Public pages and count polls
keep showing what they last read; a signature sent meanwhile gets its form back with the
details kept and a 503 saying what happened, and nothing half-written is left; pages that
need the database say it is unavailable (503, Retry-After) instead of an error; and once the
database is back, sending the same form again signs; the outbox worker waits for it and
then sends what was queued.
"""

from __future__ import annotations

import logging
import re
import sqlite3
import threading
import time
from collections.abc import Iterator
from html import unescape
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.exc import OperationalError

from petition import mail
from petition.db import get_session
from petition.models import Campaign, Signature
from tests.conftest import PG_URL, Outbox
from tests.helpers import csrf_token, make_campaign, make_organiser, signer
from tests.tcpproxy import TcpProxy
from tests.test_kiosk import add_event, hidden, start_kiosk
from tests.test_validation import Page, _assert_kept, _written


def postgresql_only(test: Any) -> Any:
    """The app reaches PostgreSQL through the forwarder (an SQLite file has no connection)."""
    test = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)(test)
    return pytest.mark.skipif(not PG_URL, reason="needs PostgreSQL (PETITION_TEST_DATABASE_URL)")(test)

NOT_SAVED = ("Your signature could not be saved just now: the site cannot reach its database. "
             "Your details are kept below: please send the form again in a minute.")
UNAVAILABLE_PAGE = "The site cannot reach its database just now."
KIOSK_OFFLINE = "This kiosk cannot reach the site's database just now."
TTL = 0.3  # the display cache's lifetime in these tests


def _through(proxy: TcpProxy, url: str) -> str:
    parts = urlsplit(url)
    user = parts.netloc.rsplit("@", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{user}@127.0.0.1:{proxy.port}"))


@pytest.fixture
def proxy(database_url: str) -> Iterator[TcpProxy]:
    parts = urlsplit(database_url)
    forwarder = TcpProxy(parts.hostname or "127.0.0.1", parts.port or 5432)
    forwarder.start()
    yield forwarder
    forwarder.stop()


@pytest.fixture
def world(make_app: Any, database_url: str, proxy: TcpProxy) -> dict[str, Any]:
    """A campaign made directly; the app under test reaches the database through the proxy."""
    direct = make_app()
    with direct.app_context():
        campaign = make_campaign(get_session(), demands=2)
        ids = [d.id for d in campaign.demands]
        found = {"campaign": campaign.slug, "campaign_id": campaign.id,
                 "demand": campaign.demands[0].slug, "ids": ids}
    app = make_app(DATABASE_URL=_through(proxy, database_url), DISPLAY_CACHE_SECONDS=TTL,
                   DB_PING_IDLE_SECONDS=0.1)
    return {**found, "direct": direct, "app": app, "client": app.test_client()}


def _stored(direct: Flask) -> tuple[int, int]:
    with direct.app_context():
        return _written(get_session())


def _outage(proxy: TcpProxy) -> None:
    proxy.cut()
    time.sleep(TTL * 2)  # what the app read before is no longer fresh


@postgresql_only
def test_pages_and_polls_show_what_they_last_read(world: dict[str, Any], proxy: TcpProxy) -> None:
    client: FlaskClient = world["client"]
    paths = [f"/petitions/{world['demand']}", f"/campaigns/{world['campaign']}",
             f"/petitions/{world['demand']}/count.json", f"/campaigns/{world['campaign']}/counts.json"]
    before = {path: client.get(path) for path in paths}
    assert [r.status_code for r in before.values()] == [200] * 4
    _outage(proxy)
    for path, earlier in before.items():
        response = client.get(path)
        assert response.status_code == 200, path
        if path.endswith(".json"):
            assert response.json == earlier.json
        else:
            assert "Demand number 1" in response.text
            assert 'name="csrf_token"' in response.text  # the form is there to fill in


@postgresql_only
@pytest.mark.parametrize("form", ["petition", "campaign"])
def test_a_signature_sent_meanwhile_gets_its_form_back_and_signs_once_it_is_back(
        world: dict[str, Any], proxy: TcpProxy, form: str) -> None:
    client: FlaskClient = world["client"]
    path = f"/petitions/{world['demand']}" if form == "petition" else f"/campaigns/{world['campaign']}"
    fields = signer(name="Zoë Ünal", email="zoe@example.org", country="TR", postcode="34000")
    data = {**fields, "csrf_token": csrf_token(client, path)}
    if form == "campaign":
        data["demands"] = [str(i) for i in world["ids"]]
    _outage(proxy)

    response = client.post(f"{path}/sign", data=data)
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "30"
    page = Page(response.text)
    assert page.form_errors == [NOT_SAVED]
    _assert_kept(page, fields)
    if form == "campaign":
        assert page.checked.get("demands") == [str(i) for i in world["ids"]]
    data["csrf_token"] = page.values["csrf_token"]  # what the browser sends again
    assert _stored(world["direct"]) == (0, 0)

    proxy.restore()
    again = client.post(f"{path}/sign", data=data)
    assert again.status_code == 303, again.text
    assert _stored(world["direct"]) == (1 if form == "petition" else 2, 1)


@postgresql_only
def test_pages_that_need_the_database_say_it_is_unavailable(
        world: dict[str, Any], proxy: TcpProxy) -> None:
    client: FlaskClient = world["client"]
    assert client.get("/").status_code == 200
    _outage(proxy)
    response = client.get("/")  # the list of campaigns is read from the database each time
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "30"
    assert UNAVAILABLE_PAGE in response.text
    proxy.restore()
    assert client.get("/").status_code == 200


@postgresql_only
def test_with_nothing_read_before_the_pages_say_it_is_unavailable(
        make_app: Any, world: dict[str, Any], proxy: TcpProxy, database_url: str) -> None:
    app = make_app(DATABASE_URL=_through(proxy, database_url), DISPLAY_CACHE_SECONDS=TTL,
                   DISPLAY_STALE_SECONDS=0)
    client = app.test_client()
    assert client.get(f"/petitions/{world['demand']}").status_code == 200
    _outage(proxy)
    for path in [f"/petitions/{world['demand']}", f"/petitions/{world['demand']}/count.json"]:
        response = client.get(path)
        assert response.status_code == 503, path
        assert response.headers["Retry-After"] == "30"
    assert client.get(f"/petitions/{world['demand']}/count.json").json["detail"].startswith(
        UNAVAILABLE_PAGE)


@postgresql_only
def test_the_outbox_worker_waits_for_the_database_and_then_sends(
        make_app: Any, world: dict[str, Any], proxy: TcpProxy, database_url: str,
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    app = make_app(DATABASE_URL=_through(proxy, database_url), MAIL_DELIVERY="worker",
                   DB_PING_IDLE_SECONDS=0.1)
    client = app.test_client()
    path = f"/petitions/{world['demand']}"
    response = client.post(f"{path}/sign", data={**signer(), "csrf_token": csrf_token(client, path)})
    assert response.status_code == 303
    sent_folder = Path(app.config["OUTBOX_DIR"])
    assert not list(sent_folder.glob("*.eml"))  # queued for the worker

    proxy.cut()
    stop = threading.Event()
    errors: list[BaseException] = []

    def work() -> None:
        with app.app_context():
            try:
                mail.run_worker(once=False, interval=0.1, stop=stop)
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

    worker = threading.Thread(target=work)
    with caplog.at_level(logging.WARNING, logger="petition.mail"):
        worker.start()
        time.sleep(1)
        assert worker.is_alive(), errors  # it waits for the database instead of dying
        assert not list(sent_folder.glob("*.eml"))
        proxy.restore()
        deadline = time.monotonic() + 20
        while not list(sent_folder.glob("*.eml")):
            assert time.monotonic() < deadline, "the queued email was not sent after the outage"
            time.sleep(0.1)
        stop.set()
        worker.join(10)
    assert not errors
    messages = [r.getMessage() for r in caplog.records if r.name == "petition.mail"]
    assert sum("database unavailable" in m for m in messages) == 1  # said once, not every 0.1 s
    assert "outbox worker: database reachable again" in messages
    with pytest.raises(OperationalError):  # a single pass (a cron job) fails visibly instead
        proxy.cut()
        with app.app_context():
            mail.run_worker(once=True, interval=0.1)


@postgresql_only
def test_the_log_names_the_route_not_the_link_token(
        make_app: Any, world: dict[str, Any], proxy: TcpProxy, database_url: str,
        caplog: pytest.LogCaptureFixture) -> None:
    app = make_app(DATABASE_URL=_through(proxy, database_url))
    client = app.test_client()
    path = f"/petitions/{world['demand']}"
    assert client.post(f"{path}/sign", data={**signer(), "csrf_token": csrf_token(client, path)}
                       ).status_code == 303
    link = Outbox.link(Outbox(Path(app.config["OUTBOX_DIR"])).last(), "confirm")
    token = link.rsplit("/", 1)[1]
    proxy.cut()
    with caplog.at_level(logging.ERROR, logger="petition.errors"):
        response = client.get(link)
    assert response.status_code == 503
    logged = [r.getMessage() for r in caplog.records if r.name == "petition.errors"]
    assert logged == [logged[0]] and "GET /signatures/confirm/<token>" in logged[0]
    assert token not in caplog.text


def _kiosk(world: dict[str, Any], app: Flask) -> FlaskClient:
    """A browser of app made a kiosk for an event of the world's campaign (its first demand)."""
    with world["direct"].app_context():
        db = get_session()
        campaign = db.get(Campaign, world["campaign_id"])
        event_id = add_event(db, campaign, "Stall", "stall-1", world["ids"][0]).id
        make_organiser(db, campaign=campaign, role="owner")
        db.commit()
    client = app.test_client()
    assert start_kiosk(client, world["campaign"], event_id).status_code == 303
    return client


@postgresql_only
def test_a_kiosk_keeps_its_form_and_the_typed_details(
        world: dict[str, Any], proxy: TcpProxy) -> None:
    """A stall's kiosk during a database restart: the next person still gets the form; their
    signature comes back with the details kept (503), and signs once the database is back."""
    kiosk = _kiosk(world, world["app"])
    assert kiosk.get("/kiosk").status_code == 200
    _outage(proxy)

    shown = kiosk.get("/kiosk")
    assert shown.status_code == 200
    assert "Demand number 1" in shown.text and 'name="form_nonce"' in shown.text
    fields = signer(name="Zoë Ünal", email="zoe@example.org", country="TR", postcode="34000")
    data = {**hidden(shown.text), **fields}
    response = kiosk.post("/kiosk", data=data)
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "30"
    assert response.headers["Cache-Control"] == "no-store"
    page = Page(response.text)
    assert page.form_errors == [NOT_SAVED]
    _assert_kept(page, fields)
    assert _stored(world["direct"]) == (0, 0)

    proxy.restore()
    again = kiosk.post("/kiosk", data={**hidden(response.text), **fields})
    assert again.status_code == 303 and again.headers["Location"] == "/kiosk/thanks"
    assert _stored(world["direct"]) == (1, 1)
    with world["direct"].app_context():
        assert get_session().query(Signature.source).scalar() == "stall-1"


@postgresql_only
def test_a_kiosk_with_nothing_read_before_tries_again_by_itself(
        make_app: Any, world: dict[str, Any], proxy: TcpProxy, database_url: str) -> None:
    """A process started during the outage has no form to show: the kiosk gets a kiosk
    screen (no way off the kiosk but the organisers' exit) that reloads itself, and its form
    once the database is back. Other pages of the same blueprint keep the site's error page."""
    app = make_app(DATABASE_URL=_through(proxy, database_url), DISPLAY_CACHE_SECONDS=TTL,
                   DISPLAY_STALE_SECONDS=0)
    kiosk = _kiosk(world, app)
    _outage(proxy)
    for method, path, again in [("get", "/kiosk", "/kiosk"), ("post", "/kiosk", "/kiosk")]:
        response = getattr(kiosk, method)(path, data={**signer()} if method == "post" else None)
        assert response.status_code == 503, (method, path)
        assert response.headers["Retry-After"] == "30"
        assert response.headers["Cache-Control"] == "no-store"
        assert KIOSK_OFFLINE in unescape(response.text)
        assert f'<meta http-equiv="refresh" content="30;url={again}">' in response.text
        assert sorted(set(re.findall(r'href="(/[^"]*)"', response.text))) == [
            "/kiosk", "/kiosk/exit", *sorted(re.findall(r'href="(/static/[^"]*)"', response.text))]
    short = kiosk.get("/e/stall-1")  # the events blueprint, not a kiosk page
    assert short.status_code == 503 and UNAVAILABLE_PAGE in short.text
    proxy.restore()
    assert kiosk.get("/kiosk").status_code == 200


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_sqlite_locked_past_the_busy_timeout_gives_the_form_back(
        make_app: Any, database_url: str) -> None:
    """Another process holds SQLite's write lock (a long import, say) for longer than the
    busy timeout: the signature gets its form back like in an outage, and signs after."""
    app = make_app(DB_BUSY_TIMEOUT_SECONDS=0.2)
    with app.app_context():
        slug = make_campaign(get_session(), demands=1).demands[0].slug
    client = app.test_client()
    path = f"/petitions/{slug}"
    fields = signer(name="Zoë Ünal", email="zoe@example.org", country="TR", postcode="34000")
    data = {**fields, "csrf_token": csrf_token(client, path)}
    holder = sqlite3.connect(database_url.removeprefix("sqlite:///"), isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        response = client.post(f"{path}/sign", data=data)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert response.status_code == 503
    page = Page(response.text)
    assert page.form_errors == [NOT_SAVED]
    _assert_kept(page, fields)
    assert _stored(app) == (0, 0)
    assert client.post(f"{path}/sign", data={**data, "csrf_token": page.values["csrf_token"]}
                       ).status_code == 303
    assert _stored(app) == (1, 1)
