"""Changing the data key: everything stored with PETITION_DATA_KEY is rewritten with a new one.

What the data key protects (petition.crypto) is re-made from what it decrypts, in one
transaction with the fingerprint the database keeps (petition.keys), so the database is
either wholly on the old key or wholly on the new one:

- signatures: name, email and postcode are decrypted and encrypted again; the email's dedup
  hash and its domain's hash are computed again from the email, so someone who signed before
  is still recognised;
- emails waiting in the outbox: the recipient;
- the audit log: the email domain of an invalidation filter.

IP address hashes cannot be made again (the address is never stored), and anyone holding
the old key could tell which address each one is by trying them all: they are erased, as
anonymising does, and an invalidation filter in the audit log keeps only that it named an
address. A value the old key does not decrypt stops the change with nothing written.

Every app host and outbox worker must be stopped first: a process started with the old key
would go on writing with it. On PostgreSQL the change refuses to start while other clients
are connected to the database; after it, a process started with the old key refuses to run
(petition.keys).
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from sqlalchemy import bindparam, or_, select, text, update
from sqlalchemy.orm import Session

from petition import keys
from petition.config import key_file
from petition.crypto import DataCipher
from petition.db import begin_write
from petition.models import AuditEntry, KeyFingerprint, OutboxMessage, Signature, utcnow

BATCH = 1000

_SIGNATURE_FIELDS = (("name_enc", "signature.name"), ("email_enc", "signature.email"),
                     ("postcode_enc", "signature.postcode"))
_AUDIT_DOMAIN = "audit.email_domain"

# Other sessions on this PostgreSQL database (app hosts, outbox workers, psql): who they are,
# so the refusal can name them.
_OTHER_CLIENTS_SQL = text(
    "SELECT coalesce(nullif(application_name, ''), 'a client'), "
    "coalesce(host(client_addr), 'local socket'), backend_start "
    "FROM pg_stat_activity "
    "WHERE datname = current_database() AND pid <> pg_backend_pid() "
    "AND backend_type = 'client backend' ORDER BY backend_start")


class RekeyError(Exception):
    """The change cannot be made; nothing was written. The message says why and what to do."""


@dataclass(frozen=True)
class RekeyResult:
    """What was rewritten with the new key."""

    signatures: int
    ip_hashes_erased: int
    outbox_messages: int
    audit_entries: int


def new_cipher(path: Path, dotless_domains: list[str],
               in_use: DataCipher) -> tuple[DataCipher, bool]:
    """The cipher of the key in `path`, made there (random, mode 0600) if the file does not
    exist; and whether it was made. RekeyError if it cannot be read, made or used, or is
    the key in use."""
    made = not path.exists()
    try:
        raw = key_file(path)
    except OSError as exc:
        raise RekeyError(f"{path}: cannot read or create the new key there ({exc}).") from exc
    try:
        cipher = DataCipher(raw, dotless_domains)
    except ValueError as exc:
        raise RekeyError(
            f"{path} does not hold a data key: it must hold 32 random bytes, URL-safe base64 "
            "encoded, as the file this command makes when given a path that does not exist "
            "yet.") from exc
    if cipher.fingerprint == in_use.fingerprint:
        raise RekeyError(f"{path} holds the key in use; give the path of a new key file (one "
                         "that does not exist yet gets a new key).")
    return cipher, made


def next_step(instance_path: str, key_in_use: str, new_key_file: Path) -> str:
    """Where the new key goes: over instance/data.key if that is where the key in use came
    from, otherwise into PETITION_DATA_KEY."""
    in_use = Path(instance_path) / "data.key"
    if in_use.exists() and in_use.read_bytes().strip().decode() == key_in_use.strip():
        return f"replace {in_use} with {new_key_file} (mv {new_key_file} {in_use})"
    return f"set PETITION_DATA_KEY to the key in {new_key_file}"


def other_clients(session: Session) -> list[str]:
    """Other sessions connected to this database (PostgreSQL; empty elsewhere), one line each."""
    if session.get_bind().dialect.name != "postgresql":
        return []
    return [f"{name} from {address}, connected since {since:%Y-%m-%d %H:%M} UTC"
            for name, address, since in session.execute(_OTHER_CLIENTS_SQL)]


def rekey(session: Session, old: DataCipher, new: DataCipher,
          progress: Callable[[int], None] | None = None) -> RekeyResult:
    """Rewrite everything stored with `old` (the database's recorded key) with `new`, and
    record `new`'s fingerprint; one transaction, committed at the end. Raises RekeyError,
    having written nothing, when `old` is not the recorded key, `new` is the same key, or a
    stored value does not decrypt with `old`. `progress` gets the signatures done so far."""
    if new.fingerprint == old.fingerprint:
        raise RekeyError("The new key is the key in use; nothing to change.")
    begin_write(session)
    try:
        _lock(session)
        if keys.matches(session, old) is not True:
            raise RekeyError(
                "The database does not record the key in use as the one its data was made "
                "with: run `flask --app petition init-db` with the current key first, then "
                "change it.")
        signatures, erased = _signatures(session, old, new, progress)
        result = RekeyResult(
            signatures=signatures, ip_hashes_erased=erased,
            outbox_messages=_outbox(session, old, new), audit_entries=_audit(session, old, new))
        row = session.get(KeyFingerprint, keys.DATA_KEY)
        assert row is not None  # matches() found it inside this transaction
        row.fingerprint = new.fingerprint
        row.recorded_at = utcnow()
        session.commit()
    except BaseException:
        session.rollback()
        raise
    return result


def _lock(session: Session) -> None:
    """Keep writers out until the commit (SQLite: begin_write's BEGIN IMMEDIATE already does)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("LOCK TABLE signatures, outbox_messages, audit_entries, "
                             "key_fingerprints IN SHARE ROW EXCLUSIVE MODE"))


