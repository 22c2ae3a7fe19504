"""Moderation: search, invalidation by filter (preview, confirm, undo), audit log, access."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from petition.models import AuditEntry, Signature, SignatureStatus
from petition.signing import counts
from tests.helpers import csrf_token, login, make_campaign, make_organiser, sign_petition
from tests.test_dashboard import (  # fast_passwords: an autouse fixture
    add_signature,
    app_session,
    fast_passwords,  # noqa: F401
)

P = SignatureStatus.PENDING
BAD_IP = "198.51.100.66"
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def world(app: Flask) -> dict[str, object]:
    """A campaign with fraud from one IP and one domain, plus another campaign with the same."""
    with app_session(app) as s:
        campaign = make_campaign(s, title="Free them all", demands=2)
        other = make_campaign(s, title="Other campaign", demands=1)
        d1, d2 = (d.id for d in campaign.demands)
        od = other.demands[0].id
        ids = {
            "good1": add_signature(s, d1, email="ayse@example.org", name="Ayşe Yılmaz",
                                   country="DE", source="stall-1", created_at=T0),
            "good2": add_signature(s, d2, email="ayse@example.org", name="Ayşe Yılmaz",
                                   country="DE", source="stall-1", created_at=T0),
            "good3": add_signature(s, d1, email="omar@example.net", name="Omar K",
                                   status=P, country="TR", created_at=T0 + timedelta(days=1)),
            "bad1": add_signature(s, d1, email="bot1@spam.example", name="Bot One", ip=BAD_IP,
                                  country="US", source="web", created_at=T0 + timedelta(days=2)),
            "bad2": add_signature(s, d2, email="bot2@spam.example", name="Bot Two", ip=BAD_IP,
                                  country="US", source="web", created_at=T0 + timedelta(days=2)),
            "bad3": add_signature(s, d1, email="bot3@spam.example", name="Bot Three", ip=BAD_IP,
                                  status=P, country="US", source="web",
                                  created_at=T0 + timedelta(days=2, hours=1)),
            # Another campaign, matching every filter used here: must never be touched.
            "foreign1": add_signature(s, od, email="bot1@spam.example", ip=BAD_IP,
                                      country="US", source="web",
                                      created_at=T0 + timedelta(days=2)),
            "foreign2": add_signature(s, od, email="ayse@example.org", country="DE",
                                      source="stall-1", created_at=T0),
        }
        make_organiser(s, email="owner@example.org", campaign=campaign, role="owner")
        make_organiser(s, email="editor@example.org", campaign=campaign, role="editor")
        make_organiser(s, email="viewer@example.org", campaign=campaign, role="viewer")
        make_organiser(s, email="stranger@example.org", campaign=other, role="owner")
        cipher = app.extensions["petition.cipher"]
        s.commit()
        return {"slug": campaign.slug, "other_slug": other.slug, "d1": d1, "d2": d2, "od": od,
                "ids": ids, "bad_ip_hash": cipher.ip_hash(BAD_IP),
                "demand": campaign.demands[0]}


def _statuses(app: Flask) -> dict[int, str]:
    with app_session(app) as s:
        return dict(s.execute(select(Signature.id, Signature.status)).all())


def _audit(app: Flask) -> list[AuditEntry]:
    with app_session(app) as s:
        return list(s.scalars(select(AuditEntry).order_by(AuditEntry.id)))


def _assert_counts_exact(app: Flask, runner_app: Flask | None = None) -> None:
    """Every demand's sharded count equals its confirmed rows, and `recount --check` agrees."""
    with app_session(app) as s:
        confirmed = dict(
            s.execute(
                select(Signature.demand_id, func.count())
                .where(Signature.status == SignatureStatus.CONFIRMED)
                .group_by(Signature.demand_id)
            ).all()
        )
        from petition.models import Demand

        for demand_id in s.scalars(select(Demand.id)):
            assert counts.get(s, demand_id).value == confirmed.get(demand_id, 0), demand_id
    result = app.test_cli_runner().invoke(args=["recount", "--check"])
    assert result.exit_code == 0, result.output
    assert "0 with drift" in result.output


