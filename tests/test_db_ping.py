"""Pooled PostgreSQL connections are pinged on checkout only after DB_PING_IDLE_SECONDS idle.

The PostgreSQL tests kill the app's connections with pg_terminate_backend, so run them on a
database of their own (PETITION_TEST_DATABASE_URL=.../test_ping).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from flask import Flask
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.pool import NullPool

from petition import create_app, db
from petition.db import get_session, make_engine
from tests.conftest import PG_URL, base_config
from tests.helpers import make_campaign

needs_pg = pytest.mark.skipif(not PG_URL, reason="PETITION_TEST_DATABASE_URL not set")
NEVER = 1e6  # a threshold no test reaches: no pings at all


@pytest.fixture
def pg_app(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[float], Flask]]:
    """Build apps on the migrated PostgreSQL database with a given ping threshold."""
    url = request.getfixturevalue("pg_migrated")
    apps: list[Flask] = []

    def _make(ping_idle_seconds: float) -> Flask:
        config = {**base_config(url, tmp_path), "DB_PING_IDLE_SECONDS": ping_idle_seconds}
        apps.append(create_app(config, instance_path=str(tmp_path / "instance")))
        return apps[-1]

    yield _make
    for app in apps:
        app.extensions["petition.engine"].dispose()


def _petition_page(app: Flask) -> str:
    with app.app_context():
        campaign = make_campaign(get_session(), demands=1)
        return f"/petitions/{campaign.demands[0].slug}"


def _count_pings(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Spy on the dialect's ping (used by pool_pre_ping and by the idle check alike)."""
    pings: list[bool] = []
    real = engine.dialect.do_ping

    def _spy(dbapi_conn: Any) -> bool:
        pings.append(True)
        return real(dbapi_conn)

    monkeypatch.setattr(engine.dialect, "do_ping", _spy)
    return pings


KILL_OTHERS = text(
    "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid, 5000)) "
    "FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
)


def _terminate_other_backends() -> int:
    """Kill every other connection to the test database, as a server restart would."""
    engine = create_engine(PG_URL, poolclass=NullPool)
    with engine.connect() as conn:
        killed = conn.execute(KILL_OTHERS).scalar_one()
    engine.dispose()
    return killed


@needs_pg
@pytest.mark.parametrize("ping_idle_seconds", [0, 0.05])
def test_request_after_connections_were_killed_succeeds(
    pg_app: Callable[[float], Flask], monkeypatch: pytest.MonkeyPatch, ping_idle_seconds: float
) -> None:
    app = pg_app(ping_idle_seconds)
    page = _petition_page(app)
    client = app.test_client()
    assert client.get(page).status_code == 200
    pings = _count_pings(app.extensions["petition.engine"], monkeypatch)

    assert _terminate_other_backends() >= 1
    time.sleep(0.1)
    response = client.get(page)
    assert response.status_code == 200
    assert "Demand number 1" in response.text
    assert pings, "the dead connection was not pinged"


@needs_pg
def test_without_ping_a_killed_connection_fails_the_request(
    pg_app: Callable[[float], Flask],
) -> None:
    """The control for the test above: unpinged, the dead pooled connection is used and fails."""
    app = pg_app(NEVER)
    page = _petition_page(app)
    client = app.test_client()
    assert client.get(page).status_code == 200

    assert _terminate_other_backends() >= 1
    assert client.get(page).status_code == 503  # "temporarily unavailable", not a crash
    assert client.get(page).status_code == 200  # the failed connection was discarded


@needs_pg
def test_connection_reused_within_threshold_is_not_pinged(
    pg_app: Callable[[float], Flask], monkeypatch: pytest.MonkeyPatch
) -> None:
    app = pg_app(60)
    page = _petition_page(app)
    client = app.test_client()
    assert client.get(page).status_code == 200
    pings = _count_pings(app.extensions["petition.engine"], monkeypatch)
    for _ in range(3):
        assert client.get(page).status_code == 200
    assert pings == []


@needs_pg
def test_idle_time_counts_from_checkin(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A connection held longer than the threshold (a slow request) is fresh when returned."""
    engine = make_engine(request.getfixturevalue("pg_migrated"), ping_idle_seconds=0.3)
    try:
        pings = _count_pings(engine, monkeypatch)
        with engine.connect() as conn:
            time.sleep(0.5)
            conn.execute(text("SELECT 1"))
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        assert pings == []
        time.sleep(0.5)
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        assert pings == [True]
    finally:
        engine.dispose()


@needs_pg
def test_failed_ping_replaces_recently_used_connections_too(
    request: pytest.FixtureRequest,
) -> None:
    """One dead connection found means a restart: the pool drops the unpinged ones as well."""
    engine = make_engine(request.getfixturevalue("pg_migrated"), ping_idle_seconds=0.5)
    killer = create_engine(PG_URL, poolclass=NullPool)
    try:
        with killer.connect() as admin:
            first, second = engine.connect(), engine.connect()
            for conn in (first, second):
                conn.execute(text("SELECT 1"))
            first.close()
            time.sleep(0.6)
            second.close()  # idle for less than the threshold from here on
            assert admin.execute(KILL_OTHERS).scalar_one() == 2
        with engine.connect() as idle, engine.connect() as recent:  # FIFO pool: idle one first
            for conn in (idle, recent):
                assert conn.execute(text("SELECT 1")).scalar_one() == 1
    finally:
        engine.dispose()
        killer.dispose()


@needs_pg
def test_ping_every_checkout_with_zero(
    pg_app: Callable[[float], Flask], monkeypatch: pytest.MonkeyPatch
) -> None:
    app = pg_app(0)
    page = _petition_page(app)
    client = app.test_client()
    pings = _count_pings(app.extensions["petition.engine"], monkeypatch)
    for _ in range(3):
        assert client.get(page).status_code == 200
    assert len(pings) >= 3


@needs_pg
def test_ping_leaves_no_transaction_open(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = make_engine(request.getfixturevalue("pg_migrated"), ping_idle_seconds=0.05)
    try:
        pings = _count_pings(engine, monkeypatch)
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        time.sleep(0.1)
        with engine.connect() as conn:
            assert pings == [True]
            raw = conn.connection.dbapi_connection
            assert raw is not None
            assert raw.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
            assert raw.autocommit is False
            conn.execute(text("SELECT 1"))
            assert conn.in_transaction()
    finally:
        engine.dispose()


def test_threshold_from_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    seen: list[float] = []
    real = db.make_engine

    def _make_engine(url: str, ping_idle_seconds: float = 0, **kwargs: float) -> Engine:
        seen.append(ping_idle_seconds)
        return real(url, ping_idle_seconds, **kwargs)

    monkeypatch.setattr(db, "make_engine", _make_engine)
    url = f"sqlite:///{tmp_path / 'unused.sqlite3'}"
    default = create_app(base_config(url, tmp_path), instance_path=str(tmp_path / "instance"))
    monkeypatch.setenv("PETITION_DB_PING_IDLE_SECONDS", "0.25")
    from_env = create_app(base_config(url, tmp_path), instance_path=str(tmp_path / "instance"))
    for app in (default, from_env):
        app.extensions["petition.engine"].dispose()

    assert default.config["DB_PING_IDLE_SECONDS"] == 5
    assert from_env.config["DB_PING_IDLE_SECONDS"] == 0.25
    assert seen == [5, 0.25]
