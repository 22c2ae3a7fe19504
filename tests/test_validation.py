"""Bad input on the public pages: a clear message, the right status, never a 5xx and never a
partial write; the sign forms keep what the supporter typed (DESIGN.md rule 7)."""

from __future__ import annotations

import io
import itertools
import time
from html.parser import HTMLParser
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from itsdangerous import TimestampSigner, URLSafeTimedSerializer
from jinja2.bccache import Bucket, BytecodeCache
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from petition.db import get_session
from petition.models import (
    Campaign,
    CampaignStatus,
    Demand,
    DemandStatus,
    OutboxMessage,
    Signature,
    SignatureStatus,
)
from petition.signing import counts, tokens
from tests.conftest import Outbox
from tests.helpers import csrf_token, make_campaign, sign_petition, signer

CSRF_MESSAGE = (
    "This form was open for too long or in another browser session. Your details are kept "
    "below: please check them and sign again."
)
UNREADABLE_NAME = "Your name contains characters that could not be read; please retype it."
UNREADABLE_EMAIL = "Your email address contains characters that could not be read."
NO_SUCH_DEMAND = "One of the ticked demands does not exist."
TICK_ONE = "Please tick at least one demand to sign."
FORMS = ["petition", "campaign"]
_emails = itertools.count()


class Page(HTMLParser):
    """What a rendered sign form shows: values, selections, and error messages per field."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.values: dict[str, str] = {}
        self.checked: dict[str, list[str]] = {}
        self.selected: dict[str, str] = {}
        self.field_errors: dict[str, list[str]] = {}
        self.summary: list[str] = []
        self.form_errors: list[str] = []
        self._select: str | None = None
        self._list: list[str] | None = None
        self._where: str | None = None
        self._text: list[str] | None = None
        self.feed(text)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "input" and a.get("type") == "checkbox":
            if "checked" in a:
                self.checked.setdefault(a["name"], []).append(a.get("value", "y"))
        elif tag == "input" and "name" in a:
            self.values.setdefault(a["name"], a.get("value", ""))
        elif tag == "select":
            self._select = a.get("name")
        elif tag == "option" and "selected" in a and self._select:
            self.selected[self._select] = a.get("value", "")
        elif tag == "ul" and a.get("class") == "field-errors":
            self._list = self.field_errors.setdefault(a["id"].removesuffix("-error"), [])
            self._where = "ul"
        elif tag == "div" and a.get("class") == "error-summary":
            self._list, self._where = self.summary, "summary"
        elif tag == "div" and a.get("class") == "form-error":
            self._list, self._where = self.form_errors, "div"
        elif tag in ("li", "p") and self._list is not None:
            self._text = []

    def handle_data(self, data: str) -> None:
        if self._text is not None:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag in ("li", "p") and self._text is not None and self._list is not None:
            self._list.append("".join(self._text).strip())
            self._text = None
        elif tag == "select":
            self._select = None
        elif (tag, self._where) in (("ul", "ul"), ("ul", "summary"), ("div", "div")):
            self._list = self._where = None


def _written(db: Session) -> tuple[int, int]:
    """(signatures, outbox messages) in the database."""
    db.expire_all()
    return (
        db.scalar(select(func.count()).select_from(Signature)) or 0,
        db.scalar(select(func.count()).select_from(OutboxMessage)) or 0,
    )


def _signatures(db: Session) -> list[Signature]:
    db.expire_all()
    return list(db.scalars(select(Signature).order_by(Signature.id)))


def _decrypt(app: Flask, signature: Signature, field: str) -> str | None:
    blob = getattr(signature, f"{field}_enc")
    return app.extensions["petition.cipher"].decrypt(blob, f"signature.{field}")


def _page_path(campaign: Campaign, form: str) -> str:
    if form == "petition":
        return f"/petitions/{campaign.demands[0].slug}"
    return f"/campaigns/{campaign.slug}"


def _post(
    client: FlaskClient, campaign: Campaign, form: str, fields: dict[str, Any], *, csrf: bool = True
):  # noqa: ANN202
    """Submit a sign form with exactly these fields (plus a ticked demand and the CSRF token)."""
    path = _page_path(campaign, form)
    data = dict(fields)
    if form == "campaign":
        data.setdefault("demands", [str(campaign.demands[0].id)])
    if csrf:
        data["csrf_token"] = csrf_token(client, path)
    return client.post(f"{path}/sign", data=data)


def _assert_kept(page: Page, fields: dict[str, Any], skip: str | None = None) -> None:
    """The 400 page re-renders what was typed (trimmed) in every field but `skip`."""
    for name in ("name", "email", "postcode"):
        if name != skip and name in fields:
            assert page.values[name] == fields[name].strip(), name
    if skip != "country" and "country" in fields:
        assert page.selected.get("country") == fields["country"]
    if "public_consent" in fields:
        assert page.checked.get("public_consent") == ["y"]


class _MemoryBytecodeCache(BytecodeCache):
    """Compiled templates shared by the many apps of this module (keeps it fast)."""

    def __init__(self) -> None:
        self.store: dict[str, bytes] = {}

    def load_bytecode(self, bucket: Bucket) -> None:
        if bucket.key in self.store:
            bucket.bytecode_from_string(self.store[bucket.key])

    def dump_bytecode(self, bucket: Bucket) -> None:
        self.store[bucket.key] = bucket.bytecode_to_string()


_TEMPLATES = _MemoryBytecodeCache()


@pytest.fixture
def make_app(make_app):  # noqa: ANN001, ANN201
    """The conftest factory, with compiled templates cached across tests."""

    def _make(**overrides: object) -> Flask:
        app = make_app(**overrides)
        app.jinja_env.bytecode_cache = _TEMPLATES
        return app

    return _make


@pytest.fixture
def app(make_app) -> Flask:  # noqa: ANN001
    """The default test app (module override: uses the caching factory above)."""
    return make_app()


def on_forms(cases: list[Any], *, both: set[str] | None = None) -> list[Any]:
    """Each case on the petition form, and those named in `both` on the campaign form too.

    Both forms share SignatureForm, so the campaign form gets one case per rule (keeps it fast).
    """
    params = []
    for case in cases:
        for form in FORMS:
            if form == "petition" or both is None or case.id in both:
                params.append(pytest.param(form, *case.values, id=f"{form}-{case.id}"))
    return params


def _token_once(client: FlaskClient, path: str) -> str:
    """The CSRF token of a page, loaded once per client (for many submissions)."""
    token = getattr(client, "_validation_token", None)
    if token is None:
        token = csrf_token(client, path)
        client._validation_token = token  # type: ignore[attr-defined]
    return token


@pytest.fixture
def campaign(db: Session) -> Campaign:
    """An open campaign with three open demands."""
    return make_campaign(db, demands=3)


# --- the signer fields, on both sign forms ---------------------------------------------------

BAD_FIELDS = [
    # name
    pytest.param("name", "", "Please enter your name.", id="name-empty"),
    pytest.param("name", "   \t  ", "Please enter your name.", id="name-whitespace"),
    pytest.param("name", "\u200b\u200b", "Please enter your name.", id="name-zero-width-only"),
    pytest.param("name", "...", "Please enter your name.", id="name-punctuation-only"),
    pytest.param("name", "x" * 121, "Your name can be at most 120 characters long.", id="name-121"),
    pytest.param("name", "  " + "x" * 121 + "  ", "Your name can be at most 120 characters long.",
                 id="name-121-trimmed"),
    pytest.param("name", "Ayşe http://spam.example", "Please enter just your name, without web addresses.",
                 id="name-http"),
    pytest.param("name", "Ayşe www.spam", "Please enter just your name, without web addresses.",
                 id="name-www"),
    pytest.param("name", "Buy at example.com", "Please enter just your name, without web addresses.",
                 id="name-domain"),
    pytest.param("name", "Ay\x07şe", "Your name contains invisible control characters; please retype it.",
                 id="name-bell"),
    pytest.param("name", "Ayşe\u202eznalY", "Your name contains invisible control characters; please retype it.",
                 id="name-bidi-override"),
    pytest.param("name", "Ayşe\u2028Yılmaz", "Your name contains invisible control characters; please retype it.",
                 id="name-line-separator"),
    pytest.param("name", "<script>alert(1)</script>", "Your name cannot contain the characters < or >.",
                 id="name-script"),
    pytest.param("name", "Ayşe <b>Yılmaz</b>", "Your name cannot contain the characters < or >.",
                 id="name-html"),
    pytest.param("name", "Ren\ufffd", UNREADABLE_NAME, id="name-replacement-char"),
    # email
    pytest.param("email", "", "Please enter your email address.", id="email-empty"),
    pytest.param("email", "   ", "Please enter your email address.", id="email-whitespace"),
    pytest.param("email", "ayse.example.org",
                 "This email address is not valid: An email address must have an @-sign.", id="email-no-at"),
    pytest.param("email", "ayse@@example.org",
                 "This email address is not valid: The part after the @-sign contains invalid characters: '@'.",
                 id="email-two-at"),
    pytest.param("email", "a@b@example.org",
                 "This email address is not valid: The part after the @-sign contains invalid characters: '@'.",
                 id="email-two-at-apart"),
    pytest.param("email", "ay se@example.org",
                 "This email address is not valid: The email address contains invalid characters before the @-sign: SPACE.",
                 id="email-space"),
    pytest.param("email", "ayse@example",
                 "This email address is not valid: The part after the @-sign is not valid. It should have a period.",
                 id="email-no-dot"),
    pytest.param("email", "<script>@example.org",
                 "This email address is not valid: There can't be anything after the email address.",
                 id="email-script"),
    pytest.param("email", "a" * 243 + "@example.org", "An email address can be at most 254 characters long.",
                 id="email-255"),
    pytest.param("email", "a" * 5000 + "@example.org", "An email address can be at most 254 characters long.",
                 id="email-5000"),
    pytest.param("email", "ay\ufffdse@example.org", UNREADABLE_EMAIL, id="email-replacement-char"),
    # country
    pytest.param("country", "", "Please choose your country.", id="country-empty"),
    pytest.param("country", "XX", "Please choose your country from the list.", id="country-XX"),
    pytest.param("country", "de", "Please choose your country from the list.", id="country-lowercase"),
    pytest.param("country", "DEU", "Please choose your country from the list.", id="country-alpha3"),
    pytest.param("country", "Germany", "Please choose your country from the list.", id="country-name"),
    pytest.param("country", "D" * 3000, "Please choose your country from the list.", id="country-long"),
    # postcode
    pytest.param("postcode", "1" * 17, "A postcode can be at most 16 characters long.", id="postcode-17"),
    pytest.param("postcode", "a-" * 15000 + "$", "A postcode can be at most 16 characters long.",
                 id="postcode-long-no-backtracking"),
    pytest.param("postcode", "10$115", "A postcode can only contain letters, digits, spaces and dashes.",
                 id="postcode-dollar"),
    pytest.param("postcode", "<b>10115", "A postcode can only contain letters, digits, spaces and dashes.",
                 id="postcode-lt"),
    pytest.param("postcode", "-10115", "A postcode can only contain letters, digits, spaces and dashes.",
                 id="postcode-leading-dash"),
    pytest.param("postcode", "10_115", "A postcode can only contain letters, digits, spaces and dashes.",
                 id="postcode-underscore"),
]


@pytest.mark.parametrize(
    ("form", "field", "value", "message"),
    on_forms(BAD_FIELDS, both={"name-whitespace", "name-121", "name-http", "name-bidi-override",
                               "name-script", "email-two-at", "email-255", "country-XX",
                               "postcode-17", "postcode-dollar"}),
)
def test_bad_field_is_refused_with_its_message_and_the_form_kept(
    client, db, campaign, form, field, value, message
):
    fields = signer(**{field: value})
    response = _post(client, campaign, form, fields)
    assert response.status_code == 400
    page = Page(response.text)
    assert page.field_errors == {field: [message]}
    assert page.summary == [message]
    assert page.form_errors == []
    _assert_kept(page, fields, skip=field)
    if field != "country":
        assert page.values[field] == value.strip()  # the bad value too, to correct it
    assert "<script>" not in response.text and "<b>" not in response.text
    if form == "campaign":
        assert page.checked["demands"] == [str(campaign.demands[0].id)]
    assert _written(db) == (0, 0)


MISSING = [
    pytest.param("name", "Please enter your name.", id="name"),
    pytest.param("email", "Please enter your email address.", id="email"),
    pytest.param("country", "Please choose your country.", id="country"),
]


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize(("field", "message"), MISSING)
def test_missing_field_is_refused(client, db, campaign, form, field, message):
    fields = signer(**{field: None})
    assert field not in fields
    response = _post(client, campaign, form, fields)
    assert response.status_code == 400
    page = Page(response.text)
    assert page.field_errors == {field: [message]}
    _assert_kept(page, fields, skip=field)
    assert _written(db) == (0, 0)


@pytest.mark.parametrize("form", FORMS)
def test_empty_post_names_every_required_field(client, db, campaign, form):
    response = client.post(f"{_page_path(campaign, form)}/sign")
    assert response.status_code == 400
    page = Page(response.text)
    expected = {
        "name": ["Please enter your name."],
        "email": ["Please enter your email address."],
        "country": ["Please choose your country."],
    }
    if form == "campaign":
        expected["demands"] = [TICK_ONE]
    assert page.field_errors == expected
    assert page.form_errors == [CSRF_MESSAGE]
    assert _written(db) == (0, 0)


GOOD_FIELDS = [
    pytest.param({"name": "  " + "Ayşe" * 30 + "  "}, {"name": "Ayşe" * 30}, id="name-120-after-trim"),
    pytest.param({"name": "Seán O'Brien-Łukasiewicz"}, {"name": "Seán O'Brien-Łukasiewicz"}, id="name-apostrophe"),
    pytest.param({"name": "ئايشە\u200cيىلماز"}, {"name": "ئايشە\u200cيىلماز"}, id="name-uyghur-zwnj"),
    pytest.param({"name": "J. R. R. Tolkien"}, {"name": "J. R. R. Tolkien"}, id="name-initials"),
    pytest.param({"email": "  Ayse@Example.ORG "}, {"email": "Ayse@example.org"}, id="email-trimmed"),
    pytest.param({"postcode": None}, {"postcode": None}, id="postcode-missing"),
    pytest.param({"postcode": "   "}, {"postcode": None}, id="postcode-blank"),
    pytest.param({"postcode": " SW1A 1AA "}, {"postcode": "SW1A 1AA"}, id="postcode-uk"),
    pytest.param({"postcode": "1" * 16}, {"postcode": "1" * 16}, id="postcode-16"),
    pytest.param({"postcode": "00-950"}, {"postcode": "00-950"}, id="postcode-dash"),
    pytest.param({"public_consent": None}, {}, id="no-consent"),
]


@pytest.mark.parametrize(
    ("form", "overrides", "stored"),
    on_forms(GOOD_FIELDS, both={"name-120-after-trim", "postcode-blank"}),
)
def test_valid_edge_values_are_accepted(app, client, db, campaign, form, overrides, stored):
    response = _post(client, campaign, form, signer(**overrides))
    assert response.status_code == 303, Page(response.text).field_errors
    [signature] = _signatures(db)
    for field, value in stored.items():
        assert _decrypt(app, signature, field) == value
    assert _written(db) == (1, 1)


# --- raw bodies: invalid UTF-8, uploads, JSON, oversize ---------------------------------------

def _urlencoded(client: FlaskClient, path: str, body: bytes):  # noqa: ANN202
    token = csrf_token(client, path).encode()
    return client.post(
        f"{path}/sign", data=b"csrf_token=" + token + b"&" + body,
        content_type="application/x-www-form-urlencoded",
    )


BAD_BYTES = [
    pytest.param(b"name=%FF%FEab&email=rene%40example.org", "name", UNREADABLE_NAME, id="name-percent-FF"),
    pytest.param(b"name=Ren%E9+Dupont&email=rene%40example.org", "name", UNREADABLE_NAME,
                 id="name-latin1-percent"),
    pytest.param(b"name=Ren\xe9+Dupont&email=rene%40example.org", "name", UNREADABLE_NAME,
                 id="name-latin1-raw"),
    pytest.param(b"name=Ren%C3+Dupont&email=rene%40example.org", "name", UNREADABLE_NAME,
                 id="name-truncated-sequence"),
    pytest.param(b"name=Ren%C3%A9+Dupont&email=ren%E9%40example.org", "email", UNREADABLE_EMAIL,
                 id="email-latin1-percent"),
]


@pytest.mark.parametrize(
    ("form", "body", "field", "message"), on_forms(BAD_BYTES, both={"name-latin1-percent"})
)
def test_invalid_utf8_body_is_refused_readably(client, db, campaign, form, body, field, message):
    body += b"&country=FR&postcode=75001&public_consent=y"
    if form == "campaign":
        body += b"&demands=%d" % campaign.demands[0].id
    response = _urlencoded(client, _page_path(campaign, form), body)
    assert response.status_code == 400
    page = Page(response.text)
    assert page.field_errors == {field: [message]}
    assert page.form_errors == []  # the CSRF token still counts
    assert page.selected["country"] == "FR" and page.values["postcode"] == "75001"
    other = "email" if field == "name" else "name"
    assert page.values[other] == {"email": "rene@example.org", "name": "René Dupont"}[other]
    assert _written(db) == (0, 0)


def test_percent_typed_literally_is_not_mistaken_for_bad_bytes(app, client, db, campaign):
    body = b"name=Ay%25FFse&email=ayse%40example.org&country=DE"
    response = _urlencoded(client, _page_path(campaign, "petition"), body)
    assert response.status_code == 303
    assert _decrypt(app, _signatures(db)[0], "name") == "Ay%FFse"


def _multipart(parts: dict[str, bytes]) -> bytes:
    chunks = [
        b'--B0UNDARY\r\nContent-Disposition: form-data; name="%s"\r\n\r\n%s\r\n' % (k.encode(), v)
        for k, v in parts.items()
    ]
    return b"".join(chunks) + b"--B0UNDARY--\r\n"


def test_invalid_utf8_in_multipart_is_refused_readably(client, db, campaign):
    path = _page_path(campaign, "petition")
    body = _multipart({
        "csrf_token": csrf_token(client, path).encode(), "name": b"Ren\xe9",
        "email": b"rene@example.org", "country": b"FR",
    })
    response = client.post(f"{path}/sign", data=body,
                           content_type="multipart/form-data; boundary=B0UNDARY")
    assert response.status_code == 400
    page = Page(response.text)
    assert page.field_errors == {"name": [UNREADABLE_NAME]}
    assert page.values["email"] == "rene@example.org"
    assert _written(db) == (0, 0)


@pytest.mark.parametrize("form", FORMS)
def test_file_upload_in_place_of_a_field_is_ignored(client, db, campaign, form):
    path = _page_path(campaign, form)
    data = {"csrf_token": csrf_token(client, path), **signer(),
            "name": (io.BytesIO(b"Ayse"), "name.txt"), "demands": str(campaign.demands[0].id)}
    response = client.post(f"{path}/sign", data=data, content_type="multipart/form-data")
    assert response.status_code == 400
    page = Page(response.text)
    assert page.field_errors == {"name": ["Please enter your name."]}
    assert page.values["email"] == "ayse@example.org"
    assert _written(db) == (0, 0)


JSON_BODIES = [
    pytest.param({"name": 5, "email": ["a@example.org"], "country": {"DE": 1}}, id="json-wrong-types"),
    pytest.param([1, 2, 3], id="json-list"),
    pytest.param("Ayşe", id="json-string"),
    pytest.param(None, id="json-null"),
]


@pytest.mark.parametrize(("form", "payload"), on_forms(JSON_BODIES, both={"json-wrong-types"}))
def test_json_body_is_treated_as_an_empty_form(client, db, campaign, form, payload):
    response = client.post(f"{_page_path(campaign, form)}/sign", json=payload)
    assert response.status_code == 400
    page = Page(response.text)
    assert page.field_errors["name"] == ["Please enter your name."]
    assert page.form_errors == [CSRF_MESSAGE]
    assert _written(db) == (0, 0)


@pytest.mark.parametrize("form", FORMS)
def test_malformed_json_is_a_400_not_a_500(client, db, campaign, form):
    response = client.post(f"{_page_path(campaign, form)}/sign", data=b"{not json",
                           content_type="application/json")
    assert response.status_code == 400
    assert _written(db) == (0, 0)


@pytest.mark.parametrize(("form", "content_type"), on_forms([
    pytest.param("application/x-www-form-urlencoded", id="urlencoded"),
    pytest.param("multipart/form-data", id="multipart"),
], both={"urlencoded"}))
def test_body_over_max_content_length_is_413(app, client, db, campaign, form, content_type):
    assert app.config["MAX_CONTENT_LENGTH"] == 64 * 1024
    path = _page_path(campaign, form)
    data = {"csrf_token": csrf_token(client, path), **signer(name="x" * (64 * 1024 + 1)),
            "demands": str(campaign.demands[0].id)}
    response = client.post(f"{path}/sign", data=data, content_type=content_type)
    assert response.status_code == 413
    assert "<h1>Too much data</h1>" in response.text
    assert "larger than this site accepts" in response.text
    assert _written(db) == (0, 0)


# --- CSRF ------------------------------------------------------------------------------------

def _old_token(client: FlaskClient, path: str, monkeypatch: pytest.MonkeyPatch) -> str:
    with monkeypatch.context() as m:
        m.setattr(TimestampSigner, "get_timestamp", lambda _self: int(time.time()) - 7 * 3600)
        return csrf_token(client, path)


CSRF_CASES = [
    pytest.param(case, id=case)
    for case in ("missing", "empty", "forged", "other-session", "expired", "no-session")
]


@pytest.mark.parametrize(("form", "case"), on_forms(CSRF_CASES, both={"missing", "forged"}))
def test_bad_csrf_token_keeps_the_details_and_allows_signing_again(app, client, form, case):
    # No app context stays pushed here: each request must get its own `g` (and CSRF token).
    with app.app_context():
        campaign = make_campaign(get_session())
        path, demand_id = _page_path(campaign, form), campaign.demands[0].id
    data: dict[str, Any] = {**signer(name='Ayşe "Ayo" Yılmaz'), "demands": str(demand_id)}
    if case != "no-session":  # no-session: the cookie was lost, no page loaded in this browser
        token = csrf_token(client, path)
    if case == "empty":
        data["csrf_token"] = ""
    elif case == "forged":
        data["csrf_token"] = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    elif case == "other-session":
        # genuinely signed, but for another session's secret (as from another browser)
        other = URLSafeTimedSerializer(app.secret_key, salt="wtf-csrf-token")
        data["csrf_token"] = other.dumps("0" * 40)
    elif case == "expired":  # older than WTF_CSRF_TIME_LIMIT (6 hours)
        with pytest.MonkeyPatch.context() as m:
            m.setattr(TimestampSigner, "get_timestamp", lambda _self: int(time.time()) - 7 * 3600)
            data["csrf_token"] = csrf_token(client, path)
    response = client.post(f"{path}/sign", data=data)
    assert response.status_code == 400
    page = Page(response.text)
    assert page.form_errors == [CSRF_MESSAGE]
    assert page.summary == [CSRF_MESSAGE]
    assert page.field_errors == {}
    assert page.values["name"] == 'Ayşe "Ayo" Yılmaz'
    assert page.values["email"] == "ayse@example.org"
    _assert_kept(page, data)
    with app.app_context():
        assert _written(get_session()) == (0, 0)
    # The page carries a fresh token: sending the kept details again works.
    resent = client.post(f"{path}/sign", data={**data, "csrf_token": page.values["csrf_token"]})
    assert resent.status_code == 303
    with app.app_context():
        assert _written(get_session()) == (1, 1)


# --- unknown or unpublished slugs ------------------------------------------------------------

SLUG_ROUTES = [
    pytest.param("GET", "/petitions/{demand}", False, id="petition"),
    pytest.param("POST", "/petitions/{demand}/sign", False, id="petition-sign"),
    pytest.param("GET", "/petitions/{demand}/signed", False, id="petition-signed"),
    pytest.param("GET", "/petitions/{demand}/count.json", True, id="petition-count-json"),
    pytest.param("GET", "/campaigns/{campaign}", False, id="campaign"),
    pytest.param("POST", "/campaigns/{campaign}/sign", False, id="campaign-sign"),
    pytest.param("GET", "/campaigns/{campaign}/signed", False, id="campaign-signed"),
    pytest.param("GET", "/campaigns/{campaign}/counts.json", True, id="campaign-counts-json"),
]
# Every route with an unknown and an unpublished slug; odd slugs on a few of them.
SLUG_CASES = [
    pytest.param(*route.values, kind, id=f"{route.id}-{kind}")
    for route in SLUG_ROUTES
    for kind in ("unknown", "draft", "draft-demand", "percent-FF", "very-long", "dots")
    if kind in ("unknown", "draft")
    or (kind == "draft-demand" and route.id.startswith("petition"))
    or (kind in ("percent-FF", "very-long", "dots")
        and route.id in ("petition", "petition-count-json", "campaign-sign"))
]


def _slugs(db: Session, kind: str) -> dict[str, str]:
    if kind == "draft":
        draft = make_campaign(db, title="Draft campaign", status=CampaignStatus.DRAFT)
        return {"campaign": draft.slug, "demand": draft.demands[0].slug}
    if kind == "draft-demand":
        demand = make_campaign(db, title="Open campaign", demands=1,
                               demand_status=DemandStatus.DRAFT).demands[0]
        return {"campaign": "no-such-campaign", "demand": demand.slug}
    slug = {"unknown": "no-such-slug", "percent-FF": "%FF%FE", "very-long": "a" * 3000,
            "dots": "..%2F..%2Fetc"}[kind]
    return {"campaign": slug, "demand": slug}


@pytest.mark.parametrize(("method", "pattern", "is_json", "kind"), SLUG_CASES)
def test_unknown_slug_is_404(client, db, method, pattern, is_json, kind):
    open_demand = make_campaign(db).demands[0]
    path = pattern.format(**_slugs(db, kind))
    data = None
    if method == "POST":
        data = {"csrf_token": csrf_token(client, f"/petitions/{open_demand.slug}"), **signer(),
                "demands": str(open_demand.id)}
    response = client.open(path, method=method, data=data)
    assert response.status_code == 404
    if is_json:
        assert response.mimetype == "application/json"
        assert response.json == {
            "error": "Not found",
            "detail": "There is no page at this address. Check the link, or start from the "
                      "list of campaigns.",
        }
    else:
        assert response.mimetype == "text/html"
        assert "<h1>Not found</h1>" in response.text
    assert _written(db) == (0, 0)


WRONG_METHODS = [
    pytest.param("GET", "/petitions/{demand}/sign", False, id="get-sign"),
    pytest.param("DELETE", "/petitions/{demand}", False, id="delete-petition"),
    pytest.param("POST", "/petitions/{demand}/count.json", True, id="post-count-json"),
    pytest.param("PUT", "/campaigns/{campaign}/sign", False, id="put-campaign-sign"),
]


@pytest.mark.parametrize(("method", "pattern", "is_json"), WRONG_METHODS)
def test_wrong_method_is_405_page(client, db, campaign, method, pattern, is_json):
    path = pattern.format(campaign=campaign.slug, demand=campaign.demands[0].slug)
    response = client.open(path, method=method)
    assert response.status_code == 405
    if is_json:
        assert response.json["error"] == "Not allowed"
    else:
        assert "<h1>Not allowed</h1>" in response.text


# --- confirmation and withdrawal links -------------------------------------------------------

@pytest.fixture
def pending(client: FlaskClient, db: Session, campaign: Campaign, outbox: Outbox) -> dict[str, Any]:
    """One pending signature and the links emailed for it."""
    assert sign_petition(client, campaign.demands[0]).status_code == 303
    message = outbox.last()
    return {
        "confirm": outbox.link(message, "confirm").rsplit("/", 1)[1],
        "withdraw": outbox.link(message, "withdraw").rsplit("/", 1)[1],
        "demand_id": campaign.demands[0].id,
    }


def _make_token(app: Flask, purpose: str, payload: object) -> str:
    with app.test_request_context():
        return tokens._serializer(purpose).dumps(payload)


def _tamper(token: str) -> str:
    """Change the first character of the signature (the last one may only carry padding bits)."""
    head, sig = token.rsplit(".", 1)
    return f"{head}.{'B' if sig[0] == 'A' else 'A'}{sig[1:]}"


BAD_CONFIRM = [
    pytest.param(lambda t, a: _tamper(t), id="tampered-signature"),
    pytest.param(lambda t, a: "WzJd" + t[4:], id="tampered-payload"),
    pytest.param(lambda t, a: t[:-6], id="truncated"),
    pytest.param(lambda t, a: t.split(".")[0], id="payload-only"),
    pytest.param(lambda t, a: "not-a-token", id="garbage"),
    pytest.param(lambda t, a: "%FF%FE", id="invalid-utf8"),
    pytest.param(lambda t, a: "é" * 50, id="non-ascii"),
    pytest.param(lambda t, a: "x" * 3000, id="very-long"),
    pytest.param(lambda t, a: _make_token(a, tokens.WITHDRAW, [1]), id="withdraw-token"),
    pytest.param(lambda t, a: _make_token(a, "other-purpose", [1]), id="other-salt"),
    pytest.param(lambda t, a: _make_token(a, tokens.CONFIRM, [999999]), id="no-such-signature"),
    pytest.param(lambda t, a: _make_token(a, tokens.CONFIRM, []), id="empty-list"),
    pytest.param(lambda t, a: _make_token(a, tokens.CONFIRM, {"id": 1}), id="dict"),
    pytest.param(lambda t, a: _make_token(a, tokens.CONFIRM, ["1"]), id="string-id"),
    pytest.param(lambda t, a: _make_token(a, tokens.CONFIRM, [True]), id="bool-id"),
    pytest.param(lambda t, a: _make_token(a, tokens.CONFIRM, list(range(1, 102))), id="too-many-ids"),
]


@pytest.mark.parametrize("make", BAD_CONFIRM)
def test_bad_confirm_link_is_404_and_confirms_nothing(app, client, db, pending, make):
    response = client.get(f"/signatures/confirm/{make(pending['confirm'], app)}")
    assert response.status_code == 404
    assert "<h1>This link is not valid</h1>" in response.text
    [signature] = _signatures(db)
    assert signature.status == SignatureStatus.PENDING
    assert counts.get(db, pending["demand_id"]).value == 0


@pytest.mark.parametrize("method", ["GET", "POST"])
@pytest.mark.parametrize("make", [
    pytest.param(lambda p, a: p["confirm"], id="confirm-token"),
    pytest.param(lambda p, a: _tamper(p["withdraw"]), id="tampered"),
    pytest.param(lambda p, a: "%FF", id="invalid-utf8"),
])
def test_bad_withdraw_link_is_404_and_erases_nothing(app, client, db, campaign, pending, make, method):
    path = f"/signatures/withdraw/{make(pending, app)}"
    data = {"csrf_token": csrf_token(client, f"/petitions/{campaign.demands[0].slug}")}
    response = client.open(path, method=method, data=data if method == "POST" else None)
    assert response.status_code == 404
    assert "<h1>This link is not valid</h1>" in response.text
    [signature] = _signatures(db)
    assert signature.status == SignatureStatus.PENDING and signature.name_enc is not None


def test_withdraw_link_for_a_missing_signature_is_404(app, client, db, pending):
    # Only GET: a POST with such a (genuine) token redirects with "withdrawn" (see routes.withdraw).
    response = client.get(f"/signatures/withdraw/{_make_token(app, tokens.WITHDRAW, [999999])}")
    assert response.status_code == 404
    assert "<h1>This link is not valid</h1>" in response.text


def test_expired_confirm_link_is_410_and_offers_to_sign_again(app, client, db, campaign, pending):
    past = int(time.time()) - 31 * 86400
    with pytest.MonkeyPatch.context() as m, app.test_request_context():
        m.setattr(TimestampSigner, "get_timestamp", lambda _self: past)
        token = tokens.make(tokens.CONFIRM, [_signatures(db)[0].id])
    response = client.get(f"/signatures/confirm/{token}")
    assert response.status_code == 410
    assert "<h1>This confirmation link has expired</h1>" in response.text
    assert "Confirmation links are valid for 30 days" in response.text
    assert f'href="/petitions/{campaign.demands[0].slug}"' in response.text
    assert _signatures(db)[0].status == SignatureStatus.PENDING
    assert counts.get(db, pending["demand_id"]).value == 0
    # A link from 29 days ago still works.
    with pytest.MonkeyPatch.context() as m, app.test_request_context():
        m.setattr(TimestampSigner, "get_timestamp", lambda _self: int(time.time()) - 29 * 86400)
        fresh = tokens.make(tokens.CONFIRM, [_signatures(db)[0].id])
    assert client.get(f"/signatures/confirm/{fresh}").status_code == 200
    assert counts.get(db, pending["demand_id"]).value == 1


# --- the hidden source field -----------------------------------------------------------------

SOURCES = [
    pytest.param("stall-2026-12-05", "stall-2026-12-05", id="plain"),
    pytest.param("<script>alert(1)</script>", "scriptalert1script", id="script"),
    pytest.param("x" * 5000, "x" * 64, id="overlong"),
    pytest.param("  qr:poster.7  ", "qr:poster.7", id="trimmed"),
    pytest.param("stall 12/05 ü", "stall1205", id="unsafe-chars"),
    pytest.param("'; DROP TABLE signatures; --", "DROPTABLEsignatures--", id="sql"),
    pytest.param("\x00\ufffd<>", None, id="nothing-left"),
    pytest.param("", None, id="empty"),
]


@pytest.mark.parametrize(("form", "src", "stored"), on_forms(SOURCES, both={"script"}))
def test_junk_source_is_cleaned_and_the_signature_kept(client, db, campaign, form, src, stored):
    response = _post(client, campaign, form, {**signer(), "src": src})
    assert response.status_code == 303
    [signature] = _signatures(db)
    assert signature.source == stored
    assert signature.source is None or len(signature.source) <= 64


def test_junk_source_in_link_is_cleaned_on_the_page(client, campaign):
    page = client.get(f"/petitions/{campaign.demands[0].slug}?src=%3Cscript%3E%22x%FF")
    assert page.status_code == 200
    assert Page(page.text).values["src"] == "scriptxFF"  # Werkzeug keeps a bad byte as "%FF"
    assert "<script>" not in page.text


# --- the campaign multi-sign form ------------------------------------------------------------

def _demand_values(db: Session, campaign: Campaign, kind: str) -> list[str]:
    d1 = campaign.demands[0]
    if kind == "other-campaign":
        return [str(make_campaign(db, title="Another").demands[0].id)]
    if kind == "draft":
        d3 = campaign.demands[2]
        d3.status = DemandStatus.DRAFT
        db.commit()
        return [str(d1.id), str(d3.id)]
    return {
        "none": [], "empty": [""], "word": ["abc"], "float": ["1.5"], "huge": ["9" * 5000],
        "negative": ["-1"], "unknown": ["999999"], "mixed": [str(d1.id), "abc"],
        "mixed-unknown": [str(d1.id), "999999"], "replacement": ["\ufffd"],
        "many-unknown": [str(i) for i in range(100001, 100051)],
    }[kind]


DEMAND_CASES = [
    pytest.param("none", TICK_ONE, id="none-ticked"),
    pytest.param("empty", TICK_ONE, id="empty-value"),
    pytest.param("word", NO_SUCH_DEMAND, id="not-an-integer"),
    pytest.param("float", NO_SUCH_DEMAND, id="float"),
    pytest.param("huge", NO_SUCH_DEMAND, id="huge-integer"),
    pytest.param("replacement", NO_SUCH_DEMAND, id="unreadable"),
    pytest.param("negative", NO_SUCH_DEMAND, id="negative"),
    pytest.param("unknown", NO_SUCH_DEMAND, id="unknown-id"),
    pytest.param("other-campaign", NO_SUCH_DEMAND, id="other-campaigns-demand"),
    pytest.param("draft", NO_SUCH_DEMAND, id="draft-demand"),
    pytest.param("mixed", NO_SUCH_DEMAND, id="valid-and-junk"),
    pytest.param("mixed-unknown", NO_SUCH_DEMAND, id="valid-and-unknown"),
    pytest.param("many-unknown", NO_SUCH_DEMAND, id="many-unknown-one-message"),
]


@pytest.mark.parametrize(("kind", "message"), DEMAND_CASES)
def test_bad_demand_choice_is_refused(client, db, campaign, kind, message):
    values = _demand_values(db, campaign, kind)
    fields = {**signer(), "demands": values}
    response = _post(client, campaign, "campaign", fields)
    assert response.status_code == 400
    page = Page(response.text)
    assert page.field_errors == {"demands": [message]}
    assert page.summary == [message]
    _assert_kept(page, fields)
    valid = {str(d.id) for d in campaign.demands if d.status == DemandStatus.OPEN}
    assert page.checked.get("demands", []) == [v for v in values if v in valid]
    assert _written(db) == (0, 0)


def test_a_demand_ticked_twice_is_signed_once(client, db, campaign, outbox):
    d1, d2, _ = campaign.demands
    fields = {**signer(), "demands": [str(d1.id), str(d2.id), str(d1.id), f" {d2.id} "]}
    response = _post(client, campaign, "campaign", fields)
    assert response.status_code == 303
    assert sorted(s.demand_id for s in _signatures(db)) == sorted([d1.id, d2.id])
    assert outbox.last()["Subject"] == "Please confirm your 2 signatures"
    client.get(outbox.link(outbox.last(), "confirm"))
    assert counts.get(db, d1.id).value == 1 and counts.get(db, d2.id).value == 1


# --- rate limit ------------------------------------------------------------------------------

RATE_LIMITED = ("Too many signatures were sent from your network in the last minute (at events "
                "many people share one connection). Your details are kept below: please wait a "
                "minute and sign again.")


@pytest.mark.parametrize("form", FORMS)
def test_third_sign_in_a_minute_gets_the_form_back_with_a_429(make_app, form):
    app = make_app(RATELIMIT_ENABLED=True, RATELIMIT_SIGN="2 per minute")
    client = app.test_client()
    with app.app_context():
        campaign = make_campaign(get_session())
        path, demand_id = _page_path(campaign, form), campaign.demands[0].id
        statuses = [
            _post(client, campaign, form, signer(email=f"p{i}@example.org")).status_code
            for i in range(3)
        ]
        assert statuses == [303, 303, 429]
        assert _written(get_session()) == (2, 2)
    token = csrf_token(client, path)  # reading is not limited
    fields = signer(name="Zoë Ünal", email="zoe@example.org", country="TR", postcode="34000")
    response = client.post(f"{path}/sign", data={**fields, "csrf_token": token,
                                                  "demands": str(demand_id)})
    assert response.status_code == 429
    page = Page(response.text)
    assert page.form_errors == [RATE_LIMITED]
    _assert_kept(page, fields)
    if form == "campaign":
        assert page.checked.get("demands") == [str(demand_id)]
    assert page.values["csrf_token"]  # a fresh token: the supporter can simply send it again
    with app.app_context():
        assert _written(get_session()) == (2, 2)


# --- property: any name is either accepted or refused clearly --------------------------------

NAME_MESSAGES = {
    "Please enter your name.",
    "Your name can be at most 120 characters long.",
    "Please enter just your name, without web addresses.",
    "Your name contains invisible control characters; please retype it.",
    "Your name cannot contain the characters < or >.",
    UNREADABLE_NAME,
}


@settings(max_examples=60, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(name=st.text(max_size=160))
def test_any_name_is_signed_or_refused_clearly(app, client, db, name):
    demand = db.scalars(select(Demand)).first() or make_campaign(db, demands=1).demands[0]
    email = f"prop{next(_emails)}@example.org"
    before = _written(db)
    token = _token_once(client, f"/petitions/{demand.slug}")
    response = client.post(f"/petitions/{demand.slug}/sign",
                           data={"csrf_token": token, **signer(name=name, email=email)})
    assert response.status_code in (303, 400)
    if response.status_code == 400:
        page = Page(response.text)
        assert set(page.field_errors) == {"name"}
        assert len(page.field_errors["name"]) == 1
        assert page.field_errors["name"][0] in NAME_MESSAGES
        assert _written(db) == before
    else:
        newest = _signatures(db)[-1]
        assert _decrypt(app, newest, "name") == name.strip()
        assert 1 <= len(name.strip()) <= 120


@settings(max_examples=40, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(
    email=st.one_of(st.text(max_size=300), st.emails()),
    country=st.one_of(st.text(max_size=4), st.sampled_from(["DE", "TR", "CN"])),
    postcode=st.text(max_size=24),
    src=st.text(max_size=100),
)
def test_any_field_values_never_cause_a_server_error(client, db, email, country, postcode, src):
    demand = db.scalars(select(Demand)).first() or make_campaign(db, demands=1).demands[0]
    before = _written(db)
    token = _token_once(client, f"/petitions/{demand.slug}")
    fields = signer(email=email, country=country, postcode=postcode, src=src)
    response = client.post(f"/petitions/{demand.slug}/sign", data={"csrf_token": token, **fields})
    assert response.status_code in (303, 400)
    if response.status_code == 400:
        assert Page(response.text).field_errors
        assert _written(db) == before