def _decrypt(cipher: DataCipher, blob: bytes | str | None, field: str, what: str) -> str | None:
    """The value decrypted (a str is base64, as the audit log keeps it), or RekeyError."""
    try:
        return cipher.decrypt(base64.b64decode(blob) if isinstance(blob, str) else blob, field)
    except (InvalidTag, ValueError) as exc:
        raise RekeyError(
            f"{what} cannot be decrypted with the key in use, so it could not be carried over "
            "to the new key; nothing was changed. Restore it from a backup made with this "
            "key, or erase it, then try again.") from exc


def _signatures(session: Session, old: DataCipher, new: DataCipher,
                progress: Callable[[int], None] | None) -> tuple[int, int]:
    columns = [Signature.id, Signature.name_enc, Signature.email_enc, Signature.postcode_enc,
               Signature.email_key, Signature.email_domain_key, Signature.ip_hash]
    stored = or_(*(getattr(Signature, name).is_not(None)
                   for name in ("name_enc", "email_enc", "postcode_enc", "email_key",
                                "email_domain_key", "ip_hash")))
    write = _pg_writer(session) if session.get_bind().dialect.name == "postgresql" \
        else _update_writer(session)
    done = erased = 0
    last_id = 0
    while True:
        rows: Sequence[Any] = session.execute(
            select(*columns).where(Signature.id > last_id)
            .where(stored)
            .order_by(Signature.id).limit(BATCH)).all()
        if not rows:
            write(None)
            return done, erased
        changes = []
        for row in rows:
            what = f"Signature {row.id}"
            name, email, postcode = (
                _decrypt(old, getattr(row, column), field, what)
                for column, field in _SIGNATURE_FIELDS)
            changes.append((
                row.id,
                new.encrypt(name, "signature.name"),
                new.encrypt(email, "signature.email"),
                new.encrypt(postcode, "signature.postcode"),
                new.email_key(email) if email is not None else None,
                new.domain_key(email) if email is not None else None,
            ))
            erased += row.ip_hash is not None
        write(changes)
        done += len(rows)
        last_id = rows[-1].id
        if progress is not None:
            progress(done)


_NEW_VALUES = ("id", "name_enc", "email_enc", "postcode_enc", "email_key", "email_domain_key")


def _update_writer(session: Session) -> Callable[[list[tuple[Any, ...]] | None], None]:
    """Each batch written as it comes, one UPDATE per signature (executemany)."""
    statement = (update(Signature).where(Signature.id == bindparam("b_id"))
                 .values({**{name: bindparam(f"b_{name}") for name in _NEW_VALUES[1:]},
                          "ip_hash": None}))

    def write(changes: list[tuple[Any, ...]] | None) -> None:
        if changes:
            session.connection().execute(
                statement, [{f"b_{name}": value for name, value in zip(_NEW_VALUES, row,
                                                                         strict=True)}
                            for row in changes])

    return write


def _pg_writer(session: Session) -> Callable[[list[tuple[Any, ...]] | None], None]:
    """PostgreSQL: the batches are copied into a temporary table (COPY), and one UPDATE joins
    it at the end: a fraction of the time of an UPDATE per row."""
    cursor = session.connection().connection.driver_connection.cursor()
    cursor.execute("CREATE TEMPORARY TABLE rekey_signatures (id bigint, name_enc bytea, "
                   "email_enc bytea, postcode_enc bytea, email_key varchar(64), "
                   "email_domain_key varchar(64)) ON COMMIT DROP")

    def write(changes: list[tuple[Any, ...]] | None) -> None:
        if changes:
            with cursor.copy(f"COPY rekey_signatures ({', '.join(_NEW_VALUES)}) "
                             "FROM STDIN") as copy:
                for row in changes:
                    copy.write_row(row)
            return
        cursor.execute("ANALYZE rekey_signatures")
        cursor.execute(
            "UPDATE signatures AS s SET "
            + ", ".join(f"{name} = r.{name}" for name in _NEW_VALUES[1:])
            + ", ip_hash = NULL FROM rekey_signatures AS r WHERE s.id = r.id")
        cursor.close()

    return write


def _outbox(session: Session, old: DataCipher, new: DataCipher) -> int:
    rows = session.execute(select(OutboxMessage.id, OutboxMessage.recipient_enc)
                           .where(OutboxMessage.recipient_enc.is_not(None))).all()
    changes = [{"b_id": row.id, "b_recipient": new.encrypt(
        _decrypt(old, row.recipient_enc, "outbox.recipient", f"The recipient of email {row.id}"),
        "outbox.recipient")} for row in rows]
    if changes:
        session.connection().execute(
            update(OutboxMessage).where(OutboxMessage.id == bindparam("b_id"))
            .values(recipient_enc=bindparam("b_recipient")), changes)
    return len(changes)


def _audit(session: Session, old: DataCipher, new: DataCipher) -> int:
    changed = 0
    for entry in session.scalars(select(AuditEntry).order_by(AuditEntry.id)):
        filt = (entry.detail or {}).get("filter")
        if not isinstance(filt, dict) or not (filt.get("email_domain_enc") or filt.get("ip_hash")):
            continue
        filt = dict(filt)
        if filt.get("email_domain_enc"):
            domain = _decrypt(old, filt["email_domain_enc"], _AUDIT_DOMAIN,
                              f"The email domain in audit entry {entry.id}")
            filt["email_domain_enc"] = base64.b64encode(
                new.encrypt(domain, _AUDIT_DOMAIN) or b"").decode()
        if filt.pop("ip_hash", None):
            filt["ip_hash_erased"] = True
        entry.detail = {**entry.detail, "filter": filt}
        changed += 1
    session.flush()
    return changed
