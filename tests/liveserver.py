"""A real server process (gunicorn) for tests that need one: concurrency, SMTP, browser."""

from __future__ import annotations

import os
import resource
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.conftest import DATA_KEY

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    """An unused TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def live_server(
    database_url: str, tmp: Path, *, workers: int = 2, threads: int = 8, port: int | None = None,
    open_files: tuple[int, int] | None = None, **config: str,
) -> Iterator[str]:
    """Run the app under gunicorn on a free port; yields its base URL, e.g. http://127.0.0.1:PORT.

    The app uses the test keys, the console mail transport writing to tmp/outbox (unless
    config overrides it) and no rate limits. Extra PETITION_* settings come from **config;
    `port` is the one to bind (default: a free one); `open_files` the (soft, hard) limit of
    open files gunicorn starts with (default: this process's).
    """
    port = port or free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "PETITION_INSTANCE_PATH": str(tmp / "instance"),
        "PETITION_DATABASE_URL": database_url,
        "PETITION_SECRET_KEY": "test-secret-key",
        "PETITION_DATA_KEY": DATA_KEY,
        "PETITION_PUBLIC_URL": base,
        "PETITION_MAIL_DELIVERY": "inline",
        "PETITION_OUTBOX_DIR": str(tmp / "outbox"),
        "PETITION_RATELIMIT_ENABLED": "false",
        "PETITION_COUNT_POLL_SECONDS": "2",
    }
    env.pop("DATABASE_URL", None)
    env.update({f"PETITION_{k}": v for k, v in config.items()})
    log = open(tmp / "server.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [
            sys.executable, "-m", "gunicorn", "petition:create_app()",
            "--bind", f"127.0.0.1:{port}", "--workers", str(workers),
            "--threads", str(threads), "--worker-class", "gthread", "--timeout", "60",
        ],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
        preexec_fn=None if open_files is None else (
            lambda: resource.setrlimit(resource.RLIMIT_NOFILE, open_files)),
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"server exited: {(tmp / 'server.log').read_text()}")
            try:  # ready when a worker answers, not just when the port is open
                with urllib.request.urlopen(base + "/", timeout=5) as response:
                    if response.status == 200:
                        break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("server did not answer within 60 s") from None
                time.sleep(0.1)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