def _invalidate_url(world: dict[str, object]) -> str:
    return f"/organiser/campaigns/{world['slug']}/invalidate"


def _post_invalidate(client: FlaskClient, world: dict[str, object], **data: object):  # noqa: ANN201
    token = csrf_token(client, _invalidate_url(world))
    return client.post(_invalidate_url(world), data={"csrf_token": token, **data})


def _preview_then_confirm(client: FlaskClient, world: dict[str, object], **filters: object):  # noqa: ANN201
    preview = _post_invalidate(client, world, preview="Preview", **filters)
    assert preview.status_code == 200, preview.text
    fingerprint = re.search(r'name="fingerprint" type="hidden" value="([0-9a-f]+)"', preview.text)
    assert fingerprint, "no confirm step on the preview page"
    return _post_invalidate(client, world, confirm="Invalidate", fingerprint=fingerprint.group(1),
                            **filters)


# --- search -------------------------------------------------------------------------------


def _search(client: FlaskClient, world: dict[str, object], **params: object):  # noqa: ANN201
    return client.get(f"/organiser/campaigns/{world['slug']}/signatures", query_string=params)


def test_list_shows_decrypted_names_and_masked_emails(client, world):
    login(client, "viewer@example.org")
    response = _search(client, world)
    assert response.status_code == 200
    text = response.text
    assert "6 signatures match." in text
    assert "Ayşe Yılmaz" in text and "Bot Three" in text
    assert "a***@example.org" in text and "b***@spam.example" in text
    assert "ayse@example.org" not in text and "bot1@spam.example" not in text
    assert "Germany" in text and "direct" in text
    assert "style=" not in text
    # The viewer gets no invalidation links.
    assert "/invalidate" not in text


@pytest.mark.parametrize("typed", [
    "someone.name+news@gmail.com", "SOMEONENAME@googlemail.com", " Someone.Name@GMAIL.com ",
])
def test_search_by_email_finds_any_spelling(app, client, world, typed):
    demand = world["demand"]
    signer = app.test_client()
    assert sign_petition(signer, demand, email="Someone.Name+petitions@gmail.com",
                         name="Gmail Person").status_code == 303
    login(client, "owner@example.org")
    response = _search(client, world, email=typed)
    assert response.status_code == 200
    assert "1 signature matches." in response.text
    assert "Gmail Person" in response.text and "S***@gmail.com" in response.text
    nobody = _search(client, world, email="nobody@example.org")
    assert "0 signatures match." in nobody.text


def test_search_by_email_stays_in_the_campaign(client, world):
    login(client, "owner@example.org")
    response = _search(client, world, email="AYSE@example.org")
    assert "2 signatures match." in response.text  # both demands here, not the other campaign


@pytest.mark.parametrize(("params", "expected"), [
    ({"source": "web"}, {"bad1", "bad2", "bad3"}),
    ({"source": "stall-1"}, {"good1", "good2"}),
    ({"country": "TR"}, {"good3"}),
    ({"status": "pending"}, {"good3", "bad3"}),
    ({"status": "confirmed", "country": "US"}, {"bad1", "bad2"}),
    ({"date_from": "2026-03-02", "date_to": "2026-03-02"}, {"good3"}),
    ({"date_from": "2026-03-03"}, {"bad1", "bad2", "bad3"}),
    ({"date_to": "2026-03-01"}, {"good1", "good2"}),
])
def test_search_filters(client, world, params, expected):
    login(client, "owner@example.org")
    response = _search(client, world, **params)
    assert response.status_code == 200
    shown = set(re.findall(r'<td class="num">(\d+)</td>', response.text))
    assert shown == {str(world["ids"][k]) for k in expected}


