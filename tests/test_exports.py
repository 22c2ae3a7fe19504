"""Exports: streamed CSV with filters and consent rules, delivery report PDF, anonymisation."""

from __future__ import annotations

import csv
import io
import itertools
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.exceptions import InvalidTag
from flask import current_app
from pypdf import PdfReader
from sqlalchemy import select

from petition.models import AuditEntry, Demand, Signature, SignatureStatus
from petition.organiser import exports, report
from petition.organiser.exports import COLUMNS, neutralise
from petition.signing import counts
from tests.helpers import login, make_campaign, make_organiser

_emails = itertools.count()


def add_signature(
    db,
    demand: Demand,
    *,
    name: str = "Ayşe Yılmaz",
    email: str | None = None,
    country: str | None = "DE",
    postcode: str | None = None,
    source: str | None = None,
    status: SignatureStatus = SignatureStatus.CONFIRMED,
    contact_consent: bool = False,
    public_consent: bool = False,
    created_at: datetime | None = None,
) -> Signature:
    """Insert one signature (encrypted like the sign form does) and keep the count exact."""
    cipher = current_app.extensions["petition.cipher"]
    email = email or f"signer{next(_emails)}@example.org"
    created_at = created_at or datetime(2026, 5, 10, 12, 0, tzinfo=UTC)
    signature = Signature(
        demand_id=demand.id,
        email_key=cipher.email_key(email),
        email_domain_key=cipher.domain_key(email),
        name_enc=cipher.encrypt(name, "signature.name"),
        email_enc=cipher.encrypt(email, "signature.email"),
        postcode_enc=cipher.encrypt(postcode, "signature.postcode") if postcode else None,
        country=country,
        source=source,
        ip_hash=cipher.ip_hash("192.0.2.1"),
        status=status,
        contact_consent=contact_consent,
        public_consent=public_consent,
        created_at=created_at,
        confirmed_at=created_at + timedelta(minutes=5) if status == SignatureStatus.CONFIRMED else None,
    )
    db.add(signature)
    db.flush()
    if status == SignatureStatus.CONFIRMED:
        counts.add(db, demand.id, 1)
    db.commit()
    return signature


@pytest.fixture
def campaign(db):
    """A campaign with three demands, and its owner logged in."""
    return make_campaign(db, title="Freedom now")


@pytest.fixture
def owner(client, db, campaign):
    """The campaign's owner, logged in with the test client."""
    make_organiser(db, email="owner@example.org", campaign=campaign, role="owner")
    login(client, "owner@example.org")
    return client


def export(client, campaign, **params):
    """GET the CSV export; returns the response (not yet read)."""
    return client.get(f"/organiser/campaigns/{campaign.slug}/export.csv", query_string=params)


def rows_of(response) -> list[dict[str, str]]:
    """Parse a CSV export (BOM tolerated) into dicts, checking the header."""
    text = response.get_data().decode("utf-8-sig")
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader)
    assert tuple(header) == COLUMNS
    return [dict(zip(header, row, strict=True)) for row in reader]


def audit_entries(db, action: str) -> list[AuditEntry]:
    db.rollback()
    db.expire_all()
    return list(db.scalars(select(AuditEntry).where(AuditEntry.action == action)
                           .order_by(AuditEntry.id)))


# --- CSV export -------------------------------------------------------------------------------

