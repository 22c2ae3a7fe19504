"""Database engine and per-request sessions (plain SQLAlchemy 2, no Flask extension)."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

from flask import Flask, current_app, g
from sqlalchemy import Engine, create_engine, event, exc
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker


class KeyMismatch(Exception):
    """This process's data key is not the one the database's signer data was made with
    (petition.keys): the process must not use the database until it is started with it."""


# The database cannot be reached or cannot take the request just now: a restart, a failover,
# a dropped connection, a full pool, SQLite's write lock held past the busy timeout. Worth
# trying again in a moment; the answer is a 503, and what can be shown from memory is. A
# process started with the wrong data key gets the same answer (and logs why) until the
# operator restarts it with the right one.
UNAVAILABLE: tuple[type[Exception], ...] = (
    exc.OperationalError, exc.InterfaceError, exc.TimeoutError, KeyMismatch,
)


def unavailable_reason(err: Exception) -> object:
    """What to log of an UNAVAILABLE error: the driver's own message, never the wrapped
    error's text, which has the statement's parameters."""
    if isinstance(err, KeyMismatch):
        return str(err)
    return getattr(err, "orig", None) or type(err).__name__


_WRITE = "petition_write"
_IDLE_SINCE = "petition_idle_since"


def make_engine(url: str, ping_idle_seconds: float = 0, busy_timeout: float = 30) -> Engine:
    """Create the engine; SQLite gets WAL, a busy timeout (seconds a write waits for another
    one's lock) and explicit BEGIN handling.

    Other databases ping a pooled connection on checkout if it sat idle in the pool longer
    than ping_idle_seconds (0: on every checkout, SQLAlchemy's pool_pre_ping).
    """
    if url.startswith("sqlite"):
        engine = create_engine(
            url, connect_args={"timeout": busy_timeout, "check_same_thread": False})
        _configure_sqlite(engine, busy_timeout)
        return engine
    connect_args = {"application_name": application_name()} if url.startswith("postgresql") else {}
    engine = create_engine(
        url, pool_size=10, max_overflow=20, pool_pre_ping=ping_idle_seconds <= 0,
        connect_args=connect_args,
    )
    if ping_idle_seconds > 0:
        _ping_when_idle(engine, ping_idle_seconds)
    return engine


def application_name() -> str:
    """How this process's PostgreSQL sessions are named in pg_stat_activity (and in
    rotate-data-key's list of connected clients): "petition", the program, the flask command
    if any, and the process id, e.g. "petition flask outbox-worker 4242"."""
    words = ["petition", Path(sys.argv[0]).name if sys.argv and sys.argv[0] else "python"]
    if words[1] == "flask":
        args = iter(sys.argv[1:])
        for arg in args:
            if arg in ("--app", "-A", "--env-file", "-e"):
                next(args, None)
            elif not arg.startswith("-"):
                words.append(arg)
                break
    words.append(str(os.getpid()))
    return " ".join(words)[:63]  # PostgreSQL keeps 63 bytes (NAMEDATALEN - 1)


def _ping_when_idle(engine: Engine, idle_seconds: float) -> None:
    """Ping on checkout only connections idle for longer than idle_seconds (saves a round trip)."""

    @event.listens_for(engine, "connect")
    @event.listens_for(engine, "checkin")
    def _idle_since(_dbapi_conn: Any, record: Any) -> None:
        record.info[_IDLE_SINCE] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checkout(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        if time.monotonic() - record.info.get(_IDLE_SINCE, 0.0) <= idle_seconds:
            return
        try:
            engine.dialect.do_ping(dbapi_conn)  # psycopg: SELECT 1 in autocommit, no transaction left
        except engine.dialect.loaded_dbapi.Error as err:
            # Like pool_pre_ping: replace this connection and all others made before now
            # (a restarted server killed them too); the pool retries with a fresh one.
            raise exc.InvalidatePoolError(str(err)) from err


def _configure_sqlite(engine: Engine, busy_timeout: float) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy emit BEGIN itself (see _on_begin), as the SQLAlchemy docs recommend.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute(f"PRAGMA busy_timeout={int(busy_timeout * 1000)}")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # A write transaction takes the write lock up front: a deferred one that read first
        # could not upgrade after a concurrent commit (SQLITE_BUSY without waiting).
        if conn.get_execution_options().get(_WRITE):
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            conn.exec_driver_sql("BEGIN")


def init_app(app: Flask) -> None:
    """Create the engine and session factory and close the request's session on teardown."""
    engine = make_engine(app.config["DATABASE_URL"], float(app.config["DB_PING_IDLE_SECONDS"]),
                         busy_timeout=float(app.config["DB_BUSY_TIMEOUT_SECONDS"]))
    app.extensions["petition.engine"] = engine
    app.extensions["petition.sessionmaker"] = sessionmaker(engine, expire_on_commit=False)

    @app.teardown_appcontext
    def _close(_exc: BaseException | None) -> None:
        session = g.pop("db_session", None)
        if session is not None:
            session.close()


def get_session() -> Session:
    """The session of the current request or CLI command."""
    if "db_session" not in g:
        g.db_session = current_app.extensions["petition.sessionmaker"]()
    return g.db_session


def new_session() -> Session:
    """A fresh session, for background threads and workers (caller closes it)."""
    return current_app.extensions["petition.sessionmaker"]()


def begin_write(session: Session) -> None:
    """Start the session's transaction as a write transaction (BEGIN IMMEDIATE on SQLite).

    On SQLite a read-only transaction already open (e.g. the view loaded the demand) is
    ended first, so the write lock is taken before the transaction reads anything. Call it
    before the first write; PostgreSQL needs nothing here (row locks and constraints do it).
    """
    if session.get_bind().dialect.name != "sqlite":
        return
    if session.in_transaction():
        if session.new or session.dirty or session.deleted:
            raise RuntimeError("begin_write() called after unflushed changes")
        session.commit()
    session.connection(execution_options={_WRITE: True})


def rollback_if_reachable(session: Session) -> None:
    """Roll back after the database became unavailable; a connection that is gone has
    nothing to roll back (SQLAlchemy drops it from the pool)."""
    try:
        session.rollback()
    except UNAVAILABLE:
        pass


def commit_if_begun(session: Session) -> None:
    """Commit the session's transaction if it has one. A write done in one autocommitted
    statement (signing on PostgreSQL) leaves none, and committing an empty session still
    costs a transaction's bookkeeping and events on the hottest path."""
    if session.in_transaction():
        session.commit()


def insert_for(session: Session, table: Any) -> Any:
    """A dialect-specific INSERT supporting ON CONFLICT (SQLite and PostgreSQL)."""
    return dialect_insert(session.get_bind().dialect.name, table)


def dialect_insert(dialect: str, table: Any) -> Any:
    """insert_for() by dialect name, for statements built once per dialect."""
    if dialect == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)
