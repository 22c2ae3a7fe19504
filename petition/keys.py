"""The data key the stored signer data was made with, checked before a process uses it.

Signatures are deduplicated by a keyed hash of the email address, and names, addresses and
postcodes are encrypted with PETITION_DATA_KEY (petition.crypto). A process started with
another key (a backup restored without its key file, a host configured by hand, a deleted
instance/data.key that the app then made anew) would not fail on its own: everyone who
signed before could sign again, and exports and queued emails could not be decrypted. So
the database keeps the key's fingerprint (a value derived from it that does not reveal it),
and:

- every process compares it when its engine first connects, and while it differs and
  signer data exists, every use of the database raises KeyMismatch (answered like an
  unavailable database: a 503 that keeps what the supporter typed, the reason in the log);
- `flask init-db` records it, and when there is none yet (a database from before this
  check) first decrypts some of what is stored, so a key that cannot read it is refused;
- GET /health reports a different key, so a load balancer keeps that host out.

A key may change while nothing depends on it (no signature, no queued email): `init-db`
then records the new one.
"""

from __future__ import annotations

import logging
from typing import Any

from cryptography.exceptions import InvalidTag
from sqlalchemy import Engine, event, exc, select, text
from sqlalchemy.orm import Session

from petition.crypto import DataCipher
from petition.db import KeyMismatch, begin_write
from petition.models import KeyFingerprint, OutboxMessage, Signature, utcnow

log = logging.getLogger(__name__)

DATA_KEY = "data_key"

WRONG_KEY = (
    "PETITION_DATA_KEY (or instance/data.key) is not the key this database's signer data was "
    "encrypted with. Start every app host and outbox worker with the key that was in use "
    "when the data was stored (keep it with your backups, apart from them): with another "
    "key, people who signed could sign again and the stored data cannot be read. If that "
    "key is lost, so is the stored signer data: start from a new, empty database."
)
CANNOT_DECRYPT = (
    "PETITION_DATA_KEY (or instance/data.key) does not decrypt the signer data already in "
    "this database. Use the key that was in use when the data was stored (keep it with your "
    "backups, apart from them); nothing was changed."
)

# Read with the driver's own cursor on the engine's first connection (no parameters, the
# same SQL on SQLite and PostgreSQL).
_STORED_SQL = "SELECT fingerprint FROM key_fingerprints WHERE name = 'data_key'"
_KEYED_DATA_SQL = (
    "SELECT COALESCE("
    "(SELECT 1 FROM signatures WHERE email_key IS NOT NULL OR email_enc IS NOT NULL LIMIT 1), "
    "(SELECT 1 FROM outbox_messages WHERE recipient_enc IS NOT NULL LIMIT 1))"
)


def install(engine: Engine, cipher: DataCipher) -> None:
    """Check the key when the engine first connects (SQLAlchemy runs this once per pool, and
    again on the next connection for as long as it raises)."""

    @event.listens_for(engine, "first_connect")
    def _check(dbapi_conn: Any, _record: Any) -> None:
        stored = _raw_scalar(dbapi_conn, _STORED_SQL)
        if stored is None or stored == cipher.fingerprint:
            return
        if _raw_scalar(dbapi_conn, _KEYED_DATA_SQL) is not None:
            raise KeyMismatch(WRONG_KEY)  # logged where it is caught (request, command, worker)
        log.warning("the data key is not the one recorded in the database, but no stored "
                    "data depends on it yet; `flask --app petition init-db` records it")


def _raw_scalar(dbapi_conn: Any, sql: str) -> Any:
    """The first column of the first row, or None (also when a table is missing: a database
    not migrated yet). Ends the driver's transaction either way; a connection that broke
    meanwhile fails that rollback, and the error goes up (the check runs again on the next
    connection)."""
    cursor = dbapi_conn.cursor()
    try:
        cursor.execute(sql)
        row = cursor.fetchone()
    except Exception:  # noqa: BLE001 - the driver's "no such table"; nothing to check yet
        row = None
    finally:
        cursor.close()
    dbapi_conn.rollback()
    return row[0] if row else None


def matches(session: Session, cipher: DataCipher) -> bool | None:
    """Whether the recorded fingerprint is this key's (None: none recorded)."""
    stored = session.scalar(select(KeyFingerprint.fingerprint)
                            .where(KeyFingerprint.name == DATA_KEY))
    return None if stored is None else stored == cipher.fingerprint


def record(session: Session, cipher: DataCipher) -> str:
    """Record the key's fingerprint after migrating: "unchanged", "recorded" (none before,
    and the key decrypts what is stored) or "replaced" (nothing stored depends on the old
    one). Raises KeyMismatch, changing nothing, when stored data was made with another key."""
    begin_write(session)
    row = session.get(KeyFingerprint, DATA_KEY, populate_existing=True)
    if row is not None and row.fingerprint == cipher.fingerprint:
        session.rollback()
        return "unchanged"
    if row is None:
        if not _decrypts_stored_data(session, cipher):
            session.rollback()
            raise KeyMismatch(CANNOT_DECRYPT)
        session.add(KeyFingerprint(name=DATA_KEY, fingerprint=cipher.fingerprint,
                                   recorded_at=utcnow()))
        outcome = "recorded"
    else:
        if _has_keyed_data(session):
            session.rollback()
            raise KeyMismatch(WRONG_KEY)
        row.fingerprint = cipher.fingerprint
        row.recorded_at = utcnow()
        outcome = "replaced"
    try:
        session.commit()
    except exc.IntegrityError:  # another init-db recorded one at the same moment
        session.rollback()
        return record(session, cipher)
    return outcome


def _has_keyed_data(session: Session) -> bool:
    return session.scalar(text(_KEYED_DATA_SQL)) is not None


def _decrypts_stored_data(session: Session, cipher: DataCipher) -> bool:
    """True if the key decrypts a stored signature (and gives its stored email hash) and a
    stored email's recipient, where there are any."""
    sample = session.execute(
        select(Signature.email_enc, Signature.email_key)
        .where(Signature.email_enc.is_not(None)).limit(1)).first()
    recipient = session.scalar(select(OutboxMessage.recipient_enc)
                               .where(OutboxMessage.recipient_enc.is_not(None)).limit(1))
    try:
        if sample is not None:
            email = cipher.decrypt(sample.email_enc, "signature.email")
            if email is None or (sample.email_key is not None
                                 and cipher.email_key(email) != sample.email_key):
                return False
        if recipient is not None:
            cipher.decrypt(recipient, "outbox.recipient")
    except (InvalidTag, ValueError):
        return False
    return True