def test_export_is_streamed_csv_of_confirmed_signatures(owner, db, campaign):
    demand = campaign.demands[0]
    add_signature(db, demand, name="Confirmed One", postcode="10115", source="stall-1")
    add_signature(db, demand, name="Confirmed Two")
    add_signature(db, demand, name="Still Pending", status=SignatureStatus.PENDING)

    response = export(owner, campaign)
    assert response.status_code == 200
    assert response.is_streamed
    assert response.mimetype == "text/csv"
    assert response.mimetype_params["charset"] == "utf-8"
    assert response.headers["Cache-Control"] == "no-store"
    disposition = response.headers["Content-Disposition"]
    assert disposition.startswith('attachment; filename="freedom-now-all-confirmed-')
    assert disposition.endswith('.csv"')
    body = response.get_data()
    assert not body.startswith(b"\xef\xbb\xbf")
    rows = rows_of(response)
    assert [r["name"] for r in rows] == ["Confirmed One", "Confirmed Two"]
    first = rows[0]
    assert first["demand"] == "Demand number 1"
    assert first["country"] == "DE"
    assert first["postcode"] == "10115"
    assert first["source"] == "stall-1"
    assert first["signed_at"] == "2026-05-10 12:00:00"
    assert first["confirmed_at"] == "2026-05-10 12:05:00"
    assert first["status"] == "confirmed"


def _dataset(db, campaign) -> None:
    d1, d2 = campaign.demands[0], campaign.demands[1]
    day = datetime(2026, 5, 10, 12, 0, tzinfo=UTC)
    add_signature(db, d1, name="Early Bird", created_at=day - timedelta(days=9))
    add_signature(db, d1, name="On Time", created_at=day, source="stall-1", country="TR")
    add_signature(db, d1, name="Late Comer", created_at=day + timedelta(days=9), country="GB")
    add_signature(db, d1, name="Not Yet", status=SignatureStatus.PENDING, created_at=day)
    add_signature(db, d1, name="Fraudster", status=SignatureStatus.INVALIDATED, created_at=day)
    add_signature(db, d2, name="Other Demand", created_at=day, source="stall-1")


@pytest.mark.parametrize(("params", "expected"), [
    ({}, {"Early Bird", "On Time", "Late Comer", "Other Demand"}),
    ({"status": "pending"}, {"Not Yet"}),
    ({"status": "invalidated"}, {"Fraudster"}),
    ({"status": "all"}, {"Early Bird", "On Time", "Late Comer", "Not Yet", "Fraudster",
                         "Other Demand"}),
    ({"date_from": "2026-05-10"}, {"On Time", "Late Comer", "Other Demand"}),
    ({"date_to": "2026-05-10"}, {"Early Bird", "On Time", "Other Demand"}),
    ({"date_from": "2026-05-10", "date_to": "2026-05-10"}, {"On Time", "Other Demand"}),
    ({"date_from": "", "date_to": "", "source": "", "country": "", "demand": ""},
     {"Early Bird", "On Time", "Late Comer", "Other Demand"}),
    ({"source": "stall-1"}, {"On Time", "Other Demand"}),
    ({"country": "GB"}, {"Late Comer"}),
    ({"demand": "demand-number-2"}, {"Other Demand"}),
    ({"demand": "demand-number-1", "source": "stall-1", "country": "TR"}, {"On Time"}),
])
def test_export_filters(owner, db, campaign, params, expected):
    _dataset(db, campaign)
    response = export(owner, campaign, **params)
    assert response.status_code == 200
    assert {r["name"] for r in rows_of(response)} == expected


def test_export_filename_names_the_demand(owner, db, campaign):
    response = export(owner, campaign, demand="demand-number-2", status="pending")
    response.get_data()
    assert 'filename="freedom-now-demand-number-2-pending-' in response.headers["Content-Disposition"]


def test_email_only_with_contact_consent(owner, db, campaign):
    demand = campaign.demands[0]
    add_signature(db, demand, name="Keep Me Posted", email="yes@example.org", contact_consent=True)
    add_signature(db, demand, name="No Contact", email="no@example.org", contact_consent=False)
    add_signature(db, demand, name="Unconfirmed", email="pending@example.org",
                  contact_consent=True, status=SignatureStatus.PENDING)
    response = export(owner, campaign, status="all")
    emails = {r["name"]: r["email"] for r in rows_of(response)}
    assert emails == {"Keep Me Posted": "yes@example.org", "No Contact": "", "Unconfirmed": ""}
    body = response.get_data()
    assert b"no@example.org" not in body and b"pending@example.org" not in body


