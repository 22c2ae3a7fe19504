"""A process started with another data key than the one the stored signer data was made with.

The database keeps the data key's fingerprint (petition.keys). With another key and signer
data stored, the process refuses to use the database: pages and signing answer 503 and
write nothing, every command ends with the reason, /health takes the host out of a load
balancer, and gunicorn does not start. Without stored data, another key is taken and
`init-db` records it. A database from before the fingerprint is checked by decrypting what
it holds before the key is recorded.
"""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import delete, func, select

from petition.crypto import DataCipher
from petition.db import get_session
from petition.models import KeyFingerprint, OutboxMessage, Signature
from tests.conftest import DATA_KEY, PG_URL, Outbox
from tests.helpers import make_campaign, sign_petition, signer
from tests.liveserver import ROOT, free_port
from tests.tcpproxy import TcpProxy
from tests.test_database_outage import _through

OTHER_KEY = base64.urlsafe_b64encode(b"another key, 32 bytes long, see?").decode()
WRONG_KEY = "is not the key this database's signer data was encrypted with"
CANNOT_DECRYPT = "does not decrypt the signer data already in this database"


def _stored(app: Flask) -> tuple[int, int]:
    """(signatures, outbox messages), read by an app with the right key."""
    with app.app_context():
        session = get_session()
        return (session.scalar(select(func.count()).select_from(Signature)) or 0,
                session.scalar(select(func.count()).select_from(OutboxMessage)) or 0)


def _recorded(app: Flask) -> str | None:
    with app.app_context():
        return get_session().scalar(select(KeyFingerprint.fingerprint))


def _signed(app: Flask) -> str:
    """A campaign with one signature (and its email) made with app's key; the demand's slug."""
    with app.app_context():
        demand = make_campaign(get_session(), demands=1).demands[0]
        assert sign_petition(app.test_client(), demand).status_code == 303
        return demand.slug


def test_the_fingerprint_tells_keys_apart_and_does_not_reveal_them() -> None:
    ours, other = DataCipher(DATA_KEY), DataCipher(OTHER_KEY)
    assert ours.fingerprint == DataCipher(DATA_KEY).fingerprint
    assert ours.fingerprint != other.fingerprint
    assert len(ours.fingerprint) == 64
    raw = base64.urlsafe_b64decode(DATA_KEY)
    assert raw.hex() not in ours.fingerprint and DATA_KEY not in ours.fingerprint


def test_init_db_records_the_key_and_health_reports_it(app: Flask) -> None:
    assert _recorded(app) == DataCipher(DATA_KEY).fingerprint
    result = app.test_cli_runner().invoke(args=["init-db"])
    assert result.exit_code == 0 and result.output == "Database is up to date.\n"
    assert app.test_client().get("/health").json["data_key"] == "ok"


def test_another_key_is_refused_once_signer_data_is_stored(
        app: Flask, make_app: Any, outbox: Outbox) -> None:
    slug = _signed(app)
    assert _stored(app) == (1, 1)
    wrong = make_app(DATA_KEY=OTHER_KEY, WTF_CSRF_ENABLED=False)
    client = wrong.test_client()

    page = client.get(f"/petitions/{slug}")
    assert page.status_code == 503 and page.headers["Retry-After"] == "30"
    # The same person signing again would not be found by the other key's email hash.
    response = client.post(f"/petitions/{slug}/sign", data=signer())
    assert response.status_code == 503
    response = client.post(f"/petitions/{slug}/sign", data=signer(email="new@example.org"))
    assert response.status_code == 503
    assert _stored(app) == (1, 1)

    health = client.get("/health")
    assert health.status_code == 503
    assert health.json == {"status": "unavailable", "database": "ok", "schema": "unknown",
                           "data_key": "mismatch"}

    runner = wrong.test_cli_runner()
    for args in (["init-db"], ["recount", "--check"], ["outbox-worker", "--once"],
                 ["anonymise", "--closed-before", "2020-01-01", "--dry-run"]):
        result = runner.invoke(args=args)
        assert result.exit_code == 1, args
        assert WRONG_KEY in result.output and "Traceback" not in result.output, args
    assert _recorded(app) == DataCipher(DATA_KEY).fingerprint

    # The right key goes on as before.
    assert app.test_client().get(f"/petitions/{slug}").status_code == 200
    assert app.test_client().get("/health").status_code == 200


