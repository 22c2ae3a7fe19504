"""`flask rotate-data-key NEW_KEY_FILE`: the stored signer data re-encrypted with a new data key.

After the change the new key reads everything (names, emails, postcodes, queued emails'
recipients, the audit log's email domains), someone who signed before is still recognised,
IP address hashes are gone, and a process with the old key refuses to run. Bad input and
values the old key cannot read change nothing (SQLite and PostgreSQL).
"""

from __future__ import annotations

import base64
import os
import re
from pathlib import Path
from typing import Any

import psycopg
import pytest
from flask import Flask
from sqlalchemy import func, select, update

from petition import rekey
from petition.crypto import DataCipher
from petition.db import application_name
from petition.models import (
    AuditEntry,
    Campaign,
    KeyFingerprint,
    OutboxMessage,
    OutboxStatus,
    Signature,
)
from petition.organiser.moderation import InvalidationFilter
from tests.conftest import DATA_KEY, Outbox
from tests.helpers import login, make_campaign, make_organiser, sign_petition

SIGNERS = [
    {"name": "Ayşe Yılmaz", "email": "ayse@example.org", "postcode": "10115"},
    {"name": "Dilan Kaya", "email": "dilan.kaya+petition@gmail.com", "postcode": None},
    {"name": "Zhang Wei 张伟", "email": "wei@example.net", "postcode": "E1 6AN"},
    {"name": "Omar Haddad", "email": "omar@example.org", "postcode": "75011"},
    {"name": "Lena Müller", "email": "lena@example.de", "postcode": None},
]
FIELDS = (("name_enc", "signature.name"), ("email_enc", "signature.email"),
          ("postcode_enc", "signature.postcode"))


@pytest.fixture
def old(make_app: Any) -> Flask:
    """The app before the change; emails wait in the outbox for the worker."""
    return make_app(MAIL_DELIVERY="worker")


@pytest.fixture
def signed(old: Flask) -> dict[str, Any]:
    """A demand signed by SIGNERS, an invalidation in the audit log naming an IP hash and an
    email domain, and what was stored (raw), all made with the old key."""
    session = old.extensions["petition.sessionmaker"]()
    with old.app_context():
        demand = make_campaign(session, demands=1).demands[0]
    for person in SIGNERS:  # each its own browser (outside the app context: its own `g`)
        assert sign_petition(old.test_client(), demand, **person).status_code == 303
    with old.app_context():
        ip_hash = session.scalar(select(Signature.ip_hash).limit(1))
        assert ip_hash
        filt = InvalidationFilter(ip_hash=ip_hash, email_domain="Example.org")
        session.add(AuditEntry(campaign_id=demand.campaign_id, action="invalidate",
                               detail={"filter": filt.to_detail(), "signatures": {}}))
        session.commit()
    before = _raw(old)
    session.close()
    return {"demand": demand, "raw": before}


def _raw(app: Flask) -> dict[int, tuple[Any, ...]]:
    session = app.extensions["petition.sessionmaker"]()
    try:
        return {row[0]: tuple(row[1:]) for row in session.execute(
            select(Signature.id, Signature.name_enc, Signature.email_enc, Signature.postcode_enc,
                   Signature.email_key, Signature.email_domain_key, Signature.ip_hash))}
    finally:
        session.close()


def _recorded(app: Flask) -> str | None:
    session = app.extensions["petition.sessionmaker"]()
    try:
        return session.scalar(select(KeyFingerprint.fingerprint))
    finally:
        session.close()


def _rotate(app: Flask, *args: str, **kwargs: Any):  # noqa: ANN202
    return app.test_cli_runner().invoke(args=["rotate-data-key", *args], **kwargs)