@pytest.mark.parametrize("payload", ["=1+1", "+x", "-x", "@x", "\tx", "\rx",
                                     "=HYPERLINK(\"http://evil.test\",\"x\")"])
def test_formulas_are_neutralised(owner, db, campaign, payload):
    add_signature(db, campaign.demands[0], name=payload, source=payload, postcode=None)
    [row] = rows_of(export(owner, campaign))
    assert row["name"] == "'" + payload
    assert row["source"] == "'" + payload


def test_neutralise_leaves_ordinary_text_alone():
    assert neutralise("Ayşe") == "Ayşe"
    assert neutralise("a=b") == "a=b"
    assert neutralise("") == ""
    assert neutralise("-") == "'-"


def test_excel_option_adds_bom(owner, db, campaign):
    add_signature(db, campaign.demands[0], name="Zoë Ünal")
    response = export(owner, campaign, excel="y")
    body = response.get_data()
    assert body.startswith(b"\xef\xbb\xbf" + b"demand,name,")
    assert body.count(b"\xef\xbb\xbf") == 1
    assert [r["name"] for r in rows_of(response)] == ["Zoë Ünal"]


UNICODE_NAMES = [
    "Ayşe Yılmaz Ğüç",
    "Иван Петрович",
    "ئابدۇرېھىم ئۆتكۈر",
    "王小明",
    "Zoë \u00e9\u0301 O'Brien, \"Jr\"",
    "Émilie\nNewline",
]


def test_unicode_names_round_trip(owner, db, campaign):
    for name in UNICODE_NAMES:
        add_signature(db, campaign.demands[0], name=name)
    names = [r["name"] for r in rows_of(export(owner, campaign))]
    assert names == UNICODE_NAMES


def test_export_writes_audit_entry_with_rows_written(owner, db, campaign):
    for i in range(3):
        add_signature(db, campaign.demands[0], name=f"Person {i}", source="stall-1")
    add_signature(db, campaign.demands[1], name="Elsewhere", source="stall-1")
    response = export(owner, campaign, demand="demand-number-1", source="stall-1",
                      date_from="2026-01-01")
    assert len(rows_of(response)) == 3
    response.close()
    [entry] = audit_entries(db, "export.csv")
    assert entry.row_count == 3
    assert entry.campaign_id == campaign.id
    assert entry.organiser.email == "owner@example.org"
    assert entry.detail["complete"] is True
    assert entry.detail["filters"] == {
        "demand_id": campaign.demands[0].id, "status": "confirmed",
        "signed_from": "2026-01-01", "signed_to": None, "source": "stall-1",
        "country": None, "excel": False,
    }


def test_cut_short_download_logs_rows_actually_sent(owner, db, campaign, monkeypatch):
    monkeypatch.setattr(exports, "_ROWS_PER_CHUNK", 2)
    for i in range(5):
        add_signature(db, campaign.demands[0], name=f"Person {i}")
    response = export(owner, campaign)
    chunks = iter(response.response)
    next(chunks)  # header and rows 1-2
    next(chunks)  # rows 3-4: asking for it means rows 1-2 went out
    response.close()  # the client went away
    [entry] = audit_entries(db, "export.csv")
    assert entry.row_count == 2
    assert entry.detail["complete"] is False


def test_empty_export_has_header_only(owner, db, campaign):
    response = export(owner, campaign)
    assert rows_of(response) == []
    response.close()
    [entry] = audit_entries(db, "export.csv")
    assert entry.row_count == 0