def test_search_by_demand_and_ip(client, world):
    login(client, "owner@example.org")
    by_demand = _search(client, world, demand=str(world["d2"]))
    assert set(re.findall(r'<td class="num">(\d+)</td>', by_demand.text)) == {
        str(world["ids"]["good2"]), str(world["ids"]["bad2"])}
    by_ip = _search(client, world, ip=world["bad_ip_hash"])
    assert "3 signatures match." in by_ip.text
    assert "Showing only signatures from one IP address" in by_ip.text
    foreign_demand = _search(client, world, demand=str(world["od"]))
    assert foreign_demand.status_code == 400


@pytest.mark.parametrize("params", [
    {"date_from": "2026-13-45"}, {"date_to": "abc"}, {"date_from": "2026-02-30"},
])
def test_search_bad_dates_are_explained(client, world, params):
    login(client, "owner@example.org")
    response = _search(client, world, **params)
    assert response.status_code == 400
    assert "Enter a real date as YYYY-MM-DD" in response.text
    assert "signatures match" not in response.text


def test_search_date_range_reversed(client, world):
    login(client, "owner@example.org")
    response = _search(client, world, date_from="2026-03-05", date_to="2026-03-01")
    assert response.status_code == 400
    assert "The end date is before the start date." in response.text


def test_pagination(app, client, world):
    with app_session(app) as s:
        for i in range(120):
            add_signature(s, world["d1"], email=f"many{i}@example.com", source="bulk",
                          created_at=T0 - timedelta(minutes=i))
        s.commit()
    login(client, "owner@example.org")
    first = _search(client, world, source="bulk")
    assert "120 signatures match." in first.text
    assert first.text.count('<td class="num">') == 50
    assert "Page 1 of 3" in first.text
    assert "page=2" in first.text and "source=bulk" in first.text
    last = _search(client, world, source="bulk", page=3)
    assert last.text.count('<td class="num">') == 20
    assert "Page 3 of 3" in last.text
    beyond = _search(client, world, source="bulk", page=99)
    assert "Page 3 of 3" in beyond.text
    junk = _search(client, world, source="bulk", page="abc")
    assert junk.status_code == 200 and "Page 1 of 3" in junk.text


# --- invalidation -------------------------------------------------------------------------


def test_same_ip_link_fills_the_filter(client, world):
    login(client, "editor@example.org")
    listing = _search(client, world)
    link = f"/organiser/campaigns/{world['slug']}/invalidate?ip={world['bad_ip_hash']}"
    assert link in listing.text
    form = client.get(link)
    assert form.status_code == 200
    assert f'value="{world["bad_ip_hash"]}"' in form.text


def test_preview_counts_and_writes_nothing(app, client, world):
    login(client, "editor@example.org")
    before = _statuses(app)
    response = _post_invalidate(client, world, preview="Preview", ip_hash=world["bad_ip_hash"])
    assert response.status_code == 200
    assert "3 signatures will be invalidated," in response.text
    assert "2 of them currently counted." in response.text
    assert "Invalidate 3 signatures" in response.text
    assert _statuses(app) == before
    assert _audit(app) == []
    _assert_counts_exact(app)


