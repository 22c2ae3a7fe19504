"""Signing: happy paths, dedup, confirmation, withdrawal, counts (SQLite and PostgreSQL)."""

from __future__ import annotations

from sqlalchemy import func, select

from petition.models import DemandStatus, OutboxMessage, Signature, SignatureStatus
from petition.signing import counts
from petition.signing.statements import constant as _constant
from tests.helpers import make_campaign, sign_campaign, sign_petition


def _signatures(db, demand_id=None):
    db.expire_all()
    query = select(Signature).order_by(Signature.id)
    if demand_id is not None:
        query = query.where(Signature.demand_id == demand_id)
    return db.scalars(query).all()


def test_sign_one_demand_then_confirm(client, db, outbox):
    campaign = make_campaign(db)
    demand = campaign.demands[0]
    response = sign_petition(client, demand, src="stall-1")
    assert response.status_code == 303
    assert response.headers["Location"].endswith(f"/petitions/{demand.slug}/signed")
    page = client.get(response.headers["Location"])
    assert "check your email" in page.text

    [signature] = _signatures(db)
    assert signature.status == SignatureStatus.PENDING
    assert signature.source == "stall-1"
    assert signature.country == "DE"
    assert counts.get(db, demand.id).value == 0

    message = outbox.last()
    assert message["To"] == "ayse@example.org"
    assert message.get_body(("html",)) is not None
    confirm = client.get(outbox.link(message, "confirm"))
    assert confirm.status_code == 200
    assert "confirmed and counted" in confirm.text
    assert _signatures(db)[0].status == SignatureStatus.CONFIRMED
    assert counts.get(db, demand.id).value == 1

    count = client.get(f"/petitions/{demand.slug}/count.json")
    assert count.json["signature_count"] == 1
    assert count.json["slug"] == demand.slug
    assert count.json["goal"] == 100
    assert count.json["updated_at"]


def test_sign_several_demands_one_email(client, db, outbox):
    campaign = make_campaign(db, demands=4)
    chosen = [campaign.demands[0].id, campaign.demands[2].id]
    response = sign_campaign(client, campaign, chosen)
    assert response.status_code == 303
    signatures = _signatures(db)
    assert sorted(s.demand_id for s in signatures) == sorted(chosen)
    assert len(outbox.messages()) == 1
    text = outbox.text(outbox.last())
    assert "Demand number 1" in text and "Demand number 3" in text and "Demand number 2" not in text
    client.get(outbox.link(outbox.last(), "confirm"))
    assert counts.get(db, chosen[0]).value == 1
    assert counts.get(db, chosen[1]).value == 1
    assert counts.get(db, campaign.demands[1].id).value == 0


def test_each_signer_gets_their_own_links_in_the_same_email(client, db, outbox):
    """The email is rendered once per list of demands; only the two links differ."""
    import re

    campaign = make_campaign(db, demands=2)
    demand = campaign.demands[0]
    sign_petition(client, demand, email="first@example.org")
    sign_petition(client, demand, email="second@example.org")
    first, second = outbox.messages()
    links = re.compile(r"http://petition\.test/signatures/(?:confirm|withdraw)/[^\s\"<]+")
    for part in ("plain", "html"):
        a = first.get_body((part,)).get_content()
        b = second.get_body((part,)).get_content()
        assert links.findall(a) != links.findall(b) and len(links.findall(a)) >= 2
        assert links.sub("LINK", a) == links.sub("LINK", b)
        assert "\x00" not in a and "Demand number 1 (" in a
    assert client.get(outbox.link(second, "confirm")).status_code == 200
    assert [s.status for s in _signatures(db)] == [SignatureStatus.PENDING, SignatureStatus.CONFIRMED]
    # A renamed demand is named in the next email at once (the title is part of the key).
    demand.title = "A renamed demand"
    campaign.title = "A renamed campaign"
    db.commit()
    sign_petition(client, demand, email="third@example.org")
    assert "- A renamed demand (A renamed campaign)" in outbox.text(outbox.last())


def test_confirm_is_idempotent(client, db, outbox):
    demand = make_campaign(db).demands[0]
    sign_petition(client, demand)
    link = outbox.link(outbox.last(), "confirm")
    for _ in range(3):
        assert client.get(link).status_code == 200
    assert counts.get(db, demand.id).value == 1


