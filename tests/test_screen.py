"""The big screen: page and screen.json content, privacy of the signer list, QR source, caching."""

from __future__ import annotations

import json
import re
from html import unescape

import pytest
from sqlalchemy import select

from petition.events import screen
from petition.events import services as events
from petition.models import (
    CampaignStatus,
    DemandStatus,
    Signature,
    SignatureStatus,
)
from petition.signing import counts
from petition.signing import services as signing
from tests.helpers import make_campaign
from tests.test_qr import decode

BASE = "http://petition.test"


def add_signature(db, demands, name, email, *, country="DE", public=True,  # noqa: ANN001, ANN201
                  confirm=True):
    """Sign through the signing service (and confirm), committed; returns the signature ids."""
    outcome = signing.sign(db, list(demands), signing.SignerInput(
        name=name, email=email, country=country, public_consent=public), "203.0.113.9")
    db.commit()
    if confirm:
        signing.confirm(db, outcome.created)
        db.commit()
    return outcome.created


@pytest.fixture
def campaign(db):  # noqa: ANN001, ANN201
    """An open campaign with two open demands (goal 100 each)."""
    return make_campaign(db, demands=2)


@pytest.fixture
def crowd(db, campaign):  # noqa: ANN001, ANN201
    """Signers of the first demand: only Ayşe and Elif are confirmed and consented to be listed."""
    demand = campaign.demands[0]
    add_signature(db, [demand], "Ayşe Yılmaz", "ayse@example.org", country="DE")
    add_signature(db, [demand], "Bora Demir", "bora@example.org", country="TR", public=False)
    add_signature(db, [demand], "Cem Kaya", "cem@example.org", country="FR", confirm=False)
    [withdrawn] = add_signature(db, [demand], "Deniz Akın", "deniz@example.org", country="NL")
    signing.withdraw(db, [withdrawn])
    db.commit()
    [invalid] = add_signature(db, [demand], "Ferhat Oral", "ferhat@example.org", country="BE")
    db.get(Signature, invalid).status = SignatureStatus.INVALIDATED
    counts.add(db, demand.id, -1)
    db.commit()
    add_signature(db, [demand], "Elif Nur Şahin", "elif@example.org", country="GB")
    return demand


HIDDEN = ["Yılmaz", "Bora", "Demir", "Cem", "Kaya", "Deniz", "Akın", "Ferhat", "Oral", "Nur",
          "Şahin", "@example.org"]


def test_json_lists_only_confirmed_consenting_first_names(client, crowd):
    response = client.get(f"/petitions/{crowd.slug}/screen.json")
    assert response.status_code == 200
    data = response.json
    assert data["kind"] == "petition" and data["slug"] == crowd.slug
    assert data["title"] == crowd.title
    assert data["count"] == 3  # Ayşe, Bora (not listed, but counted) and Elif
    assert data["goal"] == 100
    assert data["recent"] == [
        {"first_name": "Elif", "country": "GB", "country_name": "United Kingdom",
         "flag": "\U0001F1EC\U0001F1E7"},
        {"first_name": "Ayşe", "country": "DE", "country_name": "Germany",
         "flag": "\U0001F1E9\U0001F1EA"},
    ]
    text = json.dumps(data, ensure_ascii=False)  # the body escapes non-ASCII letters
    assert "Ayşe" in text
    for hidden in HIDDEN:
        assert hidden not in text


def test_page_shows_count_goal_qr_and_only_listed_first_names(client, crowd):
    response = client.get(f"/petitions/{crowd.slug}/screen")
    assert response.status_code == 200
    page = unescape(response.text)
    assert f"<h1 class=\"screen-title\">{crowd.title}</h1>" in page
    assert re.search(r"<span data-total>3</span>", page)
    assert 'max="100" value="3"' in page
    assert "Goal: <span data-goal>100</span>" in page
    assert "Scan to sign" in page
    assert f'src="/petitions/{crowd.slug}/qr.svg"' in page
    assert 'data-screen-url="/petitions/' + crowd.slug + '/screen.json"' in page
    names = re.findall(r'<span class="screen-name">([^<]*)</span>', page)
    assert names == ["Elif", "Ayşe"]
    assert "Germany" in page and "United Kingdom" in page
    for hidden in HIDDEN:
        assert hidden not in page
    # Strict CSP: scripts and styles only from files; the no-JS refresh only on this page.
    assert "style=" not in page
    assert re.findall(r"<script[^>]*>", page) == ['<script src="/static/js/screen.js" defer>']
    assert '<noscript><meta http-equiv="refresh" content="30"></noscript>' in page
    assert "/static/css/screen.css" in page


