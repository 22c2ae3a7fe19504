"""gunicorn.conf.py raises the open-file limit its workers start with.

A gthread worker keeps up to 1,000 client connections open (gunicorn's worker_connections).
systemd starts a service with a soft limit of 1,024 open files, and under a surge through
nginx a worker reached 1,014 (docs/operations.md, "Surges"). Past the limit, requests fail
with "Too many open files". Here gunicorn starts with a soft limit of 900, below what one
worker needs, as a stricter host would give it.
"""

from __future__ import annotations

import resource
import shutil
import socket
import urllib.request
from pathlib import Path

from tests.helpers import soft_open_files
from tests.liveserver import live_server

REQUEST = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
LOW = 900  # below the 1,000 connections one worker may hold


def _worker_soft_limit(tmp: Path) -> int:
    """The soft open-file limit of the one worker, found by its pid in the server log."""
    log = (tmp / "server.log").read_text()
    return soft_open_files(log.split("Booting worker with pid: ", 1)[1].split()[0])


def _hard() -> int:
    return resource.getrlimit(resource.RLIMIT_NOFILE)[1]


def test_a_worker_holding_950_connections_still_answers(tmp_path: Path, sqlite_template: Path) -> None:
    """950 keep-alive connections each get their answer and stay open in one worker, and a
    new visitor still gets the page: nothing fails for want of files."""
    db = tmp_path / "live.sqlite3"
    shutil.copy(sqlite_template, db)
    held: list[socket.socket] = []
    with live_server(f"sqlite:///{db}", tmp_path, workers=1, threads=4,
                     open_files=(LOW, _hard())) as base:
        assert _worker_soft_limit(tmp_path) == min(1000 + 1024, _hard())
        port = int(base.rsplit(":", 1)[1])
        own = resource.getrlimit(resource.RLIMIT_NOFILE)  # room for this side's 950 sockets too
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(own[0], min(4096, own[1])), own[1]))
        try:
            for _ in range(950):  # all sent at once, as nginx passes on a surge's requests
                conn = socket.create_connection(("127.0.0.1", port), timeout=30)
                conn.sendall(REQUEST)
                held.append(conn)
            answered = 0
            for conn in held:
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    data += chunk
                answered += data.startswith(b"HTTP/1.1 200 ")
            assert answered == 950
            with urllib.request.urlopen(base + "/", timeout=30) as response:
                assert response.status == 200
        finally:
            for conn in held:
                conn.close()
            resource.setrlimit(resource.RLIMIT_NOFILE, own)
    log = (tmp_path / "server.log").read_text()
    assert "Too many open files" not in log
    assert "Open files are limited" not in log


def test_a_hard_limit_too_low_is_named_in_the_log(tmp_path: Path, sqlite_template: Path) -> None:
    """Where the hard limit does not allow enough, the worker gets what it allows and the
    log says what to raise."""
    db = tmp_path / "live.sqlite3"
    shutil.copy(sqlite_template, db)
    with live_server(f"sqlite:///{db}", tmp_path, workers=1, threads=2,
                     open_files=(LOW, 1200)) as base:
        with urllib.request.urlopen(base + "/", timeout=30) as response:
            assert response.status == 200
        assert _worker_soft_limit(tmp_path) == 1200
    log = (tmp_path / "server.log").read_text()
    assert ("Open files are limited to 1200: a worker holding 1000 connections may fail "
            "requests with 'Too many open files'. Raise the limit (LimitNOFILE= in the systemd "
            "unit) to at least 2024.") in log