def test_the_new_key_reads_everything_and_recognises_earlier_signers(
        old: Flask, signed: dict[str, Any], make_app: Any, tmp_path: Path) -> None:
    key_file = tmp_path / "new.key"
    result = _rotate(old, str(key_file), "--yes")
    assert result.exit_code == 0, result.output
    assert f"A new key was written to {key_file}" in result.output
    assert ("The data key is changed: 5 signatures, 5 queued emails and 1 audit entry "
            "rewritten with the new key; 5 IP address hashes erased.") in result.output
    assert f"set PETITION_DATA_KEY to the key in {key_file} on every app host" in result.output
    assert key_file.stat().st_mode & 0o777 == 0o600
    new_key = key_file.read_text().strip()
    new_cipher = DataCipher(new_key)
    assert _recorded(old) == new_cipher.fingerprint

    new = make_app(DATA_KEY=new_key, MAIL_DELIVERY="worker")
    after = _raw(new)
    old_cipher = DataCipher(DATA_KEY)
    by_email = {p["email"]: p for p in SIGNERS}
    for signature_id, row in after.items():
        name_enc, email_enc, postcode_enc, email_key, domain_key, ip_hash = row
        email = new_cipher.decrypt(email_enc, "signature.email")
        person = by_email[email]
        assert new_cipher.decrypt(name_enc, "signature.name") == person["name"]
        assert new_cipher.decrypt(postcode_enc, "signature.postcode") == person["postcode"]
        assert email_key == new_cipher.email_key(email) != old_cipher.email_key(email)
        assert domain_key == new_cipher.domain_key(email)
        assert ip_hash is None
        assert email_enc != signed["raw"][signature_id][1]
        with pytest.raises(Exception):  # noqa: B017, PT011 - InvalidTag: the old key is gone
            old_cipher.decrypt(email_enc, "signature.email")

    # Signing again, with the address written another way, is recognised: no second row.
    demand = signed["demand"]
    client = new.test_client()
    assert sign_petition(client, demand, name="Dilan Kaya", email="DilanKaya@googlemail.com",
                         postcode=None).status_code == 303
    assert sign_petition(client, demand, name="Someone New",
                         email="new@example.org").status_code == 303
    assert len(_raw(new)) == 6

    # The queued emails go out to the right people with the new key.
    outbox = Outbox(Path(new.config["OUTBOX_DIR"]))
    sent = new.test_cli_runner().invoke(args=["outbox-worker", "--once"])
    assert sent.exit_code == 0, sent.output
    recipients = sorted(message["To"] for message in outbox.messages())
    assert recipients == sorted([p["email"] for p in SIGNERS]
                                + ["DilanKaya@googlemail.com", "new@example.org"])

    # The audit log still names the email domain; the IP hash is gone.
    session = new.extensions["petition.sessionmaker"]()
    entry = session.scalar(select(AuditEntry).where(AuditEntry.action == "invalidate"))
    assert entry is not None and "ip_hash" not in entry.detail["filter"]
    campaign = session.get(Campaign, demand.campaign_id)
    make_organiser(session, campaign=campaign)
    session.close()
    owner = new.test_client()
    login(owner)
    page = owner.get(f"/organiser/campaigns/{campaign.slug}/audit")
    assert page.status_code == 200
    shown = re.sub(r"\s+", " ", page.text)
    assert "<dt>Email domain</dt><dd>example.org</dd>" in shown
    assert "<dt>IP address (hash)</dt><dd>erased when the data key was changed</dd>" in shown

    # A process still on the old key refuses to run.
    stale = make_app(MAIL_DELIVERY="worker")
    assert stale.test_client().get("/health").json["data_key"] == "mismatch"
    assert stale.test_client().get(f"/petitions/{demand.slug}").status_code == 503
    refused = stale.test_cli_runner().invoke(args=["outbox-worker", "--once"])
    assert refused.exit_code == 1 and "is not the key this database" in refused.output