def test_duplicates_leave_one_signature_and_email_again(client, db, outbox):
    demand = make_campaign(db).demands[0]
    first = sign_petition(client, demand, email="Someone.Name+news@gmail.com")
    second = sign_petition(client, demand, email="SOMEONENAME@googlemail.com", name="Other name")
    assert first.status_code == second.status_code == 303
    assert first.headers["Location"] == second.headers["Location"]
    assert len(_signatures(db)) == 1
    # Still pending: the confirmation is sent again.
    messages = outbox.messages()
    assert len(messages) == 2
    assert "confirm" in messages[1]["Subject"].lower()
    client.get(outbox.link(messages[1], "confirm"))
    # Confirmed: a duplicate now gets the short "already signed" note.
    sign_petition(client, demand, email=" Some.One.Name@GMAIL.com ")
    note = outbox.last()
    assert note["Subject"] == "You have already signed"
    assert "/signatures/confirm/" not in outbox.text(note)
    assert len(_signatures(db)) == 1
    assert counts.get(db, demand.id).value == 1


def test_duplicate_emails_are_capped(make_app):
    app = make_app(MAX_EMAILS_PER_SIGNATURE=2)
    client = app.test_client()
    from petition.db import get_session
    from tests.conftest import Outbox

    outbox = Outbox(__import__("pathlib").Path(app.config["OUTBOX_DIR"]))
    with app.app_context():
        db = get_session()
        demand = make_campaign(db).demands[0]
        for _ in range(5):
            assert sign_petition(client, demand).status_code == 303
    assert len(outbox.messages()) == 2


def test_case_variants_are_one_person_but_other_domains_keep_dots(client, db):
    demand = make_campaign(db).demands[0]
    sign_petition(client, demand, email="a.b@example.org")
    sign_petition(client, demand, email="A.B@EXAMPLE.ORG")
    sign_petition(client, demand, email="ab@example.org")
    assert len(_signatures(db)) == 2


def test_duplicate_in_multi_sign_only_adds_new_demand(client, db, outbox):
    campaign = make_campaign(db, demands=3)
    d1, d2, _d3 = campaign.demands
    sign_petition(client, d1)
    client.get(outbox.link(outbox.last(), "confirm"))
    sign_campaign(client, campaign, [d1.id, d2.id])
    assert len(_signatures(db)) == 2
    text = outbox.text(outbox.last())
    assert "You had already signed and confirmed" in text
    assert "Demand number 2" in text
    client.get(outbox.link(outbox.last(), "confirm"))
    assert counts.get(db, d1.id).value == 1
    assert counts.get(db, d2.id).value == 1


def test_closed_and_draft_demands_cannot_be_signed(client, db):
    campaign = make_campaign(db, demands=3)
    closed, draft, won = campaign.demands
    closed.status = DemandStatus.CLOSED
    draft.status = DemandStatus.DRAFT
    won.status = DemandStatus.WON
    db.commit()
    page = client.get(f"/petitions/{closed.slug}")
    assert "no longer accepts signatures" in page.text
    assert 'name="csrf_token"' not in page.text
    response = client.post(f"/petitions/{closed.slug}/sign", data={"name": "x"})
    assert response.status_code == 409
    assert "no longer accepts signatures" in response.text
    assert client.get(f"/petitions/{draft.slug}").status_code == 404
    assert client.post(f"/petitions/{draft.slug}/sign").status_code == 404
    assert "has been won" in client.get(f"/petitions/{won.slug}").text
    assert _signatures(db) == []


def test_closed_demand_ticked_on_campaign_form_is_refused(client, db):
    campaign = make_campaign(db, demands=2)
    d1, d2 = campaign.demands
    from tests.helpers import csrf_token, signer

    token = csrf_token(client, f"/campaigns/{campaign.slug}")
    d2.status = DemandStatus.CLOSED
    db.commit()
    response = client.post(
        f"/campaigns/{campaign.slug}/sign",
        data={"csrf_token": token, "demands": [str(d1.id), str(d2.id)], **signer()},
    )
    assert response.status_code == 400
    assert "Demand number 2: This petition is closed" in response.text
    assert 'value="ayse@example.org"' in response.text
    assert _signatures(db) == []


def test_withdraw_erases_pii_and_keeps_count_exact(client, db, outbox):
    demand = make_campaign(db).demands[0]
    sign_petition(client, demand)
    message = outbox.last()
    client.get(outbox.link(message, "confirm"))
    assert counts.get(db, demand.id).value == 1
    withdraw = outbox.link(message, "withdraw")
    page = client.get(withdraw)
    assert page.status_code == 200 and "Withdraw my signature" in page.text
    assert _signatures(db)[0].status == SignatureStatus.CONFIRMED  # GET changes nothing
    from tests.helpers import csrf_token

    token = csrf_token(client, withdraw)
    response = client.post(withdraw, data={"csrf_token": token})
    assert response.status_code == 303
    [signature] = _signatures(db)
    assert signature.status == SignatureStatus.WITHDRAWN
    assert signature.name_enc is None and signature.email_enc is None
    assert signature.postcode_enc is None and signature.email_key is None
    assert signature.ip_hash is None and signature.country is None
    assert counts.get(db, demand.id).value == 0
    # Withdrawing again changes nothing; confirming again does not count it.
    client.post(withdraw, data={"csrf_token": token})
    client.get(outbox.link(message, "confirm"))
    assert counts.get(db, demand.id).value == 0
    # The person may sign again later.
    sign_petition(client, demand)
    assert len(_signatures(db)) == 2