def test_invalidate_by_ip_keeps_counts_exact(app, client, world):
    ids = world["ids"]
    login(client, "editor@example.org")
    response = _preview_then_confirm(client, world, ip_hash=world["bad_ip_hash"])
    assert response.status_code == 303
    assert response.headers["Location"].endswith(f"/organiser/campaigns/{world['slug']}/audit")
    page = client.get(response.headers["Location"])
    assert "3 signatures were invalidated." in page.text

    statuses = _statuses(app)
    assert {statuses[ids[k]] for k in ("bad1", "bad2", "bad3")} == {"invalidated"}
    assert statuses[ids["foreign1"]] == "confirmed"  # other campaign, same IP: untouched
    assert statuses[ids["good1"]] == "confirmed" and statuses[ids["good3"]] == "pending"
    with app_session(app) as s:
        assert counts.get(s, world["d1"]).value == 1
        assert counts.get(s, world["d2"]).value == 1
        assert counts.get(s, world["od"]).value == 2
        # Rows are kept, with their data.
        assert s.get(Signature, ids["bad1"]).name_enc is not None
    _assert_counts_exact(app)

    [entry] = _audit(app)
    assert entry.action == "invalidate" and entry.row_count == 3
    assert entry.detail["filter"] == {"ip_hash": world["bad_ip_hash"]}
    assert sorted(entry.detail["signatures"]["confirmed"]) == sorted([ids["bad1"], ids["bad2"]])
    assert entry.detail["signatures"]["pending"] == [ids["bad3"]]
    assert "Invalidated signatures" in page.text and "editor@example.org" in page.text


def test_invalidated_pending_signature_cannot_be_confirmed_later(app, client, world, outbox):
    signer = app.test_client()
    sign_petition(signer, world["demand"], email="late@spam.example")
    confirm_link = outbox.link(outbox.last(), "confirm")
    login(client, "owner@example.org")
    response = _preview_then_confirm(client, world, email_domain="spam.example")
    assert response.status_code == 303
    signer.get(confirm_link)
    with app_session(app) as s:
        late = s.scalars(select(Signature).order_by(Signature.id.desc())).first()
        assert late.status == "invalidated"
    _assert_counts_exact(app)


@pytest.mark.parametrize("typed", ["spam.example", "SPAM.example", "someone@spam.example"])
def test_invalidate_by_email_domain(app, client, world, typed):
    login(client, "owner@example.org")
    preview = _post_invalidate(client, world, preview="Preview", email_domain=typed)
    assert "3 signatures will be invalidated," in preview.text
    response = _preview_then_confirm(client, world, email_domain=typed)
    assert response.status_code == 303
    statuses = _statuses(app)
    assert statuses[world["ids"]["foreign1"]] == "confirmed"
    assert statuses[world["ids"]["bad1"]] == "invalidated"
    [entry] = _audit(app)
    # The domain is stored encrypted in the audit log, and shown decrypted on the page.
    assert "spam.example" not in str(entry.detail)
    page = client.get(f"/organiser/campaigns/{world['slug']}/audit")
    assert "spam.example" in page.text


def test_invalidate_by_source_demand_and_time_window(app, client, world):
    login(client, "owner@example.org")
    filters = {"source": "web", "demand": str(world["d1"]),
               "created_from": "2026-03-03T12:00", "created_before": "2026-03-03 12:30"}
    preview = _post_invalidate(client, world, preview="Preview", **filters)
    assert "1 signature will be invalidated," in preview.text
    assert "1 of them currently counted." in preview.text
    assert _preview_then_confirm(client, world, **filters).status_code == 303
    statuses = _statuses(app)
    assert statuses[world["ids"]["bad1"]] == "invalidated"
    assert statuses[world["ids"]["bad2"]] == "confirmed"  # other demand
    assert statuses[world["ids"]["bad3"]] == "pending"  # 13:00, outside the window
    _assert_counts_exact(app)


def test_invalidate_single_signature(app, client, world):
    login(client, "owner@example.org")
    listing = _search(client, world)
    link = f"/organiser/campaigns/{world['slug']}/invalidate?signature={world['ids']['good1']}"
    assert link in listing.text
    assert f'value="{world["ids"]["good1"]}"' in client.get(link).text
    assert _preview_then_confirm(
        client, world, signature_id=str(world["ids"]["good1"])).status_code == 303
    assert _statuses(app)[world["ids"]["good1"]] == "invalidated"
    # A signature of another campaign matches nothing here.
    foreign = _post_invalidate(client, world, preview="Preview",
                               signature_id=str(world["ids"]["foreign1"]))
    assert "No signatures match these filters" in foreign.text
    assert "Invalidate 1 signature" not in foreign.text
    _assert_counts_exact(app)


