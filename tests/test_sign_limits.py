"""Sign rate limits: what they count (a network, never an address kept in clear), the larger
allowance for an event's crowd on its day, and what a supporter over a limit is told."""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from html import unescape

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from petition.config import ConfigError
from petition.db import get_session
from petition.events import services as events
from petition.extensions import client_network, limiter
from petition.models import Campaign, Signature
from tests.helpers import make_campaign, signer

FORMS = ("petition", "campaign")
EVENT_LIMIT = "4 per minute"


@pytest.mark.parametrize(("address", "network"), [
    ("203.0.113.7", "203.0.113.7"),
    ("2001:db8:1:2::1", "2001:db8:1:2::/64"),
    ("2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64"),
    ("2001:DB8:1:2:0:0:0:9", "2001:db8:1:2::/64"),
    ("2001:db8:1:3::1", "2001:db8:1:3::/64"),
    ("::ffff:203.0.113.7", "203.0.113.7"),
    ("not an address", "not an address"),
    (None, "-"),
    ("", "-"),
])
def test_a_limit_counts_a_network(address, network):
    assert client_network(address) == network


def _client(app: Flask, address: str = "203.0.113.7") -> FlaskClient:
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    return client


def _path(campaign: Campaign, form: str) -> str:
    if form == "campaign":
        return f"/campaigns/{campaign.slug}"
    return f"/petitions/{campaign.demands[0].slug}"


def _hidden(page: str) -> dict[str, str]:
    fields = {}
    for tag in re.findall(r'<input\b[^>]*type="hidden"[^>]*>', page):
        name, value = re.search(r'name="([^"]*)"', tag), re.search(r'value="([^"]*)"', tag)
        if name:
            fields[name.group(1)] = unescape(value.group(1)) if value else ""
    return fields


def _sign(client: FlaskClient, campaign: Campaign, form: str, email: str, src: str | None = None,
          **fields: str):  # noqa: ANN202
    """Open the page (with ?src= if given, as from an event's QR code) and send its form."""
    path = _path(campaign, form)
    page = client.get(path, query_string={"src": src} if src else None)
    assert page.status_code == 200
    data: dict[str, object] = {**_hidden(page.text), **signer(email=email, **fields)}
    if src:
        assert data["src"] == src  # the form carries the event's code back
    if form == "campaign":
        data["demands"] = [str(campaign.demands[0].id)]
    return client.post(f"{path}/sign", data=data)


def _statuses(client: FlaskClient, campaign: Campaign, form: str, n: int, tag: str,
              src: str | None = None) -> list[int]:
    return [_sign(client, campaign, form, f"{tag}{i}@example.org", src).status_code
            for i in range(n)]


def _world(app: Flask, *event_days: int) -> tuple[Campaign, Campaign, list[str]]:
    """Two campaigns; the first has an event on each of event_days (days from today, UTC),
    with codes day<N>; the second one event today, code other-today."""
    today = dt.datetime.now(dt.UTC).date()
    with app.app_context():
        db = get_session()
        campaign, other = make_campaign(db, title="Ours"), make_campaign(db, title="Theirs")
        codes = []
        for days in event_days:
            code = f"day{days}".replace("-", "m")
            events.create_event(db, campaign, events.EventInput(
                name=f"Rally {days}", date=today + dt.timedelta(days=days), code=code),
                organiser_id=None)
            codes.append(code)
        events.create_event(db, other, events.EventInput(
            name="Their rally", date=today, code="other-today"), organiser_id=None)
        db.commit()
        return campaign, other, codes


@pytest.fixture
def limited(make_app) -> Flask:  # noqa: ANN001
    return make_app(RATELIMIT_ENABLED=True, RATELIMIT_SIGN="2 per minute",
                    RATELIMIT_SIGN_EVENT=EVENT_LIMIT)


