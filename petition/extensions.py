"""Extension objects shared by the feature packages (initialised in create_app)."""

from __future__ import annotations

import ipaddress
import logging
from functools import lru_cache
from typing import Any

from babel import Locale
from flask import Flask, current_app, request
from flask.logging import default_handler
from flask_babel import Babel, get_locale, get_translations
from flask_limiter import Limiter
from flask_limiter.constants import ConfigVars
from flask_wtf import CSRFProtect

from petition.http import once_per_request

# The part of an IPv6 address a rate limit counts: one subscriber line, one server or one
# network usually gets a whole /64 (and often a /56 or /48), so counting single addresses
# would give anyone 2^64 tries.
IPV6_PREFIX = 64


def client_network(address: str | None) -> str:
    """What rate limits count for a client address: an IPv4 address as it is, an IPv6
    address as its /64 network (an IPv4-mapped one as its IPv4 address)."""
    if not address:
        return "-"
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return address  # not an address (a test client, a unix socket): counted as given
    if isinstance(parsed, ipaddress.IPv6Address):
        if parsed.ipv4_mapped is not None:
            return str(parsed.ipv4_mapped)
        return str(ipaddress.IPv6Network((parsed, IPV6_PREFIX), strict=False))
    return str(parsed)


def limit_key() -> str:
    """The rate-limit key of the request's client: a keyed hash of its network, so the
    limiter's storage (Redis, or each process's memory) never holds a client's address.
    Made once per request (flask-limiter asks for it once per limit)."""
    return once_per_request("limit_key", _make_limit_key)


def _make_limit_key() -> str:
    cipher = current_app.extensions["petition.cipher"]
    return cipher.limit_key(client_network(request.remote_addr))


babel = Babel()
csrf = CSRFProtect()
limiter = Limiter(key_func=limit_key, default_limits=[])

LIMITER_RECOVERED = "Rate limit storage recovered"


def _limiter_record_kept(record: logging.LogRecord) -> bool:
    """Flask-Limiter's warnings and errors (its storage, Redis, unreachable) and the note that
    it answers again; not its per-request notes, which name the client's address."""
    return record.levelno >= logging.WARNING or record.msg == LIMITER_RECOVERED


# Settings with which flask-limiter applies limits to every request (in its before_request
# hook) rather than only to the decorated views.
_WHOLE_APP_LIMITS = (ConfigVars.DEFAULT_LIMITS, ConfigVars.APPLICATION_LIMITS,
                     ConfigVars.META_LIMITS)


def drop_idle_limiter_hook(app: Flask) -> None:
    """Remove flask-limiter's before_request hook when it has nothing to check.

    The hook looks for default, application and meta limits on every request; the views'
    own limits are checked by their decorators. This app sets none of the former, yet the
    hook took about 0.25 ms of CPU per request with limits on (a fifth of a petition page's
    cost, on the requests a surge is made of). It stays if any is configured."""
    hooks = app.before_request_funcs.get(None, [])
    if limiter._check_request_limit not in hooks:  # limits off: flask-limiter added none
        return
    if not any(app.config.get(name) for name in _WHOLE_APP_LIMITS):
        hooks.remove(limiter._check_request_limit)


def log_limiter_to_app() -> None:
    """Send Flask-Limiter's log to the app's error log (gunicorn's stderr).

    Its logger has only a NullHandler, so a Redis outage, during which each process counts
    in its own memory, would otherwise leave no trace."""
    logger = limiter.logger
    if default_handler not in logger.handlers:
        logger.setLevel(logging.INFO)
        logger.addFilter(_limiter_record_kept)
        logger.addHandler(default_handler)


@lru_cache(maxsize=16)
def _parsed_locale(identifier: str) -> Locale:
    return Locale.parse(identifier)


def configured_locale() -> Locale:
    """flask-babel's locale selector: the configured BABEL_DEFAULT_LOCALE, parsed once.

    Without a selector flask-babel parses that setting again on every request, and Babel then
    looks for the locale's data file on disk (a stat() per request). A Locale is immutable,
    so one object serves every request and thread."""
    return _parsed_locale(current_app.config["BABEL_DEFAULT_LOCALE"])


def install_template_gettext(app: Flask) -> None:
    """Templates' _(), gettext() and ngettext() (after babel.init_app) with the catalogue
    kept per locale here, instead of flask-babel looking up its context about five times and
    building the locale's name for every string: about a tenth of a confirmation click went
    to its page's nine strings.

    The locale is still asked of flask-babel for every string, so the configured locale and
    force_locale() are followed; the catalogue is flask-babel's own get_translations() (its
    default domain: the app has no other). Still Jinja's new-style gettext (values escaped).
    """
    catalogues: dict[Locale, Any] = {}

    def translations() -> Any:
        locale = get_locale()
        if locale is None:  # outside any context: flask-babel's empty catalogue
            return get_translations()
        try:
            return catalogues[locale]
        except KeyError:
            found = catalogues[locale] = get_translations()
            return found

    app.jinja_env.install_gettext_callables(  # type: ignore[attr-defined]
        gettext=lambda s: translations().ugettext(s),
        ngettext=lambda s, p, n: translations().ungettext(s, p, n),
        pgettext=lambda c, s: translations().upgettext(c, s),
        npgettext=lambda c, s, p, n: translations().unpgettext(c, s, p, n),
        newstyle=True,
    )