def test_new_confirmation_appears_at_once(client, db, campaign):
    demand = campaign.demands[1]
    first = client.get(f"/petitions/{demand.slug}/screen.json").json
    assert (first["count"], first["recent"]) == (0, [])
    assert "be the next to sign" in client.get(f"/petitions/{demand.slug}/screen").text
    [sid] = add_signature(db, [demand], "Gül Aras", "gul@example.org", country="TR", confirm=False)
    pending = client.get(f"/petitions/{demand.slug}/screen.json").json
    assert (pending["count"], pending["recent"]) == (0, [])
    signing.confirm(db, [sid])
    db.commit()
    data = client.get(f"/petitions/{demand.slug}/screen.json").json
    assert data["count"] == 1
    assert [r["first_name"] for r in data["recent"]] == ["Gül"]
    assert data["recent"][0]["country_name"] == "Türkiye"
    # Withdrawing takes the name off the screen too.
    signing.withdraw(db, [sid])
    db.commit()
    data = client.get(f"/petitions/{demand.slug}/screen.json").json
    assert (data["count"], data["recent"]) == (0, [])


def test_newest_five_in_confirmation_order_decrypting_only_those(client, db, campaign, app,
                                                                  monkeypatch):
    demand = campaign.demands[0]
    ids = []
    for i in range(8):
        ids += add_signature(db, [demand], f"Person{i} Surname", f"p{i}@example.org",
                             confirm=False)
    for sid in reversed(ids):  # confirmed in reverse order of signing
        signing.confirm(db, [sid])
        db.commit()
    cipher = app.extensions["petition.cipher"]
    calls: list[str] = []
    real = cipher.decrypt

    def counting(blob, field):  # noqa: ANN001, ANN202
        calls.append(field)
        return real(blob, field)

    monkeypatch.setattr(cipher, "decrypt", counting)
    data = client.get(f"/petitions/{demand.slug}/screen.json").json
    assert [r["first_name"] for r in data["recent"]] == [f"Person{i}" for i in range(5)]
    assert calls == ["signature.name"] * 5
    # Polling again with no change decrypts nothing (cached until a count changes).
    client.get(f"/petitions/{demand.slug}/screen.json")
    assert len(calls) == 5


def test_old_signatures_are_found_beyond_the_recent_window(client, db, campaign):
    """An old petition whose last listed signers signed long ago still shows them."""
    import datetime as dt

    demand = campaign.demands[0]
    [old] = add_signature(db, [demand], "Hasan Old", "hasan@example.org")
    long_ago = signing.utcnow() - dt.timedelta(days=400)
    row = db.get(Signature, old)
    row.created_at, row.confirmed_at = long_ago, long_ago + dt.timedelta(days=1)
    db.commit()
    add_signature(db, [demand], "Irem New", "irem@example.org")
    data = client.get(f"/petitions/{demand.slug}/screen.json").json
    assert [r["first_name"] for r in data["recent"]] == ["Irem", "Hasan"]


def test_campaign_screen_totals_and_per_demand_counts(client, db, campaign):
    first, second = campaign.demands
    add_signature(db, [first, second], "Jale Tan", "jale@example.org", country="SE")
    add_signature(db, [first], "Kerem Uz", "kerem@example.org", country="AT", public=False)
    add_signature(db, [second], "Lale Su", "lale@example.org", country="CH", confirm=False)
    data = client.get(f"/campaigns/{campaign.slug}/screen.json").json
    assert data["kind"] == "campaign" and data["title"] == campaign.title
    assert data["count"] == 3 and data["goal"] == 200
    assert [(d["slug"], d["count"], d["goal"]) for d in data["demands"]] == [
        (first.slug, 2, 100), (second.slug, 1, 100)]
    # Jale signed both demands and is listed once.
    assert [r["first_name"] for r in data["recent"]] == ["Jale"]

    page = unescape(client.get(f"/campaigns/{campaign.slug}/screen").text)
    assert "<span data-total>3</span>" in page
    assert "signatures on 2 demands" in page
    assert re.findall(r'<span class="screen-demand-count" data-count>(\d+)</span>', page) == ["2", "1"]
    assert re.findall(r'<span class="screen-name">([^<]*)</span>', page) == ["Jale"]
    for hidden in ("Kerem", "Lale", "Tan", "@example.org"):
        assert hidden not in page
    assert f'src="/campaigns/{campaign.slug}/qr.svg"' in page


def test_draft_demands_are_left_out_of_the_campaign_screen(client, db):
    campaign = make_campaign(db, demands=1)
    from petition.organiser.services import add_demand

    draft = add_demand(db, campaign, title="Not yet", target="", goal=50,
                       status=DemandStatus.DRAFT, body="")
    db.commit()
    data = client.get(f"/campaigns/{campaign.slug}/screen.json").json
    assert [d["slug"] for d in data["demands"]] == [campaign.demands[0].slug]
    assert draft.slug not in client.get(f"/campaigns/{campaign.slug}/screen").text