def test_another_key_is_taken_while_nothing_depends_on_the_old_one(
        app: Flask, make_app: Any) -> None:
    with app.app_context():
        demand = make_campaign(get_session(), demands=1).demands[0]
    new = make_app(DATA_KEY=OTHER_KEY)
    client = new.test_client()
    assert client.get(f"/petitions/{demand.slug}").status_code == 200
    # Until init-db records it, a balancer keeps the host out: the hosts may disagree.
    assert client.get("/health").json["data_key"] == "mismatch"

    result = new.test_cli_runner().invoke(args=["init-db"])
    assert result.exit_code == 0, result.output
    assert "The new key is recorded." in result.output
    assert _recorded(new) == DataCipher(OTHER_KEY).fingerprint
    assert client.get("/health").status_code == 200

    assert sign_petition(client, demand).status_code == 303
    # Now the first key is the one refused.
    old = make_app(DATA_KEY=DATA_KEY)
    assert old.test_client().get(f"/petitions/{demand.slug}").status_code == 503


def test_a_database_from_before_the_check_is_verified_when_upgraded(
        app: Flask, make_app: Any) -> None:
    _signed(app)
    with app.app_context():
        session = get_session()
        session.execute(delete(KeyFingerprint))
        session.commit()

    wrong = make_app(DATA_KEY=OTHER_KEY)
    result = wrong.test_cli_runner().invoke(args=["init-db"])
    assert result.exit_code == 1
    assert CANNOT_DECRYPT in result.output and "nothing was changed" in result.output
    assert _recorded(app) is None

    right = make_app()
    result = right.test_cli_runner().invoke(args=["init-db"])
    assert result.exit_code == 0, result.output
    assert _recorded(app) == DataCipher(DATA_KEY).fingerprint


def test_queued_email_alone_is_checked_too(make_app: Any) -> None:
    """A database whose signatures were erased but whose outbox still holds an address."""
    app = make_app(MAIL_DELIVERY="worker")  # the email waits for the outbox worker
    _signed(app)
    with app.app_context():
        assert get_session().scalar(select(OutboxMessage.recipient_enc)) is not None
    with app.app_context():
        session = get_session()
        session.execute(delete(KeyFingerprint))
        for signature in session.scalars(select(Signature)):
            signature.email_enc = signature.name_enc = signature.email_key = None
        session.commit()
    result = make_app(DATA_KEY=OTHER_KEY).test_cli_runner().invoke(args=["init-db"])
    assert result.exit_code == 1 and CANNOT_DECRYPT in result.output


def test_gunicorn_does_not_start_with_another_key(app: Flask, database_url: str,
                                                  tmp_path: Path) -> None:
    _signed(app)
    env = {
        **os.environ,
        "PETITION_INSTANCE_PATH": str(tmp_path / "instance"),
        "PETITION_DATABASE_URL": database_url,
        "PETITION_SECRET_KEY": "test-secret-key",
        "PETITION_DATA_KEY": OTHER_KEY,
        "GUNICORN_BIND": f"127.0.0.1:{free_port()}",
        "GUNICORN_WORKERS": "1",
        "GUNICORN_ACCESS_LOG": str(tmp_path / "access.log"),
    }
    env.pop("DATABASE_URL", None)
    done = subprocess.run(
        [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "petition:create_app()"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 3, done.stderr
    assert WRONG_KEY in done.stderr and "Worker failed to boot." in done.stderr


@pytest.mark.skipif(not PG_URL, reason="needs PostgreSQL (PETITION_TEST_DATABASE_URL)")
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_process_started_while_the_database_was_away_is_checked_when_it_answers(
        app: Flask, make_app: Any, database_url: str, tmp_path: Path) -> None:
    slug = _signed(app)
    proxy = TcpProxy("127.0.0.1", int(database_url.rsplit(":", 1)[1].split("/")[0]))
    proxy.start()
    try:
        proxy.cut()
        wrong = make_app(DATABASE_URL=_through(proxy, database_url), DATA_KEY=OTHER_KEY)
        client = wrong.test_client()
        assert client.get("/health").json["database"] == "unreachable"
        assert client.get(f"/petitions/{slug}").status_code == 503
        proxy.restore()
        assert client.get(f"/petitions/{slug}").status_code == 503
        assert client.get("/health").json["data_key"] == "mismatch"
        assert _stored(app) == (1, 1)
    finally:
        proxy.stop()
