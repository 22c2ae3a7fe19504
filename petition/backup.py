"""`flask --app petition backup FILE`: a consistent copy of the database, taken while the app
runs (docs/operations.md, "Backups").

SQLite: SQLite's online backup copies the database as one snapshot (a read transaction: in
WAL mode signing goes on meanwhile); copying the file itself could catch it half-written,
or miss what is still in the -wal file. PostgreSQL: `pg_dump --format=custom` (restore with
pg_restore), with the password passed in the environment, never on the command line.

The copy is written next to FILE with mode 0600 and renamed over it once complete, so FILE
is either the previous backup or a whole new one. It holds the signer data encrypted and the
key's fingerprint, never the key: without PETITION_DATA_KEY it cannot be read.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine


class BackupError(Exception):
    """The backup could not be made; the message says why (the file is left as it was)."""


@dataclass(frozen=True)
class Backup:
    path: Path
    bytes: int
    signatures: int | None  # counted in the SQLite copy; None for a pg_dump archive


def backup(engine: Engine, dest: Path, busy_timeout: float = 30) -> Backup:
    """Copy the engine's database to dest (replaced atomically when complete); on SQLite,
    wait at most busy_timeout seconds for a lock."""
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.partial")
    try:
        if dest.is_dir():
            raise BackupError(f"{dest} is a directory: give the backup's file name")
        if not dest.parent.is_dir():
            raise BackupError(f"{dest.parent} does not exist")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    except OSError as exc:
        raise BackupError(f"cannot write in {dest.parent}: {exc.strerror}") from exc
    try:
        if engine.dialect.name == "sqlite":
            os.close(fd)
            fd = -1
            signatures = _sqlite(engine, tmp, busy_timeout)
        elif engine.dialect.name == "postgresql":
            _pg_dump(engine, fd)
            signatures = None
        else:
            raise BackupError(f"no backup for {engine.dialect.name} databases")
        os.replace(tmp, dest)
    except OSError as exc:
        raise BackupError(f"cannot write {dest}: {exc.strerror}") from exc
    finally:
        if fd >= 0:
            os.close(fd)
        tmp.unlink(missing_ok=True)
    return Backup(dest, dest.stat().st_size, signatures)


def _sqlite(engine: Engine, tmp: Path, busy_timeout: float) -> int:
    source_path = engine.url.database
    if not source_path or source_path == ":memory:" or not Path(source_path).exists():
        raise BackupError(f"no SQLite database file at {source_path!r}")
    source = sqlite3.connect(source_path, timeout=busy_timeout)
    copy = sqlite3.connect(tmp)
    try:
        source.backup(copy)  # all pages in one step: one snapshot
        copy.execute("PRAGMA journal_mode = DELETE")  # one self-contained file
        check = copy.execute("PRAGMA quick_check").fetchone()[0]
        if check != "ok":
            raise BackupError(f"the copy failed SQLite's check: {check}")
        return copy.execute("SELECT count(*) FROM signatures").fetchone()[0]
    except sqlite3.Error as exc:
        raise BackupError(f"SQLite: {exc}") from exc
    finally:
        copy.close()
        source.close()


def libpq_target(engine: Engine) -> tuple[str, dict[str, str]]:
    """The engine's database as a libpq URI without the password (for a command line), and
    the environment that adds the password (PGPASSWORD)."""
    url = engine.url
    target = url._replace(drivername="postgresql", password=None)
    env = dict(os.environ)
    if url.password:
        env["PGPASSWORD"] = str(url.password)
    return target.render_as_string(hide_password=False), env


def _pg_dump(engine: Engine, fd: int) -> None:
    program = shutil.which("pg_dump")
    if program is None:
        raise BackupError("pg_dump not found: install PostgreSQL's client programs (Debian: "
                          "postgresql-client) of the server's major version or newer")
    target, env = libpq_target(engine)
    done = subprocess.run([program, "--format=custom", "--no-owner", "--dbname", target],
                          stdout=fd, stderr=subprocess.PIPE, env=env, check=False)
    if done.returncode != 0:
        raise BackupError(f"pg_dump failed: {done.stderr.decode(errors='replace').strip()}")
