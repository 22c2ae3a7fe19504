"""Extension objects shared by the feature packages (initialised in create_app)."""

from __future__ import annotations

from functools import lru_cache

from babel import Locale
from flask import current_app
from flask_babel import Babel
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_wtf import CSRFProtect

babel = Babel()
csrf = CSRFProtect()
limiter = Limiter(key_func=get_remote_address, default_limits=[])


@lru_cache(maxsize=16)
def _parsed_locale(identifier: str) -> Locale:
    return Locale.parse(identifier)


def configured_locale() -> Locale:
    """flask-babel's locale selector: the configured BABEL_DEFAULT_LOCALE, parsed once.

    Without a selector flask-babel parses that setting again on every request, and Babel then
    looks for the locale's data file on disk (a stat() per request). A Locale is immutable,
    so one object serves every request and thread."""
    return _parsed_locale(current_app.config["BABEL_DEFAULT_LOCALE"])