@pytest.mark.parametrize("form", FORMS)
def test_addresses_of_one_ipv6_network_share_one_limit(limited, form):
    campaign, _other, _codes = _world(limited)
    statuses = [
        _sign(_client(limited, f"2001:db8:1:2::{i + 1}"), campaign, form, f"v6{i}@example.org").status_code
        for i in range(3)
    ]
    assert statuses == [303, 303, 429]  # a new address in the same /64 is the same client
    other_network = _client(limited, "2001:db8:1:3::1")
    assert _sign(other_network, campaign, form, "v6next@example.org").status_code == 303


def test_the_limiter_keeps_no_client_address(limited):
    campaign, _other, codes = _world(limited, 0)
    client = _client(limited, "198.51.100.23")
    assert _statuses(client, campaign, "petition", 3, "kept") == [303, 303, 429]
    assert _sign(client, campaign, "petition", "kept-event@example.org", codes[0]).status_code == 303
    keys = list(limiter.storage.storage)  # memory storage: its counters by key
    assert len(keys) >= 2
    assert not [k for k in keys if "198.51.100" in k]


@pytest.mark.parametrize("form", FORMS)
def test_an_event_crowd_on_its_day_gets_the_event_allowance(limited, form):
    """At a rally everyone on the venue's Wi-Fi signs from one address: with the event's
    code (from its QR code) on its day they share the larger event allowance, counted apart
    from the network's own limit."""
    campaign, _other, codes = _world(limited, 0)
    venue = _client(limited)
    assert _statuses(venue, campaign, form, 5, "crowd", codes[0]) == [303, 303, 303, 303, 429]
    assert _statuses(venue, campaign, form, 3, "plain") == [303, 303, 429]
    with limited.app_context():
        sources = get_session().scalars(select(Signature.source)).all()
    assert Counter(sources) == {codes[0]: 4, None: 2}  # four with the code, two without


@pytest.mark.parametrize("days", [-1, 1])
def test_the_allowance_holds_the_day_before_and_after(limited, days):
    campaign, _other, codes = _world(limited, days)
    assert _statuses(_client(limited), campaign, "petition", 5, "near", codes[0]) == \
        [303, 303, 303, 303, 429]


@pytest.mark.parametrize("case", ["three days ago", "in two days", "another campaign's event",
                                  "unknown code", "code in capitals"])
def test_a_code_gives_no_allowance_off_its_day_or_campaign(limited, case):
    campaign, _other, codes = _world(limited, -3, 2, 0)
    src = {"three days ago": codes[0], "in two days": codes[1],
           "another campaign's event": "other-today", "unknown code": "no-such-event",
           "code in capitals": codes[2].upper()}[case]
    expected = [303, 303, 303, 303, 429] if case == "code in capitals" else [303, 303, 429]
    assert _statuses(_client(limited), campaign, "petition", len(expected), "off", src) == expected