def _reference_csv(db, campaign, status: str) -> str:
    """The export as plain per-row code writes it: the output the fast path must reproduce."""
    cipher = current_app.extensions["petition.cipher"]

    def when(moment: datetime | None) -> str:
        return moment.isoformat(" ", "seconds")[:19] if moment else ""

    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(COLUMNS)
    for demand in campaign.demands:
        query = select(Signature).where(Signature.demand_id == demand.id)
        if status != "all":
            query = query.where(Signature.status == status)
        for sig in db.scalars(query.order_by(Signature.created_at, Signature.id)):
            may_contact = sig.contact_consent and sig.status == SignatureStatus.CONFIRMED
            email = cipher.decrypt(sig.email_enc, "signature.email") if may_contact else None
            writer.writerow([
                neutralise(demand.title),
                neutralise(cipher.decrypt(sig.name_enc, "signature.name") or ""),
                neutralise(sig.country or ""),
                neutralise(cipher.decrypt(sig.postcode_enc, "signature.postcode") or ""),
                neutralise(sig.source or ""),
                when(sig.created_at),
                when(sig.confirmed_at),
                sig.status,
                neutralise(email or ""),
            ])
    return buffer.getvalue()


@pytest.mark.parametrize("status", ["confirmed", "all"])
def test_export_matches_plain_per_row_output(owner, db, campaign, monkeypatch, status):
    """Batches (3 rows here, across demands), SQL-side dates and emails, column-wise
    decryption and neutralising give byte for byte what the plain per-row code gives."""
    monkeypatch.setattr(exports, "_ROWS_PER_CHUNK", 3)
    d1, d2, _d3 = campaign.demands
    d2.title = "=Formula demand, \"quoted\""
    db.commit()
    base = datetime(2026, 5, 10, 12, 0, 59, 999999, tzinfo=UTC)
    names = ["Ayşe Yılmaz", "=1+1", "+x", "-5", "@a", "\tTab", "\rCR", "a,b \"c\"", "王小明",
             "Émilie\nNewline", "'already", " =space first"]
    statuses = [SignatureStatus.CONFIRMED, SignatureStatus.PENDING, SignatureStatus.INVALIDATED]
    anonymised = []
    for i in range(23):
        signature = add_signature(
            db, d1 if i % 3 else d2,
            name=names[i % len(names)],
            country=[None, "DE", "TR", "GB"][i % 4],
            postcode=[None, "10115", "-12", "=A1"][i % 4],
            source=[None, "stall-1", "@qr", "=cmd|' /C calc'!A0", "news,letter"][i % 5],
            status=statuses[i % 3] if i % 4 else SignatureStatus.CONFIRMED,
            contact_consent=i % 2 == 0,
            email=[f"=evil{i}@example.org", f"p{i}@example.org"][i % 2],
            created_at=base + timedelta(minutes=i % 7, microseconds=-(i % 2) * 999999),
        )
        if i == 8:
            anonymised.append(signature)
    for signature in anonymised:  # what `anonymise` leaves: no PII at all
        signature.name_enc = signature.email_enc = signature.postcode_enc = None
    db.commit()

    response = export(owner, campaign, status=status)
    body = response.get_data().decode()
    assert body == _reference_csv(db, campaign, status)
    assert body.count("\n") > 10
    response.close()
    [entry] = audit_entries(db, "export.csv")
    assert entry.row_count == len(rows_of(response)) and entry.detail["complete"] is True


def test_decrypt_many_matches_decrypt(app):
    with app.app_context():
        cipher = current_app.extensions["petition.cipher"]
        blobs = [cipher.encrypt(value, "signature.name") for value in ("a", "Ayşe", "", "王")]
        blobs.append(None)
        assert cipher.decrypt_many(blobs, "signature.name") == [
            cipher.decrypt(blob, "signature.name") for blob in blobs]
        assert cipher.decrypt_many([memoryview(blobs[1])], "signature.name") == ["Ayşe"]
        assert cipher.decrypt_many([], "signature.name") == []
        with pytest.raises(ValueError, match="unknown ciphertext version"):
            cipher.decrypt_many([blobs[0], b"\x02" + blobs[1][1:]], "signature.name")
        with pytest.raises(ValueError, match="unknown ciphertext version"):
            cipher.decrypt_many([b""], "signature.name")
        with pytest.raises(InvalidTag):
            cipher.decrypt_many([blobs[0]], "signature.email")


