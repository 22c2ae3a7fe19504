"""deploy/systemd/: the units are valid for systemd, and each command runs as written.

systemd is not the init system of the test machine, so the units are not started by it:
`systemd-analyze verify` checks every unit (known options, executables present), and each
ExecStart/ExecReload runs here the way systemd would run it: the unit's working directory,
Environment= and the example EnvironmentFile (with a temporary instance folder, a free port
and test keys in place of the placeholders), `%%` and `$$` unescaped. The app answers and
tells systemd it is ready (Type=notify), reloads on HUP and stops cleanly on TERM; the outbox
worker sends a queued email and stops on TERM; the timers' jobs do their work.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from datetime import datetime
from pathlib import Path

import pytest

from tests.conftest import DATA_KEY
from tests.liveserver import free_port

ROOT = Path(__file__).resolve().parent.parent
UNITS = ROOT / "deploy" / "systemd"
SERVICES = ("petition", "petition-outbox", "petition-nightly", "petition-anonymise",
            "petition-check")


def _unit(name: str) -> dict[str, dict[str, list[str]]]:
    """A unit file as {section: {key: [values in order]}} (comments and blank lines out)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] = {}
    for line in (UNITS / name).read_text().splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), {})
            continue
        key, _, value = line.partition("=")
        current.setdefault(key, []).append(value)
    return sections


def _env_file(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, _, value = line.partition("=")
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        values[key] = value
    return values


def _argv(command: str, paths: dict[str, str], extra: dict[str, str] | None = None) -> list[str]:
    """An Exec line as systemd passes it: words split, %% and $$ unescaped ($MAINPID from
    extra); the install paths replaced by the test's."""
    for old, new in paths.items():
        command = command.replace(old, new)
    words = []
    for word in shlex.split(command):
        for name, value in (extra or {}).items():
            word = word.replace(f"${name}", value)
        assert not re.search(r"%[^%]|\$[^$]", word.replace("%%", "").replace("$$", "")), word
        words.append(word.replace("%%", "%").replace("$$", "$"))
    return words


class Deployment:
    """The units' commands with a temporary install: SQLite in the state directory."""

    def __init__(self, tmp: Path) -> None:
        self.state = tmp / "state"
        self.backups = tmp / "backups"
        self.backups.mkdir()
        self.port = free_port()
        self.paths = {"/srv/petition": str(ROOT), "/var/backups/petition": str(self.backups)}
        settings = _env_file(UNITS / "petition.env.example")
        placeholders = {k for k, v in settings.items() if "CHANGE-ME" in v}
        assert placeholders == {"DATABASE_URL", "PETITION_DATA_KEY", "PETITION_SECRET_KEY",
                                "PETITION_SMTP_PASSWORD"}
        # The SQLite file, and emails written to the state directory.
        self.removed = ("DATABASE_URL", "PETITION_SMTP_HOST", "PETITION_SMTP_PORT",
                        "PETITION_SMTP_USER", "PETITION_SMTP_PASSWORD")
        for key in self.removed:
            settings.pop(key)
        settings.update({
            "PETITION_INSTANCE_PATH": str(self.state),
            "PETITION_DATA_KEY": DATA_KEY,
            "PETITION_SECRET_KEY": "systemd-test-secret",
            "GUNICORN_BIND": f"127.0.0.1:{self.port}",
            "GUNICORN_WORKERS": "2",
            "GUNICORN_ACCESS_LOG": str(tmp / "access.log"),
        })
        self.settings = settings

    def env(self, unit: dict[str, dict[str, list[str]]]) -> dict[str, str]:
        service = unit["Service"]
        assert service["EnvironmentFile"] == ["/etc/petition/petition.env"]
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("PETITION_", "GUNICORN_")) and k != "DATABASE_URL"}
        for line in service.get("Environment", []):
            for assignment in shlex.split(line):
                key, _, value = assignment.partition("=")
                env[key] = value
        env.update(self.settings)  # EnvironmentFile= wins over Environment=
        return env

    def run(self, name: str, timeout: float = 120) -> list[subprocess.CompletedProcess[str]]:
        """A oneshot service: each ExecStart in order, stopping at the first failure."""
        unit = _unit(f"{name}.service")
        assert unit["Service"]["Type"] == ["oneshot"]
        assert unit["Service"]["WorkingDirectory"] == ["/srv/petition"]
        done = []
        for command in unit["Service"]["ExecStart"]:
            proc = subprocess.run(_argv(command, self.paths), cwd=ROOT, env=self.env(unit),
                                  capture_output=True, text=True, timeout=timeout, check=False)
            done.append(proc)
            if proc.returncode != 0:
                break
        return done

    def start(self, name: str, **extra_env: str) -> subprocess.Popen[str]:
        unit = _unit(f"{name}.service")
        (command,) = unit["Service"]["ExecStart"]
        return subprocess.Popen(_argv(command, self.paths), cwd=ROOT,
                                env={**self.env(unit), **extra_env}, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT)

    def flask(self, *args: str) -> subprocess.CompletedProcess[str]:
        """A command as operations.md has the operator run it: the environment file sourced
        by sh (the example as it is, the test's values after it), in the install directory."""
        env_file = self.state.parent / "petition.env"
        env_file.write_text((UNITS / "petition.env.example").read_text()
                            + "".join(f"{k}={shlex.quote(v)}\n" for k, v in self.settings.items())
                            + f"unset {' '.join(self.removed)}\n")
        script = (f"set -a && . {shlex.quote(str(env_file))} && cd {shlex.quote(str(ROOT))} && "
                  f"exec .venv/bin/flask --app petition {shlex.join(args)}")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PETITION_", "GUNICORN_"))}
        return subprocess.run(["sh", "-c", script], env=env, capture_output=True, text=True,
                              timeout=120, check=False)


