"""`flask --app petition backup FILE` and the restores docs/operations.md describes.

SQLite: copies taken while supporters sign are whole (their counts match their signatures),
self-contained, readable only by their owner and free of plaintext signer data; restored as
the docs say, they serve the petition. PostgreSQL: the pg_dump archive restores with
pg_restore into a new database that `init-db` accepts. Either way, a restore started with
another data key is refused.
"""

from __future__ import annotations

import base64
import shutil
import sqlite3
import subprocess
import threading
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import create_engine, func, select, text

from petition.backup import libpq_target
from petition.db import get_session
from petition.models import Signature
from tests.conftest import PG_URL
from tests.helpers import make_campaign, sign_petition

OTHER_KEY = base64.urlsafe_b64encode(b"another key, 32 bytes long, see?").decode()


def _demand(app: Flask) -> Any:
    with app.app_context():
        return make_campaign(get_session(), demands=1).demands[0]


def _sign(app: Flask, demand: Any, n: int, prefix: str) -> None:
    client = app.test_client()
    for i in range(n):
        response = sign_petition(client, demand, name=f"Zeynep {prefix} {i}",
                                 email=f"{prefix}.{i}@example.org")
        assert response.status_code == 303


def _confirm_all(app: Flask) -> None:
    """Confirm every pending signature (through the links of their emails)."""
    from tests.conftest import Outbox

    outbox = Outbox(Path(app.config["OUTBOX_DIR"]))
    client = app.test_client()
    for message in outbox.messages():
        assert client.get(Outbox.link(message, "confirm")).status_code in (200, 303)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_sqlite_copies_taken_while_signing_are_whole(app: Flask, make_app: Any,
                                                     tmp_path: Path) -> None:
    demand = _demand(app)
    _sign(app, demand, 5, "before")
    _confirm_all(app)
    runner = app.test_cli_runner()
    errors: list[BaseException] = []

    def signing(prefix: str) -> None:
        try:
            _sign(app, demand, 8, prefix)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=signing, args=(f"during{t}",)) for t in range(3)]
    for thread in threads:
        thread.start()
    copies = []
    for i in range(4):
        path = tmp_path / f"copy{i}.sqlite3"
        result = runner.invoke(args=["backup", str(path)])
        assert result.exit_code == 0, result.output
        assert f"Backed up to {path} (" in result.output and "keep PETITION_DATA_KEY" in result.output
        copies.append(path)
    for thread in threads:
        thread.join()
    assert not errors, errors

    with app.app_context():
        final = get_session().scalar(select(func.count()).select_from(Signature))
    assert final == 5 + 3 * 8
    for path in copies:
        assert path.stat().st_mode & 0o777 == 0o600
        assert not Path(f"{path}-wal").exists()
        raw = path.read_bytes()
        assert b"Zeynep" not in raw and b"example.org" not in raw
        with sqlite3.connect(path) as conn:
            assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
            assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            signed = conn.execute("SELECT count(*) FROM signatures").fetchone()[0]
        assert 5 <= signed <= final
        copy = make_app(DATABASE_URL=f"sqlite:///{path}")
        check = copy.test_cli_runner().invoke(args=["recount", "--check"])
        assert check.exit_code == 0 and "0 with drift" in check.output, check.output
    assert not list(tmp_path.glob(".*.partial"))


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_sqlite_restore_as_documented(app: Flask, make_app: Any, tmp_path: Path) -> None:
    demand = _demand(app)
    _sign(app, demand, 3, "kept")
    _confirm_all(app)
    copy = tmp_path / "nightly.sqlite3"
    assert app.test_cli_runner().invoke(args=["backup", str(copy)]).exit_code == 0

    # docs/operations.md: stop the app, put the copy in place of the database file (and
    # remove its -wal and -shm files), start with the same data key, run init-db.
    restored = tmp_path / "restored" / "petition.sqlite3"
    restored.parent.mkdir()
    shutil.copy(copy, restored)
    wrong = make_app(DATABASE_URL=f"sqlite:///{restored}", DATA_KEY=OTHER_KEY)
    refused = wrong.test_cli_runner().invoke(args=["init-db"])
    assert refused.exit_code == 1 and "is not the key" in refused.output

    right = make_app(DATABASE_URL=f"sqlite:///{restored}")
    assert right.test_cli_runner().invoke(args=["init-db"]).exit_code == 0
    page = right.test_client().get(f"/petitions/{demand.slug}")
    assert page.status_code == 200
    assert right.test_client().get(f"/petitions/{demand.slug}/count.json").json["signature_count"] == 3


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_backup_replaces_the_previous_one_only_when_complete(app: Flask,
                                                               tmp_path: Path) -> None:
    runner = app.test_cli_runner()
    dest = tmp_path / "petition-backup.sqlite3"
    dest.write_bytes(b"yesterday's backup")
    assert runner.invoke(args=["backup", str(dest)]).exit_code == 0
    assert dest.read_bytes()[:16] == b"SQLite format 3\x00"

    result = runner.invoke(args=["backup", str(tmp_path / "no-such-folder" / "b.sqlite3")])
    assert result.exit_code == 1
    assert "no-such-folder does not exist" in result.output
    result = runner.invoke(args=["backup", str(tmp_path)])
    assert result.exit_code != 0 and "Traceback" not in result.output
    assert "is a directory" in result.output
    result = runner.invoke(args=["backup", str(tmp_path / ("x" * 300))])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert f"cannot write in {tmp_path}: File name too long" in result.output
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_the_password_stays_off_the_command_line() -> None:
    engine = create_engine("postgresql+psycopg://petition:s3cret%40x@db.example:6543/camp"
                           "?sslmode=require")
    target, env = libpq_target(engine)
    assert target == "postgresql://petition@db.example:6543/camp?sslmode=require"
    assert env["PGPASSWORD"] == "s3cret@x"
    engine.dispose()