@pytest.mark.parametrize(("params", "message"), [
    ({"date_from": "2026-13-01"}, "Enter a date as YYYY-MM-DD"),
    ({"date_to": "yesterday"}, "Enter a date as YYYY-MM-DD"),
    ({"date_from": "2026-05-02", "date_to": "2026-05-01"}, "The end date is before the start date."),
    ({"status": "deleted"}, "Choose one of the listed statuses."),
    ({"status": ""}, "Choose one of the listed statuses."),
    ({"demand": "no-such-demand"}, "There is no such demand in this campaign."),
    ({"country": "XX"}, "Choose a country from the list."),
    ({"source": "s" * 65}, "64"),
])
def test_bad_filters_show_message_and_export_nothing(owner, db, campaign, params, message):
    add_signature(db, campaign.demands[0], name="Should Not Leak")
    response = export(owner, campaign, **params)
    assert response.status_code == 400
    assert response.mimetype == "text/html"
    assert message in response.text
    assert "Should Not Leak" not in response.text
    assert "Content-Disposition" not in response.headers
    assert audit_entries(db, "export.csv") == []


def test_demand_of_another_campaign_is_unknown(owner, db, campaign):
    other = make_campaign(db, title="Other campaign")
    response = export(owner, campaign, demand=other.demands[0].slug)
    assert response.status_code == 400


def test_exports_page_shows_form_and_report_links(owner, campaign):
    response = owner.get(f"/organiser/campaigns/{campaign.slug}/exports")
    assert response.status_code == 200
    page = response.text
    assert f'action="/organiser/campaigns/{campaign.slug}/export.csv"' in page
    assert "Excel (UTF-8 with BOM)" in page
    assert '<option selected value="confirmed">' in page
    for demand in campaign.demands:
        assert f"/organiser/campaigns/{campaign.slug}/demands/{demand.slug}/report.pdf" in page
    assert "<script>" not in page and "style=" not in page


# --- Roles ------------------------------------------------------------------------------------

def _routes(campaign) -> list[str]:
    base = f"/organiser/campaigns/{campaign.slug}"
    return [f"{base}/exports", f"{base}/export.csv",
            f"{base}/demands/{campaign.demands[0].slug}/report.pdf"]


def test_editor_may_export(client, db, campaign):
    make_organiser(db, email="editor@example.org", campaign=campaign, role="editor")
    login(client, "editor@example.org")
    for path in _routes(campaign):
        response = client.get(path)
        assert response.status_code == 200, path
        response.close()


def test_viewer_gets_403(client, db, campaign):
    make_organiser(db, email="viewer@example.org", campaign=campaign, role="viewer")
    login(client, "viewer@example.org")
    for path in _routes(campaign):
        assert client.get(path).status_code == 403, path
    assert audit_entries(db, "export.csv") == []
    assert audit_entries(db, "report.pdf") == []


def test_non_member_gets_404(client, db, campaign):
    other = make_campaign(db, title="Their own")
    make_organiser(db, email="stranger@example.org", campaign=other, role="owner")
    login(client, "stranger@example.org")
    for path in _routes(campaign):
        assert client.get(path).status_code == 404, path


def test_anonymous_is_sent_to_login(client, campaign):
    for path in _routes(campaign):
        response = client.get(path)
        assert response.status_code == 302, path
        assert "/organiser/login" in response.headers["Location"]


# --- Delivery report --------------------------------------------------------------------------

def _pdf_text(response) -> str:
    reader = PdfReader(io.BytesIO(response.get_data()))
    return "\n".join(page.extract_text() for page in reader.pages)


