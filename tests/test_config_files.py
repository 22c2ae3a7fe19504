"""Secrets given as files (PETITION_<NAME>_FILE), for Docker secrets and systemd credentials:
the app uses the file's contents, and a missing, empty or doubly given secret stops it with
a message naming the setting (SQLite and PostgreSQL)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from petition.config import ConfigError
from petition.crypto import DataCipher
from tests.conftest import DATA_KEY
from tests.helpers import make_campaign, sign_petition


def _secret(tmp_path: Path, name: str, value: str) -> str:
    path = tmp_path / name
    path.write_text(value)
    path.chmod(0o600)
    return str(path)


def test_keys_from_files_are_used_and_none_is_generated(
        make_app: Any, database_url: str, tmp_path: Path) -> None:
    app = make_app(DATA_KEY=None, DATA_KEY_FILE=_secret(tmp_path, "data.key", DATA_KEY + "\n"),
                   SECRET_KEY=None,
                   SECRET_KEY_FILE=_secret(tmp_path, "secret.key", "from-a-file\r\n"),
                   SECRET_KEY_FALLBACKS_FILE=_secret(tmp_path, "old.keys", "old-2\nold-1\n"),
                   DATABASE_URL="",
                   DATABASE_URL_FILE=_secret(tmp_path, "database.url", database_url + "\n"))
    assert app.config["DATA_KEY"] == DATA_KEY
    assert app.config["SECRET_KEY"] == "from-a-file"
    assert app.config["SECRET_KEY_FALLBACKS"] == ["old-2", "old-1"]
    assert app.config["DATABASE_URL"] == database_url
    assert app.extensions["petition.cipher"].fingerprint == DataCipher(DATA_KEY).fingerprint
    instance = Path(app.instance_path)
    assert not (instance / "data.key").exists() and not (instance / "secret.key").exists()
    # The database's recorded key is the file's: signing works.
    with app.app_context():
        session = app.extensions["petition.sessionmaker"]()
        demand = make_campaign(session, demands=1).demands[0]
        session.close()
    assert sign_petition(app.test_client(), demand).status_code == 303
    assert app.test_client().get("/health").json["data_key"] == "ok"


def test_the_environment_names_the_files(make_app: Any, tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PETITION_SMTP_PASSWORD_FILE",
                       _secret(tmp_path, "smtp", "  spaces kept inside  \n"))
    monkeypatch.setenv("PETITION_REDIS_URL_FILE",
                       _secret(tmp_path, "redis", "redis://:pw@127.0.0.1:6379/0\n"))
    app = make_app()
    assert app.config["SMTP_PASSWORD"] == "  spaces kept inside  "
    assert app.config["REDIS_URL"] == "redis://:pw@127.0.0.1:6379/0"


@pytest.mark.parametrize("overrides, message", [
    ({"DATA_KEY_FILE": "{tmp}/missing.key"},
     "PETITION_DATA_KEY and PETITION_DATA_KEY_FILE are both set"),
    ({"DATA_KEY": None, "DATA_KEY_FILE": "{tmp}/missing.key"},
     "PETITION_DATA_KEY_FILE: cannot read {tmp}/missing.key (No such file or directory)"),
    ({"DATA_KEY": None, "DATA_KEY_FILE": "{tmp}"},
     "PETITION_DATA_KEY_FILE: cannot read {tmp} (Is a directory)"),
    ({"SECRET_KEY": None, "SECRET_KEY_FILE": "{tmp}/empty"},
     "PETITION_SECRET_KEY_FILE: {tmp}/empty is empty."),
    ({"SMTP_PASSWORD_FILE": "{tmp}/latin1"},
     "PETITION_SMTP_PASSWORD_FILE: cannot read {tmp}/latin1"),
])
def test_a_secret_file_that_cannot_be_used_stops_the_app_with_its_name(
        make_app: Any, tmp_path: Path, overrides: dict[str, Any], message: str) -> None:
    (tmp_path / "empty").write_text("\n")
    (tmp_path / "latin1").write_bytes(b"caf\xe9\n")
    overrides = {k: v.format(tmp=tmp_path) if isinstance(v, str) else v
                 for k, v in overrides.items()}
    with pytest.raises(ConfigError) as caught:
        make_app(**overrides)
    assert message.format(tmp=tmp_path) in str(caught.value)