@pytest.mark.parametrize("form", FORMS)
def test_over_a_longer_limit_the_message_says_when_to_sign_again(make_app, form):
    app = make_app(RATELIMIT_ENABLED=True, RATELIMIT_SIGN="100 per minute;2 per hour")
    campaign, _other, _codes = _world(app)
    client = _client(app)
    assert _statuses(client, campaign, form, 2, "hour") == [303, 303]
    fields = {"name": "Zoë Ünal", "country": "TR", "postcode": "34000"}
    response = _sign(client, campaign, form, "zoe@example.org", **fields)
    assert response.status_code == 429
    wait = int(response.headers["Retry-After"])
    assert 60 < wait <= 3601
    minutes = -(-wait // 60)
    text = unescape(response.text)
    assert ("Too many signatures were sent from your network recently (at events many people "
            "share one connection). Your details are kept below: please sign again in "
            f"{minutes} minutes.") in text
    assert 'value="zoe@example.org"' in text and "Zoë Ünal" in text and 'value="34000"' in text


def test_within_a_minute_the_answer_says_to_wait_a_minute(limited):
    campaign, _other, _codes = _world(limited)
    client = _client(limited)
    assert _statuses(client, campaign, "petition", 3, "minute") == [303, 303, 429]
    response = _sign(client, campaign, "petition", "again@example.org")
    assert response.status_code == 429
    assert 0 < int(response.headers["Retry-After"]) <= 61
    assert "please wait a minute and sign again" in response.text


@pytest.mark.parametrize("setting", ["RATELIMIT_SIGN", "RATELIMIT_SIGN_EVENT", "RATELIMIT_LOGIN"])
@pytest.mark.parametrize("value", ["lots", "", "60 per fortnight", 60])
def test_a_rate_limit_that_cannot_be_read_stops_the_start(make_app, setting, value):
    """flask-limiter skips a limit it cannot parse on every request (signing would be
    unlimited): the app refuses to start and says what to write instead."""
    with pytest.raises(ConfigError) as caught:
        make_app(**{setting: value})
    message = str(caught.value)
    assert message.startswith(f"PETITION_{setting}: {value!r} is not a rate limit.")
    assert "'60 per minute;600 per hour'" in message


def test_moderation_groups_a_network_as_the_limits_count_it(app):
    """The stored IP hash is of the network too: a client stepping through the addresses
    of its IPv6 /64 still shows as one source of signatures to moderators."""
    campaign, _other, _codes = _world(app)
    for i, address in enumerate(["2001:db8:1:2::1", "2001:db8:1:2::2", "2001:db8:1:3::1",
                                 "203.0.113.7"]):
        assert _sign(_client(app, address), campaign, "petition", f"m{i}@example.org").status_code == 303
    with app.app_context():
        cipher = app.extensions["petition.cipher"]
        hashes = get_session().scalars(select(Signature.ip_hash).order_by(Signature.id)).all()
        assert hashes == [cipher.ip_hash("2001:db8:1:2::/64")] * 2 + [
            cipher.ip_hash("2001:db8:1:3::/64"), cipher.ip_hash("203.0.113.7")]


def test_the_limiter_hook_for_every_request_is_dropped_when_idle(make_app):
    """flask-limiter's before_request hook only looks for whole-app limits, which the app
    does not set; the views' own limits (the tests above) are checked by their decorators."""
    app = make_app(RATELIMIT_ENABLED=True)
    assert limiter._check_request_limit not in app.before_request_funcs.get(None, [])


def test_whole_app_limits_still_apply_when_configured(make_app):
    """An operator's PETITION_RATELIMIT_DEFAULT keeps the hook, and so its limit."""
    try:
        app = make_app(RATELIMIT_ENABLED=True, RATELIMIT_DEFAULT="2 per minute")
        assert limiter._check_request_limit in app.before_request_funcs[None]
        client = _client(app)
        assert [client.get("/").status_code for _ in range(3)] == [200, 200, 429]
    finally:  # the limiter is one object for the process: later apps must not inherit it
        limiter.limit_manager.set_default_limits([])


@pytest.mark.parametrize("form", FORMS)
def test_requests_in_one_app_context_each_count_their_own_network_and_code(limited, form):
    """The limit key, the event and the form read for it are kept per request, not on the
    app context's g, which requests share when a context was pushed around them: each
    request here is counted for its own network and its own code and signs its own address.
    (One browser, whose address changes: Flask-WTF keeps its CSRF token on g.)"""
    campaign, _other, codes = _world(limited, 0)
    browser = _client(limited)

    def sign(address: str, email: str, src: str | None = None) -> int:
        browser.environ_base["REMOTE_ADDR"] = address
        return _sign(browser, campaign, form, email, src).status_code

    with limited.app_context():
        # 198.51.100.1's event allowance (4) and 198.51.100.2's own limit (2) stay apart
        assert [sign("198.51.100.1", f"one{i}@example.org", codes[0]) for i in range(2)] == [303] * 2
        assert [sign("198.51.100.2", f"two{i}@example.org") for i in range(3)] == [303, 303, 429]
        assert [sign("198.51.100.1", f"one{i}@example.org", codes[0])
                for i in range(2, 5)] == [303, 303, 429]
        db = get_session()
        sources = Counter(db.scalars(select(Signature.source)))
        email_keys = set(db.scalars(select(Signature.email_key)))
    assert sources == {codes[0]: 4, None: 2}
    assert len(email_keys) == 6  # six addresses: no request signed with another's form
