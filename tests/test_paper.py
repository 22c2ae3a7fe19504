"""Paper signatures: keyboard entry, CSV import, dedup, counts and permissions."""

from __future__ import annotations

import datetime as dt
import io
import re
from html import unescape

import pytest
from flask import g
from sqlalchemy import func, select

from petition.events import services
from petition.models import AuditEntry, Channel, Signature, SignatureStatus
from petition.signing import counts
from tests.helpers import csrf_token, login, make_campaign, make_organiser, sign_petition

CODE = "stall-alex"
SOURCE = f"paper:{CODE}"


@pytest.fixture
def campaign(db):  # noqa: ANN001, ANN201
    """An open campaign with two open demands."""
    return make_campaign(db, demands=2)


@pytest.fixture
def demand(campaign):  # noqa: ANN001, ANN201
    """The demand the event's sheets are for."""
    return campaign.demands[0]


@pytest.fixture
def event(db, campaign, demand):  # noqa: ANN001, ANN201
    """An event whose links lead to the first demand."""
    made = services.create_event(db, campaign, services.EventInput(
        name="Stall at Alexanderplatz", date=dt.date(2026, 12, 5), code=CODE,
        demand_id=demand.id), organiser_id=None)
    db.commit()
    return made


@pytest.fixture
def path(campaign, event):  # noqa: ANN001, ANN201
    """The paper entry page of the event."""
    return f"/organiser/campaigns/{campaign.slug}/events/{event.id}/paper"


@pytest.fixture
def owner(client, db, campaign):  # noqa: ANN001, ANN201
    """The client logged in as the campaign's owner."""
    make_organiser(db, campaign=campaign, role="owner")
    login(client)
    return client