postgresql_only = pytest.mark.skipif(not PG_URL, reason="needs PostgreSQL")


@postgresql_only
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_postgresql_backup_restores_with_pg_restore(app: Flask, make_app: Any,
                                                    tmp_path: Path) -> None:
    demand = _demand(app)
    _sign(app, demand, 3, "pg")
    _confirm_all(app)
    dump = tmp_path / "petition.dump"
    result = app.test_cli_runner().invoke(args=["backup", str(dump)])
    assert result.exit_code == 0, result.output
    assert dump.stat().st_mode & 0o777 == 0o600

    name = "petition_restore_test"
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    restored_url = PG_URL.rsplit("/", 1)[0] + f"/{name}"
    try:
        target, env = libpq_target(create_engine(restored_url))
        done = subprocess.run(["pg_restore", "--no-owner", "--exit-on-error", "--dbname",
                               target, str(dump)], env=env, capture_output=True, text=True,
                              check=False)
        assert done.returncode == 0, done.stderr
        wrong = make_app(DATABASE_URL=restored_url, DATA_KEY=OTHER_KEY)
        assert wrong.test_cli_runner().invoke(args=["init-db"]).exit_code == 1
        wrong.extensions["petition.engine"].dispose()

        right = make_app(DATABASE_URL=restored_url)
        runner = right.test_cli_runner()
        assert runner.invoke(args=["init-db"]).exit_code == 0
        check = runner.invoke(args=["recount", "--check"])
        assert check.exit_code == 0 and "0 with drift" in check.output
        assert right.test_client().get(
            f"/petitions/{demand.slug}/count.json").json["signature_count"] == 3
        with right.app_context():
            cipher = right.extensions["petition.cipher"]
            emails = {cipher.decrypt(s.email_enc, "signature.email")
                      for s in get_session().scalars(select(Signature))}
        assert emails == {f"pg.{i}@example.org" for i in range(3)}
        right.extensions["petition.engine"].dispose()
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@postgresql_only
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_without_pg_dump_the_backup_says_what_to_install(
        app: Flask, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    result = app.test_cli_runner().invoke(args=["backup", str(empty / "b.dump")])
    assert result.exit_code == 1
    assert "pg_dump not found: install PostgreSQL's client programs" in result.output
    assert list(empty.iterdir()) == []


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_backup_from_an_older_release_is_migrated_on_restore(app: Flask, make_app: Any,
                                                               tmp_path: Path) -> None:
    """A copy made before the key's fingerprint existed (schema 0005): init-db migrates it,
    checks the key against its data and records it."""
    from alembic import command

    from petition.cli import alembic_config

    demand = _demand(app)
    _sign(app, demand, 2, "old")
    copy = tmp_path / "old.sqlite3"
    assert app.test_cli_runner().invoke(args=["backup", str(copy)]).exit_code == 0
    old = make_app(DATABASE_URL=f"sqlite:///{copy}")
    with old.app_context():
        command.downgrade(alembic_config(), "0005")
    old.extensions["petition.engine"].dispose()
    with sqlite3.connect(copy) as conn:
        assert conn.execute("SELECT version_num FROM alembic_version").fetchone() == ("0005",)

    wrong = make_app(DATABASE_URL=f"sqlite:///{copy}", DATA_KEY=OTHER_KEY)
    refused = wrong.test_cli_runner().invoke(args=["init-db"])
    assert refused.exit_code == 1 and "does not decrypt" in refused.output
    wrong.extensions["petition.engine"].dispose()

    restored = make_app(DATABASE_URL=f"sqlite:///{copy}")
    assert restored.test_cli_runner().invoke(args=["init-db"]).exit_code == 0
    health = restored.test_client().get("/health")
    assert (health.status_code, health.json["schema"], health.json["data_key"]) == (
        200, "current", "ok")