def _stop(proc: subprocess.Popen[str], timeout: float) -> tuple[int, str]:
    proc.send_signal(signal.SIGTERM)
    try:
        output, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        output, _ = proc.communicate()
        pytest.fail(f"did not stop on SIGTERM within {timeout} s:\n{output[-3000:]}")
    return proc.returncode, output


def _get(url: str) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers={"X-Forwarded-Proto": "https"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


@pytest.fixture
def deployment(tmp_path: Path) -> Deployment:
    deployment = Deployment(tmp_path)
    result = deployment.flask("init-db")
    assert result.returncode == 0, result.stdout + result.stderr
    return deployment


def test_systemd_analyze_verify_accepts_every_unit(tmp_path: Path) -> None:
    verify = shutil.which("systemd-analyze")
    assert verify, "systemd-analyze (Debian package systemd) is needed to check deploy/systemd/"
    copies = []
    for path in sorted(UNITS.glob("*.service")) + sorted(UNITS.glob("*.timer")):
        copy = tmp_path / path.name
        copy.write_text(path.read_text().replace("/srv/petition", str(ROOT)))
        copies.append(str(copy))
    assert len(copies) == 2 * len(SERVICES) - 2  # a timer for each job, none for app or worker
    proc = subprocess.run([verify, "verify", *copies], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.strip() == "", proc.stderr  # no unknown option, no warning


def test_each_timer_starts_its_job_and_every_job_has_one() -> None:
    for timer in sorted(UNITS.glob("*.timer")):
        assert (UNITS / f"{timer.stem}.service").exists(), timer.name  # Unit= defaults to it
        assert _unit(timer.name)["Install"]["WantedBy"] == ["timers.target"]
    for name in ("petition-nightly", "petition-anonymise", "petition-check"):
        assert (UNITS / f"{name}.timer").exists()


def test_the_app_service_signals_ready_serves_reloads_and_stops_cleanly(
        deployment: Deployment, tmp_path: Path) -> None:
    unit = _unit("petition.service")
    assert unit["Service"]["Type"] == ["notify"]
    # gunicorn exits 3 when the data key is not the database's (tests/test_keys.py): a
    # restart cannot mend that.
    assert unit["Service"]["RestartPreventExitStatus"] == ["3"]
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(tmp_path / "notify"))
    notify.settimeout(60)
    app = deployment.start("petition", NOTIFY_SOCKET=str(tmp_path / "notify"))
    try:
        message = notify.recv(4096).decode()
        assert "READY=1" in message
        base = f"http://127.0.0.1:{deployment.port}"
        status, body = _get(f"{base}/health")
        assert status == 200, body
        assert b'"data_key":"ok"' in body.replace(b" ", b"")

        (reload,) = unit["Service"]["ExecReload"]
        subprocess.run(_argv(reload, deployment.paths, {"MAINPID": str(app.pid)}), check=True)
        for _ in range(20):  # served all through the reload
            assert _get(f"{base}/health")[0] == 200
            time.sleep(0.1)
        assert _get(f"{base}/")[0] == 200
    finally:
        code, output = _stop(app, float(unit["Service"]["TimeoutStopSec"][0]))
        notify.close()
    assert code == 0, output[-3000:]
    assert "Handling signal: hup" in output and "Handling signal: term" in output
    assert "Shutting down: Master" in output


def test_the_outbox_service_sends_and_stops_cleanly(deployment: Deployment) -> None:
    from petition import create_app
    from petition.db import new_session
    from petition.mail import insert_message, message_row

    app = create_app({"DATA_KEY": DATA_KEY, "SECRET_KEY": "systemd-test-secret",
                      "DATABASE_URL": f"sqlite:///{deployment.state / 'petition.sqlite3'}"},
                     instance_path=str(deployment.state))
    with app.app_context():
        session = new_session()
        insert_message(session, message_row(kind="test", recipient="ayse@example.org",
                                            subject="From the outbox", text="Hello", html=""))
        session.commit()
        session.close()
    app.extensions["petition.engine"].dispose()

    worker = deployment.start("petition-outbox")
    outbox = deployment.state / "outbox"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not list(outbox.glob("*.eml")):
        time.sleep(0.2)
    code, output = _stop(worker, float(_unit("petition-outbox.service")["Service"]
                                       ["TimeoutStopSec"][0]))
    assert code == 0, output[-3000:]
    assert "Outbox worker stopped; 1 message sent." in output
    (sent,) = outbox.glob("*.eml")
    assert "To: ayse@example.org" in sent.read_text()


def test_the_nightly_job_backs_up_by_weekday_and_checks_the_counts(
        deployment: Deployment) -> None:
    backup, recount = deployment.run("petition-nightly")
    assert backup.returncode == 0, backup.stderr
    day = datetime.now().strftime("%a")
    made = deployment.backups / f"petition-{day}.backup"
    assert f"Backed up to {made}" in backup.stdout
    assert made.stat().st_mode & 0o777 == 0o600
    assert recount.returncode == 0, recount.stderr + recount.stdout


def test_the_anonymise_job_uses_the_retention_days(deployment: Deployment) -> None:
    (proc,) = deployment.run("petition-anonymise")
    assert proc.returncode == 0, proc.stderr
    assert "0 signatures on 0 demands anonymised." in proc.stdout
    deployment.settings["RETENTION_DAYS"] = "-5"  # a date in the future is refused
    (proc,) = deployment.run("petition-anonymise")
    assert proc.returncode == 2 and "it is in the future" in proc.stderr


def test_the_check_job_fails_when_an_email_waited_too_long(deployment: Deployment) -> None:
    (proc,) = deployment.run("petition-check")
    assert proc.returncode == 0, proc.stderr + proc.stdout
    from petition import create_app
    from petition.db import new_session
    from petition.mail import insert_message, message_row
    from petition.models import OutboxMessage, utcnow

    app = create_app({"DATA_KEY": DATA_KEY, "SECRET_KEY": "systemd-test-secret",
                      "DATABASE_URL": f"sqlite:///{deployment.state / 'petition.sqlite3'}"},
                     instance_path=str(deployment.state))
    with app.app_context():
        session = new_session()
        message_id = insert_message(session, message_row(
            kind="test", recipient="ayse@example.org", subject="Stuck", text="...", html=""))
        session.get(OutboxMessage, message_id).created_at = utcnow().replace(year=2020)
        session.commit()
        session.close()
    app.extensions["petition.engine"].dispose()
    (proc,) = deployment.run("petition-check")
    assert proc.returncode == 1, proc.stdout