@pytest.mark.parametrize("data", [
    {}, {"demand": ""}, {"source": "   "}, {"demand": "__d1__"},
])
def test_invalidate_without_a_filter_is_refused(app, client, world, data):
    data = {k: (str(world["d1"]) if v == "__d1__" else v) for k, v in data.items()}
    login(client, "owner@example.org")
    for step in ({"preview": "Preview"}, {"confirm": "Invalidate", "fingerprint": "0" * 32}):
        response = _post_invalidate(client, world, **step, **data)
        assert response.status_code == 400
        assert "Choose at least one filter" in response.text
    assert _audit(app) == []
    assert "invalidated" not in _statuses(app).values()


@pytest.mark.parametrize(("data", "message"), [
    ({"created_from": "2026-13-45"}, "Enter a real date and time as YYYY-MM-DD HH:MM"),
    ({"created_before": "abc"}, "Enter a real date and time as YYYY-MM-DD HH:MM"),
    ({"created_from": "2026-03-03 10:00", "created_before": "2026-03-01 10:00"},
     "The end of the time window must be after its start."),
    ({"signature_id": "abc"}, "Enter the signature&#39;s number from the list"),
    ({"signature_id": "-3"}, "Enter the signature&#39;s number from the list"),
    ({"ip_hash": "not-a-hash"}, "this is not a valid IP hash"),
    ({"email_domain": "no spaces allowed"}, "Enter a domain such as example.org"),
    ({"source": "x" * 65}, "A source has at most 64 characters."),
    ({"demand": "999999", "source": "web"}, "Not a valid choice"),
])
def test_invalidate_bad_input(app, client, world, data, message):
    login(client, "owner@example.org")
    before = _statuses(app)
    for step in ({"preview": "Preview"}, {"confirm": "Invalidate", "fingerprint": "0" * 32}):
        response = _post_invalidate(client, world, **step, **data)
        assert response.status_code == 400
        assert message in response.text
    assert _statuses(app) == before
    assert _audit(app) == []


def test_confirm_after_the_matches_changed_is_refused(app, client, world):
    login(client, "owner@example.org")
    preview = _post_invalidate(client, world, preview="Preview", ip_hash=world["bad_ip_hash"])
    fingerprint = re.search(r'name="fingerprint" type="hidden" value="([0-9a-f]+)"', preview.text)
    with app_session(app) as s:  # one more from the same IP arrives meanwhile
        add_signature(s, world["d1"], email="bot4@spam.example", ip=BAD_IP)
        s.commit()
    response = _post_invalidate(client, world, confirm="Invalidate",
                                fingerprint=fingerprint.group(1), ip_hash=world["bad_ip_hash"])
    assert response.status_code == 409
    assert "changed since the preview" in response.text
    assert "4 signatures will be invalidated," in response.text
    assert _audit(app) == []
    assert "invalidated" not in _statuses(app).values()


