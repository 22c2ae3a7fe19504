"""Configuration defaults and loading order (defaults, instance/config.py, PETITION_* env)."""

from __future__ import annotations

import base64
import os
import re
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Flask
from limits import parse_many

DEFAULTS: dict[str, Any] = {
    # Where links in emails and QR codes point to; the root of the site.
    "PUBLIC_URL": "http://127.0.0.1:5000",
    # SQLAlchemy URL; empty means the embedded SQLite file instance/petition.sqlite3.
    "DATABASE_URL": "",
    # PostgreSQL: a pooled connection idle longer than this is pinged before use (0: always).
    "DB_PING_IDLE_SECONDS": 5,
    # SQLite: how long a write waits for another one's lock before the request gets a 503.
    "DB_BUSY_TIMEOUT_SECONDS": 30,
    # Secrets: generated into instance/ on first run unless given.
    "SECRET_KEY": None,
    # Earlier secret keys, newest first, that still verify what they signed (sessions, CSRF
    # tokens, confirmation, withdrawal and invitation links) while SECRET_KEY signs anew: a
    # list, or one string of keys separated by commas or whitespace.
    "SECRET_KEY_FALLBACKS": [],
    "DATA_KEY": None,
    # Mail: with no SMTP_HOST, messages are printed and written to instance/outbox/.
    "SMTP_HOST": "",
    "SMTP_PORT": 587,
    "SMTP_USER": "",
    "SMTP_PASSWORD": "",
    "SMTP_STARTTLS": True,
    "SMTP_SSL": False,
    "SMTP_TIMEOUT": 20,
    "MAIL_FROM": "Petitions <petitions@localhost>",
    # "thread": send right after commit in a background thread; "inline": in the request;
    # "worker": leave everything to `flask outbox-worker`.
    "MAIL_DELIVERY": "thread",
    "OUTBOX_DIR": "",
    "OUTBOX_MAX_ATTEMPTS": 12,
    # Signing rules.
    "CONFIRM_MAX_AGE_DAYS": 30,
    "MAX_EMAILS_PER_SIGNATURE": 3,
    "EMAIL_CHECK_DELIVERABILITY": False,
    "DOTLESS_EMAIL_DOMAINS": ["gmail.com", "googlemail.com"],
    # Counting.
    "COUNT_SHARDS": 16,
    "COUNT_POLL_SECONDS": 5,
    # Public pages, QR codes and count polls show a demand and its count from a per-process
    # cache at most this old (0 turns it off); signing always reads the database.
    "DISPLAY_CACHE_SECONDS": 1.0,
    "DISPLAY_CACHE_SIZE": 4096,
    # While the database cannot be reached, public pages and count polls show what they last
    # read from it if that is at most this old (0: an error page at once).
    "DISPLAY_STALE_SECONDS": 300,
    # A kiosk form left with someone's input for this long is cleared (needs JavaScript).
    "KIOSK_IDLE_SECONDS": 90,
    # Largest paper-signature CSV upload, in bytes.
    "PAPER_CSV_MAX_BYTES": 512 * 1024,
    # Rate limits (flask-limiter syntax); storage is memory unless REDIS_URL is set.
    "RATELIMIT_ENABLED": True,
    # Per client network (an IPv4 address, an IPv6 /64), counted under a keyed hash of it.
    "RATELIMIT_SIGN": "60 per minute;600 per hour",
    # Per event and network, for signatures carrying an event's code on its day (a crowd
    # behind one venue Wi-Fi): petition.signing.limits.
    "RATELIMIT_SIGN_EVENT": "300 per minute;3000 per hour",
    "RATELIMIT_POSTER": "30 per minute;300 per hour",
    "RATELIMIT_LOGIN": "10 per minute;100 per day",
    "RATELIMIT_LOGIN_ACCOUNT": "20 per hour",
    # Redis holds the rate-limit counters, shared by every process and host. A Redis that
    # does not answer within REDIS_TIMEOUT_SECONDS is skipped: each process then counts in
    # its own memory (logged) and goes back to Redis once it answers again.
    "REDIS_URL": "",
    "REDIS_TIMEOUT_SECONDS": 0.5,
    "RATELIMIT_IN_MEMORY_FALLBACK_ENABLED": True,
    "RATELIMIT_SWALLOW_ERRORS": True,
    # Number of proxies in front of the app whose X-Forwarded-For/-Proto to trust.
    "PROXY_COUNT": 0,
    # Requests larger than this get a 413.
    "MAX_CONTENT_LENGTH": 64 * 1024,
    "WTF_CSRF_TIME_LIMIT": 6 * 3600,
    "SESSION_COOKIE_HTTPONLY": True,
    "SESSION_COOKIE_SAMESITE": "Lax",
    "BABEL_DEFAULT_LOCALE": "en",
}