def test_withdraw_post_without_csrf_is_refused(client, db, outbox):
    demand = make_campaign(db).demands[0]
    sign_petition(client, demand)
    response = client.post(outbox.link(outbox.last(), "withdraw"))
    assert response.status_code == 400
    assert "expired" in response.text
    assert _signatures(db)[0].status == SignatureStatus.PENDING


def test_count_equals_recount(client, db, outbox, runner):
    campaign = make_campaign(db, demands=2)
    for i in range(6):
        sign_petition(client, campaign.demands[i % 2], email=f"p{i}@example.org")
        if i % 3:
            client.get(outbox.link(outbox.last(), "confirm"))
    for demand in campaign.demands:
        confirmed = db.scalar(select(func.count()).select_from(Signature).where(
            Signature.demand_id == demand.id, Signature.status == SignatureStatus.CONFIRMED))
        assert counts.get(db, demand.id).value == confirmed
    result = runner.invoke(args=["recount", "--check"])
    assert result.exit_code == 0, result.output
    assert "0 with drift" in result.output


def test_recount_repairs_drift(runner, db):
    demand = make_campaign(db).demands[0]
    counts.add(db, demand.id, 7)
    db.commit()
    check = runner.invoke(args=["recount", "--check"])
    assert check.exit_code == 1
    assert "stored 7 (paper 0), actual 0 (paper 0)" in check.output
    repair = runner.invoke(args=["recount"])
    assert repair.exit_code == 0
    db.expire_all()
    assert counts.get(db, demand.id).value == 0


def test_count_json_etag_and_cache(client, db):
    demand = make_campaign(db).demands[0]
    first = client.get(f"/petitions/{demand.slug}/count.json")
    assert first.status_code == 200
    assert "max-age" in first.headers["Cache-Control"]
    etag = first.headers["ETag"]
    again = client.get(f"/petitions/{demand.slug}/count.json", headers={"If-None-Match": etag})
    assert again.status_code == 304
    counts.add(db, demand.id, 1)
    db.commit()
    changed = client.get(f"/petitions/{demand.slug}/count.json", headers={"If-None-Match": etag})
    assert changed.status_code == 200 and changed.json["signature_count"] == 1


def test_pages_show_counts_and_markdown(client, db):
    campaign = make_campaign(db, demands=2)
    counts.add(db, campaign.demands[0].id, 42)
    db.commit()
    index = client.get("/")
    assert campaign.title in index.text
    page = client.get(f"/campaigns/{campaign.slug}")
    assert "<strong>bold</strong>" in page.text
    assert 'data-count>42<' in page.text
    petition = client.get(f"/petitions/{campaign.demands[0].slug}?src=poster-7")
    assert 'value="poster-7"' in petition.text
    assert "<progress" in petition.text
    assert "http://petition.test/petitions/" in petition.text  # share link


def test_markdown_is_sanitised(client, db):
    campaign = make_campaign(db)
    campaign.body = "<script>alert(1)</script> [x](javascript:alert(1)) <img src=x onerror=y>"
    db.commit()
    page = client.get(f"/campaigns/{campaign.slug}").text
    assert "<script>alert" not in page
    assert 'href="javascript:' not in page
    assert "<img" not in page


def test_outbox_recipient_encrypted_and_erased_after_sending(client, db, outbox):
    demand = make_campaign(db).demands[0]
    sign_petition(client, demand)
    db.expire_all()
    [message] = db.scalars(select(OutboxMessage)).all()
    assert message.status == "sent"
    assert message.recipient_enc is None and message.body_text == ""


def test_a_supporters_session_is_written_once_and_no_login_cookie_is_touched(client, db):
    """A supporter's cookie holds the CSRF token only. The login protection (Flask-Login's
    "strong" mode) has nothing to check in it: it must not clear a remember-me cookie the
    supporter never had, nor rewrite the session on every page."""
    campaign = make_campaign(db)
    page = f"/petitions/{campaign.demands[0].slug}"
    first = client.get(page)
    assert first.status_code == 200
    cookies = first.headers.getlist("Set-Cookie")
    assert [c.split("=", 1)[0] for c in cookies] == ["session"], cookies
    again = client.get(page)
    assert again.status_code == 200
    assert again.headers.getlist("Set-Cookie") == []
    assert sign_petition(client, campaign.demands[0]).status_code == 303



def test_a_constant_in_the_cached_sign_statement_is_quoted_as_sql_quotes_it(db):
    assert db.execute(select(_constant("it's open"), _constant(7))).one() == ("it's open", 7)