def test_delivery_report_lists_only_consenting_confirmed_names(owner, db, campaign):
    demand = campaign.demands[0]
    add_signature(db, demand, name="Ayşe Yılmaz", public_consent=True, country="TR")
    add_signature(db, demand, name="Иван Петров", public_consent=True, country="DE")
    add_signature(db, demand, name="ئابدۇرېھىم ئۆتكۈر", public_consent=True, country="KZ")
    add_signature(db, demand, name="Hidden Person", public_consent=False, country="DE")
    add_signature(db, demand, name="Pending Person", public_consent=True,
                  status=SignatureStatus.PENDING)
    add_signature(db, campaign.demands[1], name="Other Demand Person", public_consent=True)

    response = owner.get(f"/organiser/campaigns/{campaign.slug}/demands/{demand.slug}/report.pdf")
    assert response.status_code == 200
    assert response.mimetype == "application/pdf"
    assert response.headers["Cache-Control"] == "no-store"
    assert 'filename="demand-number-1-delivery-report.pdf"' in response.headers["Content-Disposition"]
    text = _pdf_text(response)
    assert "Demand number 1" in text
    assert "Addressed to: Someone" in text
    assert "Freedom now" in text and "Test Org" in text
    assert "4 confirmed signatures" in text
    assert "Ayşe Yılmaz" in text
    assert "Иван Петров" in text
    assert "ئابدۇرېھىم ئۆتكۈر" in text
    assert "Germany" in text and "Türkiye" in text and "Kazakhstan" in text
    assert "Hidden Person" not in text
    assert "Pending Person" not in text
    assert "Other Demand Person" not in text

    [entry] = audit_entries(db, "report.pdf")
    assert entry.row_count == 3
    assert entry.detail["demand_id"] == demand.id
    assert entry.organiser.email == "owner@example.org"


def test_delivery_report_survives_glyphs_the_font_lacks(owner, db, campaign):
    demand = campaign.demands[0]
    add_signature(db, demand, name="王小明", public_consent=True)
    add_signature(db, demand, name="Emoji 🕊️ Friend", public_consent=True)
    add_signature(db, demand, name="\u202eevil\u202c Name\x07", public_consent=True)
    response = owner.get(f"/organiser/campaigns/{campaign.slug}/demands/{demand.slug}/report.pdf")
    assert response.status_code == 200
    text = _pdf_text(response)
    assert "3 confirmed signatures" in text
    assert "\ufffd" in text
    assert "could not be shown" in text
    assert "evil Name" in text


def test_delivery_report_of_another_campaigns_demand_is_404(owner, db, campaign):
    other = make_campaign(db, title="Other campaign")
    response = owner.get(
        f"/organiser/campaigns/{campaign.slug}/demands/{other.demands[0].slug}/report.pdf")
    assert response.status_code == 404


# --- Anonymisation ----------------------------------------------------------------------------

@pytest.fixture
def closed_campaign(db, campaign):
    """Demand 1 closed on 2025-01-10, demand 2 closed by hand without a date, demand 3 open."""
    d1, d2, d3 = campaign.demands
    d1.closes_at = datetime(2025, 1, 10, tzinfo=UTC)
    d1.status = "closed"
    d2.status = "won"
    d3.closes_at = datetime.now(UTC) + timedelta(days=30)
    db.commit()
    for demand in (d1, d2, d3):
        add_signature(db, demand, name=f"Signer of {demand.slug}", postcode="10115",
                      source="stall-1", country="TR", contact_consent=True, public_consent=True)
        add_signature(db, demand, name=f"Pending on {demand.slug}", status=SignatureStatus.PENDING)
    return campaign


def _signatures(db, demand) -> list[Signature]:
    db.rollback()
    db.expire_all()
    return list(db.scalars(select(Signature).where(Signature.demand_id == demand.id)))