def load(app: Flask, test_config: dict[str, Any] | None) -> None:
    """Fill app.config: defaults, then instance/config.py, then PETITION_* env, then tests."""
    app.config.from_mapping(DEFAULTS)
    app.config.from_pyfile("config.py", silent=True)
    app.config.from_prefixed_env("PETITION")
    if os.environ.get("DATABASE_URL"):
        app.config["DATABASE_URL"] = os.environ["DATABASE_URL"]
    if test_config:
        app.config.from_mapping(test_config)
    _read_secret_files(app.config)

    instance = Path(app.instance_path)
    instance.mkdir(parents=True, exist_ok=True)
    if not app.config["DATABASE_URL"]:
        app.config["DATABASE_URL"] = f"sqlite:///{instance / 'petition.sqlite3'}"
    if not app.config["OUTBOX_DIR"]:
        app.config["OUTBOX_DIR"] = str(instance / "outbox")
    if not app.config["SECRET_KEY"]:
        app.config["SECRET_KEY"] = key_file(instance / "secret.key").decode()
    app.config["SECRET_KEY_FALLBACKS"] = _key_list(app.config["SECRET_KEY_FALLBACKS"],
                                                   app.config["SECRET_KEY"])
    if app.config["SECRET_KEY_FALLBACKS"] and not app.config.get("WTF_CSRF_SECRET_KEY"):
        # Flask-WTF hands its key to itsdangerous, which signs with the last key of a list
        # and verifies with any: forms opened before the change still submit.
        app.config["WTF_CSRF_SECRET_KEY"] = signing_keys(app.config)
    if not app.config["DATA_KEY"]:
        app.config["DATA_KEY"] = key_file(instance / "data.key").decode()
    _check_rate_limits(app.config)
    app.config["SESSION_COOKIE_SECURE"] = app.config["PUBLIC_URL"].startswith("https://")


# Settings that may instead name a file holding the value, as PETITION_<NAME>_FILE (or
# <NAME>_FILE in instance/config.py): secrets kept out of the environment, such as Docker
# secrets or systemd credentials (LoadCredential=, the file in $CREDENTIALS_DIRECTORY).
SECRET_FILE_SETTINGS = ("SECRET_KEY", "SECRET_KEY_FALLBACKS", "DATA_KEY", "SMTP_PASSWORD",
                        "DATABASE_URL", "REDIS_URL")


class ConfigError(ValueError):
    """A setting that cannot be used; the message names it and what to do."""


def _read_secret_files(config: dict[str, Any]) -> None:
    for name in SECRET_FILE_SETTINGS:
        path = config.get(f"{name}_FILE")
        if not path:
            continue
        if config.get(name):
            raise ConfigError(f"PETITION_{name} and PETITION_{name}_FILE are both set: "
                              "give the value one way only.")
        try:
            value = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise ConfigError(
                f"PETITION_{name}_FILE: cannot read {path} ({reason}). The file must exist and "
                "be readable by the user the app runs as.") from exc
        value = value.rstrip("\r\n")  # the line end editors and `echo` add
        if not value.strip():
            raise ConfigError(f"PETITION_{name}_FILE: {path} is empty.")
        config[name] = value


# The rate limits the app sets (flask-limiter's own RATELIMIT_* options are not limits).
RATE_LIMIT_SETTINGS = ("RATELIMIT_SIGN", "RATELIMIT_SIGN_EVENT", "RATELIMIT_POSTER",
                       "RATELIMIT_LOGIN", "RATELIMIT_LOGIN_ACCOUNT")


def _check_rate_limits(config: Mapping[str, Any]) -> None:
    """Refuse a rate limit flask-limiter cannot read: it would skip it on every request,
    leaving signing or logins unlimited with no more than a log line."""
    for name in RATE_LIMIT_SETTINGS:
        value = config.get(name)
        try:
            if not isinstance(value, str) or not parse_many(value):
                raise ValueError(value)
        except ValueError as exc:
            raise ConfigError(
                f"PETITION_{name}: {value!r} is not a rate limit. Write one or more limits "
                "separated by ';', each a number per minute, hour or day, e.g. "
                "'60 per minute;600 per hour'.") from exc


def signing_keys(config: Mapping[str, Any]) -> list[str]:
    """The secret keys for itsdangerous, oldest first: it signs with the last (SECRET_KEY)
    and accepts a signature made with any of them (SECRET_KEY_FALLBACKS)."""
    return [*reversed(config["SECRET_KEY_FALLBACKS"]), config["SECRET_KEY"]]


def _key_list(value: Any, current: str) -> list[str]:
    """SECRET_KEY_FALLBACKS as a list of distinct keys, newest first, without the current one
    (from PETITION_SECRET_KEY_FALLBACKS a JSON list or one string of keys separated by commas
    or whitespace)."""
    if isinstance(value, str):
        value = re.split(r"[\s,]+", value)
    keys: list[str] = []
    for key in value or []:
        key = str(key).strip()
        if key and key != current and key not in keys:
            keys.append(key)
    return keys


def key_file(path: Path) -> bytes:
    """Return the key stored in path, creating a new random one (mode 0600) if missing."""
    try:
        return path.read_bytes().strip()
    except FileNotFoundError:
        pass
    key = base64.urlsafe_b64encode(secrets.token_bytes(32))
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, key + b"\n")
    finally:
        os.close(fd)
    try:
        os.link(tmp, path)  # atomic: the first process to start wins, others read its key
    except FileExistsError:
        key = path.read_bytes().strip()
    finally:
        tmp.unlink()
    return key


# Organiser editing and import pages (appended while config.py is shared): their own request
# size limits, above MAX_CONTENT_LENGTH; a pasted or uploaded campaign text may have this many
# bytes.
DEFAULTS["EDIT_MAX_BYTES"] = 256 * 1024
DEFAULTS["IMPORT_MAX_BYTES"] = 200 * 1024