@pytest.mark.parametrize("which", ["petition", "campaign"])
def test_qr_code_carries_the_source_of_the_screen_url(client, db, campaign, which):
    demand = campaign.demands[0]
    path = f"/petitions/{demand.slug}" if which == "petition" else f"/campaigns/{campaign.slug}"
    page = unescape(client.get(f"{path}/screen?src=hall-screen").text)
    [img] = re.findall(r'<img src="([^"]+)"', page)
    assert img == f"{path}/qr.svg?src=hall-screen"
    response = client.get(img)
    assert response.status_code == 200
    assert decode(response.data, "svg") == f"{BASE}{path}?src=hall-screen"
    # Without a source the code has none; a malformed one is cleaned like everywhere else.
    assert re.findall(r'<img src="([^"]+)"', client.get(f"{path}/screen").text) == [f"{path}/qr.svg"]
    odd = unescape(client.get(f"{path}/screen?src=<b>x y</b>").text)
    assert re.findall(r'<img src="([^"]+)"', odd) == [f"{path}/qr.svg?src=bxyb"]


def test_link_under_the_qr_code_is_the_event_short_link(client, db, campaign):
    demand = campaign.demands[0]
    events.create_event(db, campaign, events.EventInput(
        name="Hall", date=signing.utcnow().date(), code="hall-7", demand_id=demand.id),
        organiser_id=None)
    db.commit()
    page = client.get(f"/petitions/{demand.slug}/screen?src=hall-7").text
    assert '<span class="screen-link">petition.test/e/hall-7</span>' in page
    page = client.get(f"/petitions/{demand.slug}/screen?src=no-event").text
    assert f'<span class="screen-link">petition.test/petitions/{demand.slug}</span>' in page


@pytest.mark.parametrize("suffix", ["screen", "screen.json"])
def test_unknown_and_draft_are_404(client, db, suffix):
    draft = make_campaign(db, title="Draft campaign", demands=1, status=CampaignStatus.DRAFT)
    draft_demand = make_campaign(db, title="Open", demands=1, demand_status=DemandStatus.DRAFT)
    for path in (f"/petitions/nope/{suffix}", f"/campaigns/nope/{suffix}",
                 f"/campaigns/{draft.slug}/{suffix}", f"/petitions/{draft.demands[0].slug}/{suffix}",
                 f"/petitions/{draft_demand.demands[0].slug}/{suffix}"):
        assert client.get(path).status_code == 404, path


def test_closed_campaign_still_has_its_screen(client, db):
    campaign = make_campaign(db, demands=1, status=CampaignStatus.CLOSED)
    assert client.get(f"/campaigns/{campaign.slug}/screen").status_code == 200
    assert client.get(f"/petitions/{campaign.demands[0].slug}/screen.json").status_code == 200


def test_json_is_cheap_to_poll(client, crowd, db):
    path = f"/petitions/{crowd.slug}/screen.json"
    first = client.get(path)
    assert first.headers["ETag"]
    assert first.cache_control.max_age == 1 and first.cache_control.public
    again = client.get(path, headers={"If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304 and again.data == b""
    add_signature(db, [crowd], "Mert Can", "mert@example.org")
    changed = client.get(path, headers={"If-None-Match": first.headers["ETag"]})
    assert changed.status_code == 200 and changed.json["count"] == 4
    assert changed.json["recent"][0]["first_name"] == "Mert"


def test_poll_interval_keeps_within_five_seconds(make_app, db, campaign):
    app = make_app(COUNT_POLL_SECONDS=30)
    page = app.test_client().get(f"/petitions/{campaign.demands[0].slug}/screen").text
    assert 'data-poll="3"' in page


@pytest.mark.parametrize(("name", "first"), [
    ("Ayşe Yılmaz", "Ayşe"), ("  Elif\u00a0Nur ", "Elif"), ("Madonna", "Madonna"),
    ("", None), ("   ", None), (None, None), ("X" * 100 + " Y", "X" * screen.FIRST_NAME_MAX),
])
def test_first_name(name, first):
    assert screen.first_name(name) == first


def test_flag_and_country_name():
    signer = screen.RecentSigner("Ayşe", "DE")
    assert signer.flag == "\U0001F1E9\U0001F1EA"
    assert signer.country_name == "Germany"
    assert screen.RecentSigner("Ayşe", None).as_json() == {
        "first_name": "Ayşe", "country": "", "country_name": "", "flag": ""}


def test_no_email_or_surname_in_any_screen_output(client, db, campaign):
    add_signature(db, campaign.demands, "Nazlı Secret-Surname", "nazli.private@example.org")
    outputs = [client.get(f"/campaigns/{campaign.slug}/screen").text,
               json.dumps(client.get(f"/campaigns/{campaign.slug}/screen.json").json,
                          ensure_ascii=False)]
    outputs += [json.dumps(client.get(f"/petitions/{d.slug}/screen.json").json, ensure_ascii=False)
                for d in campaign.demands]
    for text in outputs:
        assert "Nazlı" in text
        assert "Secret" not in text and "nazli.private" not in text
    assert db.scalar(select(Signature.id).where(Signature.public_consent.is_(True))) is not None
