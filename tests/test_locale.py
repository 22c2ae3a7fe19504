"""The request locale: the configured one, parsed once (no disk lookup per request).

These tests make requests with no app context pushed around them (not the `db` fixture), so
each request has its own context, as under a real server."""

from __future__ import annotations

import babel.localedata
import pytest
from flask import Flask
from flask_babel import format_decimal, get_locale

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
