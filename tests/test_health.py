"""GET /health on SQLite and PostgreSQL: what a load balancer asks before sending traffic."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import text

from petition import health
from petition.db import get_session
from tests.conftest import PG_URL
from tests.tcpproxy import TcpProxy
from tests.test_database_outage import _through


@contextmanager
def revision_set_to(app: Flask, revision: str | None) -> Iterator[None]:
    """The database's schema revision changed (None: no alembic_version table), then put back
    (the PostgreSQL schema is shared by the whole test run)."""
    head, _known = health._revisions()
    with app.app_context():
        session = get_session()
        if revision is None:
            session.execute(text("DROP TABLE alembic_version"))
        else:
            session.execute(text("UPDATE alembic_version SET version_num = :r"), {"r": revision})
        session.commit()
        try:
            yield
        finally:
            if revision is None:
                session.execute(text("CREATE TABLE alembic_version (version_num VARCHAR(32) "
                                     "NOT NULL PRIMARY KEY)"))
                session.execute(text("INSERT INTO alembic_version VALUES (:r)"), {"r": head})
            else:
                session.execute(text("UPDATE alembic_version SET version_num = :r"), {"r": head})
            session.commit()


def _ask(app: Flask) -> tuple[int, dict[str, Any], Any]:
    response = app.test_client().get("/health")
    return response.status_code, response.json, response.headers


def test_a_migrated_database_is_healthy(app: Flask) -> None:
    status, body, headers = _ask(app)
    assert (status, body) == (200, {"status": "ok", "database": "ok", "schema": "current",
                                    "data_key": "ok"})
    assert headers["Cache-Control"] == "no-store"
    assert "Set-Cookie" not in headers
    assert headers["Content-Type"] == "application/json"


@pytest.mark.parametrize(("revision", "status", "schema", "data_key"), [
    ("0004", 503, "older", "ok"),  # new code on a database not yet upgraded: keep traffic away
    ("9999_from_a_newer_release", 200, "newer", "ok"),  # the previous release during an upgrade
    (None, 503, "missing", "unknown"),  # never migrated
])
def test_the_schema_revision_decides(app: Flask, revision: str | None, status: int,
                                     schema: str, data_key: str) -> None:
    head, known = health._revisions()
    assert head != "0004" and "0004" in known
    with revision_set_to(app, revision):
        assert _ask(app)[:2] == (status, {"status": "ok" if status == 200 else "unavailable",
                                          "database": "ok", "schema": schema,
                                          "data_key": data_key})
    assert _ask(app)[0] == 200


def test_an_empty_database_file_is_unavailable(make_app: Any, tmp_path: Path) -> None:
    app = make_app(DATABASE_URL=f"sqlite:///{tmp_path / 'never-migrated.sqlite3'}")
    assert _ask(app)[:2] == (503, {"status": "unavailable", "database": "ok", "schema": "missing",
                                   "data_key": "unknown"})


def test_a_database_that_cannot_be_opened_is_unreachable(make_app: Any, tmp_path: Path) -> None:
    app = make_app(DATABASE_URL=f"sqlite:///{tmp_path / 'no-such-folder' / 'db.sqlite3'}")
    assert _ask(app)[:2] == (503, {"status": "unavailable", "database": "unreachable",
                                   "schema": "unknown", "data_key": "unknown"})


@pytest.mark.skipif(not PG_URL, reason="needs PostgreSQL (PETITION_TEST_DATABASE_URL)")
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_postgresql_going_away_and_coming_back(make_app: Any, database_url: str) -> None:
    proxy = TcpProxy("127.0.0.1", int(database_url.rsplit(":", 1)[1].split("/")[0]))
    proxy.start()
    try:
        app = make_app(DATABASE_URL=_through(proxy, database_url))
        assert _ask(app)[0] == 200
        proxy.cut()
        assert _ask(app)[:2] == (503, {"status": "unavailable", "database": "unreachable",
                                       "schema": "unknown", "data_key": "unknown"})
        proxy.restore()
        assert _ask(app)[0] == 200
    finally:
        proxy.stop()
