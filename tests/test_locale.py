"""The request locale: the configured one, parsed once (no disk lookup per request).

These tests make requests with no app context pushed around them (not the `db` fixture), so
each request has its own context, as under a real server."""

from __future__ import annotations

from pathlib import Path

import babel.localedata
import pytest
from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from flask import Flask, render_template_string
from flask_babel import force_locale, format_decimal, get_locale

from petition.db import get_session
from tests.helpers import make_campaign


def _locale_of_one_request(app: Flask) -> object:
    with app.test_request_context("/"):
        return get_locale()


def test_every_request_gets_the_same_parsed_locale(app: Flask) -> None:
    first, second = _locale_of_one_request(app), _locale_of_one_request(app)
    assert str(first) == "en"
    assert first is second


def test_the_configured_locale_is_used(make_app) -> None:  # noqa: ANN001
    app = make_app(BABEL_DEFAULT_LOCALE="de")
    with app.test_request_context("/"):
        assert str(get_locale()) == "de"
        assert format_decimal(1234.5) == "1.234,5"


def test_a_page_does_not_look_up_locale_data_on_disk(app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    with app.app_context():
        slug = make_campaign(get_session()).demands[0].slug
    path = f"/petitions/{slug}"
    assert app.test_client().get(path).status_code == 200  # warm: the caches filled
    lookups: list[str] = []
    real = babel.localedata.exists
    monkeypatch.setattr(babel.localedata, "exists", lambda name: lookups.append(name) or real(name))
    for _ in range(2):
        assert app.test_client().get(path).status_code == 200
    assert lookups == []


def _catalogue(folder: Path, locale: str, strings: dict[str, str]) -> None:
    """A compiled catalogue, <folder>/<locale>/LC_MESSAGES/messages.mo."""
    catalog = Catalog(locale=locale)
    for msgid, msgstr in strings.items():
        catalog.add(msgid, msgstr)
    path = folder / locale / "LC_MESSAGES"
    path.mkdir(parents=True)
    with open(path / "messages.mo", "wb") as mo:
        write_mo(mo, catalog)


def test_templates_follow_the_configured_and_a_forced_locale(make_app, tmp_path: Path) -> None:  # noqa: ANN001
    # Templates look the catalogue up per locale (petition/extensions.py), not per string.
    folder = tmp_path / "translations"
    _catalogue(folder, "de", {"Petitions": "Petitionen", "Skip to content": "Zum Inhalt"})
    _catalogue(folder, "fr", {"Petitions": "Pétitions"})
    app = make_app(BABEL_DEFAULT_LOCALE="de", BABEL_TRANSLATION_DIRECTORIES=str(folder))
    page = app.test_client().get("/")
    assert page.status_code == 200
    assert "Zum Inhalt" in page.text and 'lang="de"' in page.text
    with app.test_request_context("/"):
        assert render_template_string("{{ _('Petitions') }}") == "Petitionen"
        with force_locale("fr"):
            assert render_template_string("{{ _('Petitions') }}") == "Pétitions"
            assert render_template_string("{{ _('Skip to content') }}") == "Skip to content"
        assert render_template_string("{{ _('Petitions') }}") == "Petitionen"
        # Still flask-babel's new-style gettext: values escaped, plurals chosen by number.
        assert render_template_string("{{ _('Hello %(name)s', name='<b>') }}") == "Hello &lt;b&gt;"
        plural = "{{ ngettext('%(num)s signature', '%(num)s signatures', n) }}"
        assert render_template_string(plural, n=1) == "1 signature"
        assert render_template_string(plural, n=2) == "2 signatures"
    with app.app_context():  # no request: flask-babel's own answer
        assert render_template_string("{{ _('Petitions') }}") == "Petitionen"