def test_it_works_in_batches_and_the_instance_key_file_is_named(
        make_app: Any, old: Flask, signed: dict[str, Any], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    # The key from instance/data.key, as `make run` does.
    instance = tmp_path / "instance"
    instance.mkdir(exist_ok=True)
    (instance / "data.key").write_text(DATA_KEY + "\n")
    app = make_app(DATA_KEY=None, MAIL_DELIVERY="worker")
    old.extensions["petition.engine"].dispose()  # stopped, as the command asks
    assert app.config["DATA_KEY"] == DATA_KEY
    monkeypatch.setattr(rekey, "BATCH", 2)
    done: list[int] = []
    real = rekey.rekey

    def counting(session, old, new, progress=None):  # noqa: ANN001, ANN202
        return real(session, old, new, lambda n: (done.append(n), progress and progress(n)))

    monkeypatch.setattr(rekey, "rekey", counting)
    key_file = tmp_path / "data.key.new"
    result = _rotate(app, str(key_file), "--yes")
    assert result.exit_code == 0, result.output
    assert done == [2, 4, 5]
    in_use = instance / "data.key"
    assert f"replace {in_use} with {key_file} (mv {key_file} {in_use})" in result.output
    new_cipher = DataCipher(key_file.read_text())
    assert all(new_cipher.decrypt(row[1], "signature.email") for row in _raw(app).values())


def test_a_value_the_old_key_cannot_read_stops_it_with_nothing_changed(
        old: Flask, signed: dict[str, Any], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rekey, "BATCH", 2)  # the first batches are rewritten before it fails
    last = max(signed["raw"])
    session = old.extensions["petition.sessionmaker"]()
    tampered = DataCipher(base64.urlsafe_b64encode(b"x" * 32).decode()).encrypt(
        "someone@example.org", "signature.email")
    session.execute(update(Signature).where(Signature.id == last).values(email_enc=tampered))
    session.commit()
    session.close()
    before = _raw(old)

    result = _rotate(old, str(tmp_path / "new.key"), "--yes")
    assert result.exit_code == 1
    assert f"Signature {last} cannot be decrypted with the key in use" in result.output
    assert "nothing was changed" in result.output and "Traceback" not in result.output
    assert _raw(old) == before
    assert _recorded(old) == DataCipher(DATA_KEY).fingerprint
    assert old.test_client().get(f"/petitions/{signed['demand'].slug}").status_code == 200


@pytest.mark.parametrize("content, message", [
    ("not a key", "does not hold a data key: it must hold 32 random bytes"),
    (base64.urlsafe_b64encode(b"short").decode(), "does not hold a data key"),
    (DATA_KEY, "holds the key in use"),
    ("\udcff", "does not hold a data key"),
])
def test_a_key_file_that_is_not_a_new_key_is_refused(
        old: Flask, signed: dict[str, Any], tmp_path: Path, content: str, message: str) -> None:
    key_file = tmp_path / "given.key"
    key_file.write_bytes(content.encode("utf-8", "surrogateescape") + b"\n")
    result = _rotate(old, str(key_file), "--yes")
    assert result.exit_code == 1
    assert message in result.output and "Traceback" not in result.output
    assert _raw(old) == signed["raw"]
    assert _recorded(old) == DataCipher(DATA_KEY).fingerprint


def test_a_key_file_that_cannot_be_made_is_refused(old: Flask, signed: dict[str, Any],
                                                     tmp_path: Path) -> None:
    result = _rotate(old, str(tmp_path / "no-such-folder" / "new.key"), "--yes")
    assert result.exit_code == 1
    assert "cannot read or create the new key there" in result.output
    assert _raw(old) == signed["raw"]


def test_it_asks_whether_the_app_is_stopped(old: Flask, signed: dict[str, Any],
                                            tmp_path: Path) -> None:
    result = _rotate(old, str(tmp_path / "new.key"), input="n\n")
    assert "Is everything stopped?" in result.output
    assert result.exit_code == 1 and "Aborted" in result.output
    assert _raw(old) == signed["raw"]
    assert _recorded(old) == DataCipher(DATA_KEY).fingerprint

    result = _rotate(old, str(tmp_path / "new.key"), input="y\n")
    assert result.exit_code == 0, result.output
    assert _recorded(old) == DataCipher((tmp_path / "new.key").read_text()).fingerprint


def test_a_database_without_a_recorded_key_is_refused(old: Flask, signed: dict[str, Any],
                                                      tmp_path: Path) -> None:
    session = old.extensions["petition.sessionmaker"]()
    session.query(KeyFingerprint).delete()
    session.commit()
    session.close()
    result = _rotate(old, str(tmp_path / "new.key"), "--yes")
    assert result.exit_code == 1
    assert "run `flask --app petition init-db` with the current key first" in result.output
    assert _raw(old) == signed["raw"]


def test_other_clients_on_postgresql_are_named_and_nothing_changes(
        old: Flask, signed: dict[str, Any], database_url: str, tmp_path: Path,
        make_app: Any) -> None:
    if not database_url.startswith("postgresql"):
        # SQLite keeps no list of the processes that have the file open: the command asks
        # (test_it_asks_whether_the_app_is_stopped) and finds no one to name.
        session = old.extensions["petition.sessionmaker"]()
        assert rekey.other_clients(session) == []
        session.close()
        return
    dsn = database_url.replace("postgresql+psycopg://", "postgresql://")
    app_host = make_app()  # another app process: its sessions carry the app's name
    with psycopg.connect(dsn, application_name="psql") as other, \
            app_host.extensions["petition.engine"].connect():
        other.execute("SELECT 1")
        result = _rotate(old, str(tmp_path / "new.key"), "--yes")
    app_host.extensions["petition.engine"].dispose()
    assert result.exit_code == 1
    assert "Other clients are connected to the database" in result.output
    assert "psql from " in result.output
    assert f"{application_name()} from " in result.output
    assert _raw(old) == signed["raw"]
    # Once it has gone, the change goes ahead.
    result = _rotate(old, str(tmp_path / "new.key"), "--yes")
    assert result.exit_code == 0, result.output


def test_queued_emails_count_pending_ones_only(old: Flask, signed: dict[str, Any],
                                              tmp_path: Path) -> None:
    session = old.extensions["petition.sessionmaker"]()
    first = session.scalar(select(func.min(OutboxMessage.id)))
    session.execute(update(OutboxMessage).where(OutboxMessage.id == first)
                    .values(status=OutboxStatus.SENT, recipient_enc=None))
    session.commit()
    session.close()
    result = _rotate(old, str(tmp_path / "new.key"), "--yes")
    assert result.exit_code == 0, result.output
    assert "5 signatures, 4 queued emails and 1 audit entry" in result.output


@pytest.mark.parametrize("argv, expected", [
    (["/srv/petition/.venv/bin/gunicorn", "-c", "gunicorn.conf.py", "petition:create_app()"],
     "petition gunicorn"),
    (["/srv/petition/.venv/bin/flask", "--app", "petition", "outbox-worker", "--once"],
     "petition flask outbox-worker"),
    (["flask", "-A", "petition", "--env-file", "x.env", "rotate-data-key", "k"],
     "petition flask rotate-data-key"),
    ([], "petition python"),
])
def test_postgresql_sessions_are_named_by_program_and_command(
        monkeypatch: pytest.MonkeyPatch, argv: list[str], expected: str) -> None:
    monkeypatch.setattr("sys.argv", argv)
    assert application_name() == f"{expected} {os.getpid()}"