def test_anonymise_erases_pii_and_keeps_counts(db, runner, closed_campaign):
    d1, d2, d3 = closed_campaign.demands
    before = {d.id: counts.get(db, d.id).value for d in (d1, d2, d3)}

    result = runner.invoke(args=["anonymise", "--closed-before", "2025-02-01"])
    assert result.exit_code == 0, result.output
    assert "2 signatures on 1 demands anonymised." in result.output
    assert f"skipped demand {d2.slug}" in result.output

    for signature in _signatures(db, d1):
        assert signature.name_enc is None and signature.email_enc is None
        assert signature.postcode_enc is None and signature.email_key is None
        assert signature.email_domain_key is None and signature.ip_hash is None
    confirmed = [s for s in _signatures(db, d1) if s.status == SignatureStatus.CONFIRMED]
    assert [(s.country, s.source, s.confirmed_at is not None) for s in confirmed] == [
        ("TR", "stall-1", True)]
    for demand in (d2, d3):
        assert all(s.name_enc is not None and s.email_key is not None
                   for s in _signatures(db, demand))
    assert {d.id: counts.get(db, d.id).value for d in (d1, d2, d3)} == before
    check = runner.invoke(args=["recount", "--check"])
    assert check.exit_code == 0, check.output
    assert "0 with drift" in check.output

    [entry] = audit_entries(db, "anonymise")
    assert entry.row_count == 2 and entry.organiser_id is None
    assert entry.detail == {"closed_before": "2025-02-01", "demands": {d1.slug: 2}}

    again = runner.invoke(args=["anonymise", "--closed-before", "2025-02-01"])
    assert "0 signatures on 0 demands anonymised." in again.output


def test_anonymise_respects_the_date(db, runner, closed_campaign):
    result = runner.invoke(args=["anonymise", "--closed-before", "2025-01-10"])
    assert result.exit_code == 0, result.output
    assert "0 signatures on 0 demands anonymised." in result.output
    assert all(s.name_enc is not None for s in _signatures(db, closed_campaign.demands[0]))


def test_anonymise_dry_run_changes_nothing(db, runner, closed_campaign):
    d1 = closed_campaign.demands[0]
    result = runner.invoke(args=["anonymise", "--closed-before", "2025-02-01", "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "Dry run: 2 signatures on 1 demands would be anonymised" in result.output
    assert all(s.name_enc is not None for s in _signatures(db, d1))
    assert audit_entries(db, "anonymise") == []


@pytest.mark.parametrize(("value", "message"), [
    ("2025-13-01", "use YYYY-MM-DD"),
    ("yesterday", "use YYYY-MM-DD"),
    ("20250101", "use YYYY-MM-DD"),
    ("2025-W01-1", "use YYYY-MM-DD"),
    ("2999-01-01", "in the future"),
])
def test_anonymise_rejects_bad_dates(db, runner, closed_campaign, value, message):
    result = runner.invoke(args=["anonymise", "--closed-before", value])
    assert result.exit_code == 2
    assert message in result.output
    assert "--closed-before" in result.output
    assert all(s.name_enc is not None for s in _signatures(db, closed_campaign.demands[0]))


def test_page_footer_keeps_the_text_shaping_of_the_page_it_breaks(app):
    if not report.SHAPING_AVAILABLE:
        pytest.skip("uharfbuzz is not installed")
    with app.test_request_context("/"):
        pdf = report._ReportPDF()
        pdf.add_font(report.FAMILY, "", str(report.REGULAR_FONT))
        pdf.footer_text = "Latin footer"
        pdf.add_page()
        pdf.set_font(report.FAMILY, "", 10)
        pdf.set_text_shaping(True)
        for _ in range(80):  # several automatic page breaks, each running the footer
            pdf.cell(0, 5.5, "ئابدۇرېھىم ئۆتكۈر", new_x="LMARGIN", new_y="NEXT")
        assert pdf.page > 1
        assert pdf.text_shaping is not None
        assert report.finish(pdf).startswith(b"%PDF")  # also closes the font files