def test_undo_restores_statuses_and_counts(app, client, world):
    ids = world["ids"]
    login(client, "editor@example.org")
    _preview_then_confirm(client, world, ip_hash=world["bad_ip_hash"])
    [entry] = _audit(app)
    # The signer of bad3 withdraws meanwhile: that one stays withdrawn.
    with app_session(app) as s:
        from petition.signing.services import withdraw

        withdraw(s, [ids["bad3"]])
        s.commit()
    audit_page = client.get(f"/organiser/campaigns/{world['slug']}/audit")
    undo_url = f"/organiser/campaigns/{world['slug']}/audit/{entry.id}/undo"
    assert undo_url in audit_page.text
    token = csrf_token(client, f"/organiser/campaigns/{world['slug']}/audit")
    response = client.post(undo_url, data={"csrf_token": token})
    assert response.status_code == 303
    assert "2 signatures were restored." in client.get(response.headers["Location"]).text
    statuses = _statuses(app)
    assert statuses[ids["bad1"]] == statuses[ids["bad2"]] == "confirmed"
    assert statuses[ids["bad3"]] == "withdrawn"
    with app_session(app) as s:
        assert counts.get(s, world["d1"]).value == 2
        assert counts.get(s, world["d2"]).value == 2
    _assert_counts_exact(app)
    entries = _audit(app)
    assert [e.action for e in entries] == ["invalidate", "invalidate.undo"]
    assert entries[1].row_count == 2 and entries[1].detail["entry_id"] == entry.id
    assert entries[0].detail["undone_by"] == entries[1].id

    again = client.post(undo_url, data={"csrf_token": token})
    assert again.status_code == 303
    assert "already undone; nothing was changed" in client.get(again.headers["Location"]).text
    assert len(_audit(app)) == 2
    assert _statuses(app) == statuses
    _assert_counts_exact(app)


def test_undo_of_a_pending_signature_and_unknown_entries(app, client, world):
    login(client, "owner@example.org")
    _preview_then_confirm(client, world, signature_id=str(world["ids"]["good3"]))
    [entry] = _audit(app)
    token = csrf_token(client, f"/organiser/campaigns/{world['slug']}/audit")
    base = f"/organiser/campaigns/{world['slug']}/audit"
    assert client.post(f"{base}/{entry.id}/undo", data={"csrf_token": token}).status_code == 303
    assert _statuses(app)[world["ids"]["good3"]] == "pending"
    undo_entry = _audit(app)[-1]
    # Neither an undo entry nor a missing one can be undone.
    for entry_id in (undo_entry.id, 999999, 2**31, 10**20):
        assert client.post(f"{base}/{entry_id}/undo", data={"csrf_token": token}).status_code == 404
    _assert_counts_exact(app)


def test_undo_of_another_campaigns_entry_is_not_found(app, client, world):
    stranger = app.test_client()
    login(stranger, "stranger@example.org")
    other_url = f"/organiser/campaigns/{world['other_slug']}/invalidate"
    token = csrf_token(stranger, other_url)
    preview = stranger.post(other_url, data={"csrf_token": token, "preview": "Preview",
                                             "ip_hash": world["bad_ip_hash"]})
    assert "1 signature will be invalidated," in preview.text
    fingerprint = re.search(r'name="fingerprint" type="hidden" value="([0-9a-f]+)"', preview.text)
    stranger.post(other_url, data={"csrf_token": token, "confirm": "Invalidate",
                                   "fingerprint": fingerprint.group(1),
                                   "ip_hash": world["bad_ip_hash"]})
    [entry] = _audit(app)
    statuses = _statuses(app)
    assert statuses[world["ids"]["foreign1"]] == "invalidated"
    assert statuses[world["ids"]["bad1"]] == "confirmed"
    login(client, "owner@example.org")
    token = csrf_token(client, f"/organiser/campaigns/{world['slug']}/audit")
    response = client.post(f"/organiser/campaigns/{world['slug']}/audit/{entry.id}/undo",
                           data={"csrf_token": token})
    assert response.status_code == 404
    assert _statuses(app) == statuses
    assert "Invalidated signatures" not in client.get(
        f"/organiser/campaigns/{world['slug']}/audit").text


# --- access -------------------------------------------------------------------------------


def _routes(world: dict[str, object]) -> list[tuple[str, str]]:
    base = f"/organiser/campaigns/{world['slug']}"
    return [("GET", f"{base}/signatures"), ("GET", f"{base}/invalidate"),
            ("POST", f"{base}/invalidate"), ("GET", f"{base}/audit"),
            ("POST", f"{base}/audit/1/undo")]