def row(**overrides: str | None) -> dict[str, str]:
    """Valid paper row fields, with overrides (None leaves a field out)."""
    data: dict[str, str | None] = {
        "name": "Zeynep Kaya", "email": "zeynep@example.org", "country": "DE",
        "postcode": "10115", "contact_consent": "y",
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def post_row(client, path: str, **fields: str | None):  # noqa: ANN001, ANN201
    """Submit the row form like a browser (page first, for the token)."""
    return client.post(path, data={"csrf_token": csrf_token(client, path), **row(**fields)})


def post_csv(client, path: str, content: bytes | str, filename: str = "rows.csv"):  # noqa: ANN001, ANN201
    """Upload a CSV file on the paper page."""
    data = content.encode() if isinstance(content, str) else content
    return client.post(f"{path}/import", content_type="multipart/form-data", data={
        "csrf_token": csrf_token(client, path), "file": (io.BytesIO(data), filename)})


def paper_signatures(db):  # noqa: ANN001, ANN201
    """All paper signatures, oldest first."""
    db.expire_all()
    return db.scalars(select(Signature).where(Signature.channel == Channel.PAPER)
                      .order_by(Signature.id)).all()


def text_of(html: str) -> str:
    """A page's visible text, whitespace collapsed."""
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


def decrypt(app, signature: Signature) -> tuple[str, str, str | None]:  # noqa: ANN001
    """Name, email and postcode of a signature."""
    c = app.extensions["petition.cipher"]
    return (c.decrypt(signature.name_enc, "signature.name"),
            c.decrypt(signature.email_enc, "signature.email"),
            c.decrypt(signature.postcode_enc, "signature.postcode"))


# --- the keyboard form ---------------------------------------------------------------------


def test_form_follows_the_sheet_and_focuses_the_name(owner, path):
    page = owner.get(path).text
    order = [page.index(f'name="{name}"') for name in
             ("name", "email", "country", "postcode", "contact_consent", "public_consent")]
    assert order == sorted(order)
    assert re.search(r'<input[^>]*autofocus[^>]*name="name"|<input[^>]*name="name"[^>]*autofocus',
                     page)
    assert page.count("autofocus") == 1
    assert 'autocomplete="off"' in page
    assert "<script" not in page.split("</main>")[0]
    assert "style=" not in page


def test_typed_row_is_a_confirmed_paper_signature(app, owner, db, demand, path, outbox):
    response = post_row(owner, path, public_consent="y")
    assert response.status_code == 303
    assert response.headers["Location"].endswith(path)
    page = owner.get(path).text
    assert "Row added" in page
    # An empty form again, focused on the first field, and the row in the running list.
    assert re.search(r'<input[^>]*name="name"[^>]*>', page)
    name_input = re.search(r'<input[^>]*name="name"[^>]*>', page).group(0)
    assert 'value=""' in name_input and "autofocus" in name_input
    listed = page.split('id="entries-heading"')[1]
    assert "Zeynep Kaya" in listed and "zeynep@example.org" in listed and "added" in listed

    [signature] = paper_signatures(db)
    assert signature.demand_id == demand.id
    assert signature.status == SignatureStatus.CONFIRMED
    assert signature.confirmed_at is not None
    assert signature.source == SOURCE
    assert signature.emails_sent == 0
    assert signature.ip_hash is None
    assert signature.country == "DE"
    assert signature.contact_consent and signature.public_consent
    assert decrypt(app, signature) == ("Zeynep Kaya", "zeynep@example.org", "10115")
    assert outbox.messages() == []
    count = counts.get(db, demand.id)
    assert (count.value, count.paper, count.online) == (1, 1, 0)


def test_running_list_newest_first(owner, path):
    post_row(owner, path, name="First Person", email="first@example.org")
    post_row(owner, path, name="Second Person", email="second@example.org", postcode="")
    listed = owner.get(path).text.split('id="entries-heading"')[1]
    assert listed.index("Second Person") < listed.index("First Person")


@pytest.mark.parametrize(("fields", "field", "message"), [
    ({"email": ""}, "email", "The email address is missing"),
    ({"email": None}, "email", "The email address is missing"),
    ({"email": "not-an-address"}, "email", "This email address is not valid"),
    ({"name": ""}, "name", "The name is missing"),
    ({"name": "<b>Bold</b>"}, "name", "cannot contain the characters &lt; or &gt;"),
    ({"name": "x" * 121}, "name", "at most 120 characters"),
    ({"country": ""}, "country", "The country is missing"),
    ({"country": "Atlantis"}, "country", "is not a country we know"),
    ({"postcode": "10@15"}, "postcode", "can only contain letters, digits"),
])
def test_bad_row_is_reported_and_kept(owner, db, path, fields, field, message):
    response = post_row(owner, path, **fields)
    assert response.status_code == 400
    assert message in response.text
    focused = re.search(r'<(?:input)[^>]*autofocus[^>]*>', response.text).group(0)
    assert f'name="{field}"' in focused
    if fields.get("name") is None or field != "name":
        assert 'value="Zeynep Kaya"' in response.text
    assert paper_signatures(db) == []


@pytest.mark.parametrize(("typed", "code"), [("de", "DE"), ("Germany", "DE"), ("deu", "DE"),
                                             (" türkiye ", "TR"), ("TUR", "TR"),
                                             ("Turkey", "TR"), ("UK", "GB"),
                                             ("cote d'ivoire", "CI")])
def test_country_by_code_or_name(owner, db, path, typed, code):
    assert post_row(owner, path, country=typed).status_code == 303
    assert paper_signatures(db)[0].country == code


def test_expired_token_keeps_the_row(owner, db, path):
    # The test's app context (the db fixture) outlives requests: forget the earlier check.
    g.pop("csrf_valid", None)
    response = owner.post(path, data={"csrf_token": "stale", **row()})
    assert response.status_code == 400
    assert "This form expired" in response.text
    assert 'value="zeynep@example.org"' in response.text
    assert paper_signatures(db) == []


# --- dedup --------------------------------------------------------------------------------


def test_duplicate_of_confirmed_online_signature(owner, db, demand, path, outbox):
    sign_petition(owner, demand, email="Online.Person+tag@gmail.com")
    owner.get(outbox.link(outbox.last(), "confirm"))
    before = len(outbox.messages())
    response = post_row(owner, path, email="onlineperson@googlemail.com")
    assert response.status_code == 303
    page = owner.get(path).text
    assert "Not added" in page
    assert "Already signed online and confirmed." in page
    assert paper_signatures(db) == []
    count = counts.get(db, demand.id)
    assert (count.value, count.paper) == (1, 0)
    assert len(outbox.messages()) == before  # nobody is emailed about it
    entry = db.scalars(select(AuditEntry).where(AuditEntry.action == "paper.entry")).one()
    assert entry.detail["result"] == "duplicate" and entry.row_count == 0


def test_duplicate_of_pending_online_signature(owner, db, demand, path):
    sign_petition(owner, demand, email="pending@example.org")
    post_row(owner, path, email="PENDING@example.org")
    assert "Already signed online; not yet confirmed by email." in owner.get(path).text
    assert counts.get(db, demand.id).value == 0


def test_duplicate_paper_row(owner, db, demand, path):
    post_row(owner, path)
    post_row(owner, path, name="Someone Else")
    page = owner.get(path).text
    assert f"Already entered on paper ({SOURCE})." in page
    assert len(paper_signatures(db)) == 1
    assert counts.get(db, demand.id).paper == 1


def test_same_person_may_sign_another_demand_on_paper(owner, db, campaign, path):
    post_row(owner, path)
    other = campaign.demands[1]
    assert post_row(owner, f"{path}?demand={other.slug}").status_code == 303
    assert [s.demand_id for s in paper_signatures(db)] == [campaign.demands[0].id, other.id]


def test_online_signature_after_paper_is_a_duplicate(owner, db, demand, path, outbox):
    post_row(owner, path)
    sign_petition(owner, demand, email="zeynep@example.org")
    assert db.scalar(select(func.count()).select_from(Signature)) == 1
    assert "already signed" in outbox.text(outbox.last()).lower()


# --- CSV import ---------------------------------------------------------------------------

GOOD_CSV = (
    "name,email,country,postcode,contact_consent,public_consent\n"
    "Ali Veli,ali@example.org,TR,,1,0\n"
    "Bad Email,not-an-address,DE,,,\n"
    "No Country,nocountry@example.org,,,,\n"
    "\n"
    "Élodie Martin,elodie@example.org,France,75001,yes,x\n"
    "Maybe Consent,maybe@example.org,DE,,maybe,\n"
    "<script>,tag@example.org,DE,,,\n"
)


def _table_rows(html: str, css_class: str) -> list[list[str]]:
    table = html.split(f'class="{css_class}"')[1].split("</table>")[0]
    return [[text_of(cell) for cell in re.findall(r"<td[^>]*>(.*?)</td>", tr, re.S)]
            for tr in re.findall(r"<tr>(.*?)</tr>", table, re.S) if "<td" in tr]


def test_csv_good_rows_kept_bad_rows_reported(app, owner, db, demand, path):
    response = post_csv(owner, path, GOOD_CSV)
    assert response.status_code == 200
    assert "Import done: 2 rows added, 0 duplicates not added, 4 rows with errors not added." \
        in text_of(response.text)
    errors = _table_rows(response.text, "paper-errors")
    assert [e[0] for e in errors] == ["3", "4", "7", "8"]
    assert "This email address is not valid" in errors[0][1]
    assert "The country is missing" in errors[1][1]
    assert "contact_consent: “maybe” is not yes or no" in errors[2][1]
    assert "cannot contain the characters" in errors[3][1]
    added = paper_signatures(db)
    assert [decrypt(app, s)[0] for s in added] == ["Ali Veli", "Élodie Martin"]
    ali, elodie = added
    assert (ali.country, ali.contact_consent, ali.public_consent) == ("TR", True, False)
    assert (elodie.country, elodie.contact_consent, elodie.public_consent) == ("FR", True, True)
    assert decrypt(app, elodie)[2] == "75001"
    assert {s.source for s in added} == {SOURCE}
    assert all(s.status == SignatureStatus.CONFIRMED for s in added)
    assert counts.get(db, demand.id).paper == 2
    entry = db.scalars(select(AuditEntry).where(AuditEntry.action == "paper.import")).one()
    assert entry.row_count == 2
    assert entry.detail["rejected"] == 4 and entry.detail["rows"] == 6


def test_csv_with_bom_semicolons_and_crlf(app, owner, db, path):
    content = ("\ufeffName;Email;Country;Public_Consent\r\n"
               "Ayşe Yılmaz;ayse@example.org;TR;x\r\n").encode()
    response = post_csv(owner, path, content)
    assert response.status_code == 200
    assert "1 rows added" in response.text
    [signature] = paper_signatures(db)
    assert decrypt(app, signature)[:2] == ("Ayşe Yılmaz", "ayse@example.org")
    assert signature.public_consent and not signature.contact_consent


def test_csv_duplicates_reported(owner, db, demand, path, outbox):
    sign_petition(owner, demand, email="online@example.org")
    owner.get(outbox.link(outbox.last(), "confirm"))
    content = ("name,email,country\n"
               "One,one@example.org,DE\n"
               "Online,online@example.org,DE\n"
               "One Again,ONE@example.org,DE\n")
    response = post_csv(owner, path, content)
    duplicates = _table_rows(response.text, "paper-duplicates")
    assert duplicates == [
        ["3", "online@example.org", "Already signed online and confirmed."],
        ["4", "ONE@example.org", "Same email address as row 2 of this file."],
    ]
    assert len(paper_signatures(db)) == 1
    count = counts.get(db, demand.id)
    assert (count.online, count.paper) == (1, 1)
    # The same file again: every row is now a duplicate, nothing is counted twice.
    again = post_csv(owner, path, content)
    assert "0 rows added, 3 duplicates" in again.text
    assert counts.get(db, demand.id).value == 2


def test_csv_extra_and_unknown_columns(owner, db, path):
    content = "name,email,country,notes\nA Person,a@example.org,DE,met at stall,surplus\n"
    response = post_csv(owner, path, content)
    assert "Columns ignored: notes." in response.text
    assert _table_rows(response.text, "paper-errors")[0][0] == "2"
    assert "more cells than the header" in response.text
    assert paper_signatures(db) == []


@pytest.mark.parametrize(("content", "message"), [
    ("Zoë,zoe@example.org,DE\n".encode("latin-1"), "not UTF-8"),
    ("name,country\nA,DE\n", "Missing: email."),
    ("name,email,email,country\n", "appear twice: email"),
    ("", "The file is empty."),
    ("   \n", "The file is empty."),
    (b"name,email,country\n\x00\x01", "not a CSV text file"),
])
def test_unusable_file_adds_nothing(owner, db, path, content, message):
    response = post_csv(owner, path, content)
    assert response.status_code == 400
    assert message in unescape(response.text)
    assert paper_signatures(db) == []


def test_missing_file(owner, db, path):
    response = owner.post(f"{path}/import", content_type="multipart/form-data",
                          data={"csrf_token": csrf_token(owner, path)})
    assert response.status_code == 400
    assert "Please choose a CSV file." in response.text


def test_file_size_limit(make_app, db, campaign, event):  # noqa: ARG001
    app = make_app(PAPER_CSV_MAX_BYTES=1024)
    client = app.test_client()
    with app.app_context():
        from petition.db import get_session

        make_organiser(get_session(), campaign=campaign, role="owner")
    login(client)
    path = f"/organiser/campaigns/{campaign.slug}/events/{event.id}/paper"
    big = "name,email,country\n" + "".join(f"P{i},p{i}@example.org,DE\n" for i in range(100))
    response = post_csv(client, path, big)
    assert response.status_code == 400
    assert "larger than 1 KB" in response.text
    huge = post_csv(client, path, big * 20)
    assert huge.status_code == 413


def test_too_many_rows(owner, db, path, monkeypatch):
    from petition.organiser import paper_csv

    monkeypatch.setattr(paper_csv, "CSV_MAX_ROWS", 2)
    content = "name,email,country\n" + "".join(f"P{i},p{i}@example.org,DE\n" for i in range(3))
    response = post_csv(owner, path, content)
    assert response.status_code == 400
    assert "more than 2 rows" in response.text
    assert paper_signatures(db) == []


# --- counts --------------------------------------------------------------------------------


def test_counts_include_paper_and_show_it_apart(owner, client, db, campaign, demand, path,
                                                outbox, runner):
    sign_petition(owner, demand, email="online@example.org")
    owner.get(outbox.link(outbox.last(), "confirm"))
    post_csv(owner, path, "name,email,country\nA,a@example.org,DE\nB,b@example.org,FR\n")

    count = counts.get(db, demand.id)
    assert (count.value, count.online, count.paper) == (3, 1, 2)
    assert owner.get(f"/petitions/{demand.slug}/count.json").json["signature_count"] == 3
    petition = text_of(owner.get(f"/petitions/{demand.slug}").text)
    assert "3 signatures" in petition
    assert "including 2 signatures collected on paper" in petition

    dashboard = text_of(owner.get(f"/organiser/campaigns/{campaign.slug}/").text)
    assert "Counted: 1 signed online, 2 on paper." in dashboard
    assert f"paper:{CODE}" in dashboard  # the top sources list the event's sheets
    one = text_of(owner.get(f"/organiser/campaigns/{campaign.slug}/demands/{demand.slug}").text)
    assert "Counted: 1 signed online, 2 on paper." in one
    entry = text_of(owner.get(path).text)
    assert "1 signed online, 2 on paper (3 in total). From this event's sheets: 2." in entry
    events = text_of(owner.get(f"/organiser/campaigns/{campaign.slug}/events").text)
    assert "2 entered from this event's sheets." in events

    result = runner.invoke(args=["recount", "--check"])
    assert result.exit_code == 0, result.output
    assert "0 with drift" in result.output


def test_petition_page_without_paper_says_nothing(client, demand):
    assert "on paper" not in client.get(f"/petitions/{demand.slug}").text


def test_recount_repairs_the_paper_split(owner, db, demand, path, runner):
    post_row(owner, path)
    counts.add(db, demand.id, -1, Channel.PAPER)  # drift: counted online instead of on paper
    counts.add(db, demand.id, +1)
    db.commit()
    check = runner.invoke(args=["recount", "--check"])
    assert check.exit_code == 1
    assert "1 with drift" in check.output
    repair = runner.invoke(args=["recount"])
    assert repair.exit_code == 0
    db.expire_all()
    count = counts.get(db, demand.id)
    assert (count.value, count.paper) == (1, 1)
    assert runner.invoke(args=["recount", "--check"]).exit_code == 0


def test_online_source_named_paper_is_still_online(client, db, demand, outbox, runner):
    """A link's ?src= can say anything; only the paper entry makes paper signatures."""
    token = csrf_token(client, f"/petitions/{demand.slug}?src=paper:{CODE}")
    client.post(f"/petitions/{demand.slug}/sign", data={
        "csrf_token": token, "src": f"paper:{CODE}", "name": "Web Person",
        "email": "web@example.org", "country": "DE"})
    client.get(outbox.link(outbox.last(), "confirm"))
    signature = db.scalars(select(Signature)).one()
    assert signature.channel == Channel.ONLINE
    count = counts.get(db, demand.id)
    assert (count.value, count.paper) == (1, 0)
    assert runner.invoke(args=["recount", "--check"]).exit_code == 0


# --- events without a petition, permissions -------------------------------------------------


def test_campaign_event_asks_for_the_petition(owner, db, campaign):
    event = services.create_event(db, campaign, services.EventInput(
        name="Rally", date=dt.date(2026, 12, 6), code="rally"), organiser_id=None)
    db.commit()
    path = f"/organiser/campaigns/{campaign.slug}/events/{event.id}/paper"
    page = owner.get(path).text
    second = campaign.demands[1]
    assert f"{path}?demand={second.slug}" in page
    assert 'name="email"' not in page
    assert owner.post(path, data={"csrf_token": csrf_token(owner, path), **row()}
                      ).status_code == 400
    assert owner.get(f"{path}?demand=nope").status_code == 404
    assert post_row(owner, f"{path}?demand={second.slug}").status_code == 303
    [signature] = paper_signatures(db)
    assert (signature.demand_id, signature.source) == (second.id, "paper:rally")


def test_viewer_is_refused(client, db, campaign, path):
    make_organiser(db, campaign=campaign, role="viewer")
    login(client)
    assert client.get(path).status_code == 403
    assert client.post(path, data=row()).status_code in (400, 403)
    assert client.post(f"{path}/import", data={}).status_code in (400, 403)
    assert paper_signatures(db) == []


def test_viewer_is_refused_with_a_valid_token(client, db, campaign, event, path):
    make_organiser(db, campaign=campaign, role="viewer")
    login(client)
    token = csrf_token(client, f"/organiser/campaigns/{campaign.slug}/events")
    assert client.post(path, data={"csrf_token": token, **row()}).status_code == 403
    response = client.post(f"{path}/import", content_type="multipart/form-data", data={
        "csrf_token": token, "file": (io.BytesIO(b"name,email,country\nA,a@example.org,DE\n"),
                                      "rows.csv")})
    assert response.status_code == 403
    assert paper_signatures(db) == []


def test_editor_may_enter(client, db, campaign, path):
    make_organiser(db, campaign=campaign, role="editor")
    login(client)
    assert post_row(client, path).status_code == 303
    assert len(paper_signatures(db)) == 1


def test_non_member_gets_404(client, db, campaign, event, path):
    assert client.get(path).status_code in (302, 303)  # anonymous: to the login page
    make_organiser(db, email="other@example.org")
    login(client, "other@example.org")
    assert client.get(path).status_code == 404
    token = csrf_token(client, "/organiser/password")
    assert client.post(path, data={"csrf_token": token, **row()}).status_code == 404
    other = make_campaign(db, title="Other campaign")
    make_organiser(db, email="owner2@example.org", campaign=other, role="owner")
    client.post("/organiser/logout", data={"csrf_token": token})
    g.pop("_login_user", None)  # cached by the test's long-lived app context
    login(client, "owner2@example.org")
    # The event belongs to another campaign: not found through this one.
    assert client.get(f"/organiser/campaigns/{other.slug}/events/{event.id}/paper"
                      ).status_code == 404
    assert paper_signatures(db) == []


def test_invalidating_undoing_and_withdrawing_paper_keeps_the_split_exact(
    app, owner, db, campaign, demand, path, runner
):
    """Moderation and withdrawal adjust the channel a signature was counted in."""
    from petition.organiser import moderation
    from petition.signing import services as signing

    post_row(owner, path)
    post_row(owner, path, name="Online Too", email="online.too@example.org")
    [first, second] = paper_signatures(db)
    organiser_id = db.scalar(select(AuditEntry.organiser_id).limit(1))
    filt = moderation.InvalidationFilter(signature_id=first.id)
    preview = moderation.preview(db, campaign, filt)
    entry = moderation.invalidate(db, campaign, filt, organiser_id=organiser_id,
                                  expected_fingerprint=preview.fingerprint)
    db.commit()
    count = counts.get(db, demand.id)
    assert (count.value, count.paper, count.online) == (1, 1, 0)
    moderation.undo_invalidation(db, campaign, entry.id, organiser_id=organiser_id)
    db.commit()
    count = counts.get(db, demand.id)
    assert (count.value, count.paper, count.online) == (2, 2, 0)
    signing.withdraw(db, [second.id])
    db.commit()
    count = counts.get(db, demand.id)
    assert (count.value, count.paper, count.online) == (1, 1, 0)
    result = runner.invoke(args=["recount", "--check"])
    assert result.exit_code == 0, result.output


def test_audit_page_names_paper_entries_and_imports(owner, db, campaign, demand, event, path):
    post_row(owner, path)
    post_row(owner, path)  # the same person again: not added
    post_csv(owner, path, GOOD_CSV)
    page = text_of(owner.get(f"/organiser/campaigns/{campaign.slug}/audit").text)
    assert page.count("Typed in a paper signature") == 2
    assert "Imported paper signatures (CSV)" in page
    assert f"Event {event.code}, demand {demand.slug}: added." in page
    assert f"Event {event.code}, demand {demand.slug}: not added (already signed)." in page
    assert "6 rows: 2 added, 0 duplicates, 4 with errors." in page
    assert "paper.entry" not in page and "paper.import" not in page  # no raw action names
