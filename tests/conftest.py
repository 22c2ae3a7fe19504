"""Fixtures: an app per test on SQLite (always) and PostgreSQL (when configured)."""

from __future__ import annotations

import email
import email.policy
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import create_engine, text

from petition import create_app
from petition.crypto import DataCipher
from tests.browser import browser, playwright  # noqa: F401 - fixtures, once for every module

PG_URL = os.environ.get("PETITION_TEST_DATABASE_URL", "")
DATA_KEY = "8bKxM4nJZQ3s1r6x0rV2yqGQk8K1Zc8mB3mXo7Y4h2E="
BACKENDS = ["sqlite"] + (["postgresql"] if PG_URL else [])


def pytest_sessionstart(session: pytest.Session) -> None:
    """Fail the whole run at once if PostgreSQL is configured but unreachable."""
    if PG_URL:
        try:
            engine = create_engine(PG_URL)
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            engine.dispose()
        except Exception as exc:  # noqa: BLE001
            raise pytest.UsageError(
                f"PETITION_TEST_DATABASE_URL is set but PostgreSQL is unreachable: {exc}"
            ) from exc


def base_config(database_url: str, tmp: Path) -> dict[str, object]:
    """The configuration every test app starts from."""
    return {
        "TESTING": True,
        "DATABASE_URL": database_url,
        "SECRET_KEY": "test-secret-key",
        "DATA_KEY": DATA_KEY,
        "PUBLIC_URL": "http://petition.test",
        "MAIL_DELIVERY": "inline",
        "OUTBOX_DIR": str(tmp / "outbox"),
        "RATELIMIT_ENABLED": False,
        # Tests read what they just wrote; tests/test_display_cache.py turns the cache on.
        "DISPLAY_CACHE_SECONDS": 0,
    }


def _migrate(url: str, tmp: Path) -> None:
    app = create_app(base_config(url, tmp), instance_path=str(tmp / "instance"))
    with app.app_context():
        from petition.cli import upgrade_database

        upgrade_database()
    app.extensions["petition.engine"].dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file, copied for each test."""
    tmp = tmp_path_factory.mktemp("template")
    path = tmp / "template.sqlite3"
    _migrate(f"sqlite:///{path}", tmp)
    return path


@pytest.fixture(scope="session")
def pg_migrated(tmp_path_factory: pytest.TempPathFactory) -> str:
    """PostgreSQL with a fresh schema made by the migrations."""
    engine = create_engine(PG_URL)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()
    _migrate(PG_URL, tmp_path_factory.mktemp("pg"))
    return PG_URL


def _truncate_pg(url: str) -> None:
    engine = create_engine(url)
    with engine.begin() as conn:
        tables = conn.execute(
            text("SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
                 "AND tablename <> 'alembic_version'")
        ).scalars().all()
        conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
        # As `init-db` left it (the SQLite template has the same): the tests' key recorded.
        conn.execute(text("INSERT INTO key_fingerprints (name, fingerprint, recorded_at) "
                          "VALUES ('data_key', :fp, now())"),
                     {"fp": DataCipher(DATA_KEY).fingerprint})
    engine.dispose()


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A migrated, empty database of each configured backend."""
    if request.param == "sqlite":
        path = tmp_path / "test.sqlite3"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite:///{path}"
    url = request.getfixturevalue("pg_migrated")
    _truncate_pg(url)
    return url


@pytest.fixture
def make_app(database_url: str, tmp_path: Path):  # noqa: ANN201
    """Build an app on the test database with extra configuration."""
    apps: list[Flask] = []

    def _make(**overrides: object) -> Flask:
        app = create_app(
            {**base_config(database_url, tmp_path), **overrides},
            instance_path=str(tmp_path / "instance"),
        )
        apps.append(app)
        return app

    yield _make
    for app in apps:
        app.extensions["petition.engine"].dispose()


@pytest.fixture
def app(make_app) -> Flask:  # noqa: ANN001
    """The default test app."""
    return make_app()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """A test client."""
    return app.test_client()


@pytest.fixture
def runner(app: Flask):  # noqa: ANN201
    """A CLI runner."""
    return app.test_cli_runner()


@pytest.fixture
def db(app: Flask) -> Iterator[object]:
    """A session inside an app context, for arranging and checking data."""
    from petition.db import get_session

    with app.app_context():
        yield get_session()


class Outbox:
    """Messages the console transport wrote to OUTBOX_DIR, oldest first."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def messages(self) -> list[email.message.EmailMessage]:
        if not self.folder.exists():
            return []
        return [
            email.message_from_bytes(p.read_bytes(), policy=email.policy.default)  # type: ignore[misc]
            for p in sorted(self.folder.glob("*.eml"))
        ]

    def last(self) -> email.message.EmailMessage:
        messages = self.messages()
        assert messages, "no email was sent"
        return messages[-1]

    @staticmethod
    def text(message: email.message.EmailMessage) -> str:
        return message.get_body(("plain",)).get_content()  # type: ignore[union-attr]

    @classmethod
    def link(cls, message: email.message.EmailMessage, kind: str) -> str:
        """The path of the confirm or withdraw link in a message."""
        match = re.search(rf"http://petition\.test(/signatures/{kind}/\S+)", cls.text(message))
        assert match, f"no {kind} link in message"
        return match.group(1)


@pytest.fixture
def outbox(app: Flask) -> Outbox:
    """The messages sent by the app under test."""
    return Outbox(Path(app.config["OUTBOX_DIR"]))