def test_viewer_can_look_but_not_invalidate(app, client, world):
    login(client, "viewer@example.org")
    token = csrf_token(client, "/organiser/password")
    base = f"/organiser/campaigns/{world['slug']}"
    assert client.get(f"{base}/signatures").status_code == 200
    assert client.get(f"{base}/audit").status_code == 200
    assert client.get(f"{base}/invalidate").status_code == 403
    response = client.post(f"{base}/invalidate", data={
        "csrf_token": token, "confirm": "Invalidate", "ip_hash": world["bad_ip_hash"]})
    assert response.status_code == 403
    assert client.post(f"{base}/audit/1/undo", data={"csrf_token": token}).status_code == 403
    assert "invalidated" not in _statuses(app).values()


def test_viewer_sees_no_undo_button(app, client, world):
    editor = app.test_client()
    login(editor, "editor@example.org")
    _preview_then_confirm(editor, world, ip_hash=world["bad_ip_hash"])
    login(client, "viewer@example.org")
    page = client.get(f"/organiser/campaigns/{world['slug']}/audit")
    assert page.status_code == 200
    assert "Invalidated signatures" in page.text and "editor@example.org" in page.text
    assert "/undo" not in page.text


def test_non_member_gets_404_everywhere(app, client, world):
    login(client, "stranger@example.org")
    token = csrf_token(client, "/organiser/password")
    for method, path in _routes(world):
        if method == "GET":
            response = client.get(path)
        else:
            response = client.post(path, data={"csrf_token": token, "source": "web",
                                               "preview": "Preview"})
        assert response.status_code == 404, (method, path)
    for path in ("/organiser/campaigns/no-such/signatures", "/organiser/campaigns/no-such/audit"):
        assert client.get(path).status_code == 404


def test_anonymous_is_sent_to_login(client, world):
    token = csrf_token(client, "/organiser/login")
    for method, path in _routes(world):
        if method == "GET":
            response = client.get(path)
        else:
            response = client.post(path, data={"csrf_token": token})
        assert response.status_code == 302, (method, path)
        assert "/organiser/login" in response.headers["Location"]


def test_missing_csrf_token_is_refused(app, client, world):
    login(client, "owner@example.org")
    base = f"/organiser/campaigns/{world['slug']}"
    response = client.post(f"{base}/invalidate", data={
        "preview": "Preview", "ip_hash": world["bad_ip_hash"]})
    assert response.status_code == 400
    assert "This form expired or did not come from this site" in response.text
    _preview_then_confirm(client, world, ip_hash=world["bad_ip_hash"])
    [entry] = _audit(app)
    assert client.post(f"{base}/audit/{entry.id}/undo").status_code == 400
    assert len(_audit(app)) == 1
    confirm = client.post(f"{base}/invalidate", data={
        "confirm": "Invalidate", "fingerprint": "0" * 32, "source": "stall-1"})
    assert confirm.status_code == 400
    assert _statuses(app)[world["ids"]["good1"]] == "confirmed"


def test_audit_log_lists_other_actions(app, client, world):
    from petition.organiser import audit

    with app_session(app) as s:
        from petition.models import Campaign

        campaign_id = s.scalar(select(Campaign.id).where(Campaign.slug == world["slug"]))
        audit.record(s, campaign_id=campaign_id, organiser_id=None, action="campaign.edit",
                     detail={"fields": ["title", "summary"]})
        audit.record(s, campaign_id=campaign_id, organiser_id=None, action="export.csv",
                     row_count=42)
        audit.record(s, campaign_id=None, organiser_id=None, action="export.csv", row_count=7)
        s.commit()
    login(client, "viewer@example.org")
    page = client.get(f"/organiser/campaigns/{world['slug']}/audit")
    assert page.status_code == 200
    assert "Edited the campaign" in page.text and "Changed: title, summary" in page.text
    assert "Exported signatures (CSV)" in page.text and ">42<" in page.text
    assert ">7<" not in page.text  # not this campaign's
    assert "style=" not in page.text
