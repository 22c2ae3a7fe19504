"""The production gunicorn worker (gunicorn.conf.py's FairThreadWorker), in real gunicorn.

A worker whose threads are all busy leaves new connections to a worker with a free thread,
and still takes them once a thread frees up when it is the only worker.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.liveserver import free_port

ROOT = Path(__file__).resolve().parent.parent
SLOW_SECONDS = 3.0

# A WSGI app that says which worker process answered; /slow holds a thread for a while.
APP = f"""
import os, time

def app(environ, start_response):
    if environ["PATH_INFO"] == "/slow":
        time.sleep({SLOW_SECONDS})
    body = str(os.getpid()).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
"""


@contextmanager
def gunicorn(tmp: Path, workers: int) -> Iterator[str]:
    """gunicorn -c gunicorn.conf.py with one thread per worker; yields the base URL once every
    worker has booted."""
    (tmp / "pid_app.py").write_text(APP)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GUNICORN_")}
    env.update(GUNICORN_BIND=f"127.0.0.1:{port}", GUNICORN_WORKERS=str(workers),
               GUNICORN_THREADS="1", GUNICORN_ACCESS_LOG="/dev/null")
    log_path = tmp / "gunicorn.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", str(ROOT / "gunicorn.conf.py"),
             "--chdir", str(tmp), "pid_app:app"],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 30
        while log_path.read_text().count("Booting worker") < workers:
            assert proc.poll() is None, log_path.read_text()
            assert time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.05)
        time.sleep(1.0)  # each worker imports the app and starts its loop
        assert "FairThreadWorker" in log_path.read_text()  # "Using worker: ..."
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _get(url: str) -> tuple[str, float]:
    """The answering worker's pid and how long the request took (a new connection each)."""
    started = time.monotonic()
    with urllib.request.urlopen(url, timeout=30) as response:
        return response.read().decode(), time.monotonic() - started


class _Slow:
    """A /slow request running in the background (it holds its worker's only thread)."""

    def __init__(self, base: str) -> None:
        self.result: list[tuple[str, float]] = []
        self.thread = threading.Thread(target=lambda: self.result.append(_get(base + "/slow")))
        self.thread.start()
        time.sleep(0.5)  # accepted and sleeping

    def pid(self) -> str:
        self.thread.join(SLOW_SECONDS + 30)
        return self.result[0][0]


def test_a_busy_worker_leaves_new_connections_to_a_free_one(tmp_path: Path) -> None:
    with gunicorn(tmp_path, workers=2) as base:
        slow = _Slow(base)
        answers = [_get(base + "/") for _ in range(12)]
        busy_pid = slow.pid()
    # gunicorn's own gthread worker would accept about half of these in the busy worker,
    # where each would wait for the slow request to finish.
    assert busy_pid not in {pid for pid, _ in answers}
    assert max(took for _, took in answers) < SLOW_SECONDS / 2


def test_the_only_worker_takes_new_connections_once_a_thread_is_free(tmp_path: Path) -> None:
    with gunicorn(tmp_path, workers=1) as base:
        slow = _Slow(base)
        pid, took = _get(base + "/")  # waits in the queue, then is served: not refused
        busy_pid = slow.pid()
    assert pid == busy_pid
    assert SLOW_SECONDS - 1.0 < took < SLOW_SECONDS + 5
