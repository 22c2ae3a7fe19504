"""Rate limits kept in Redis: shared by several app hosts, and never in the way of signing.

Each test runs real gunicorn servers ("hosts") on one database, with a real Redis started
here (Debian's redis-server on a free port, so that it can be stopped and started again: an
outage), or a port that accepts connections and never answers (a hung Redis).
"""

from __future__ import annotations

import re
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.conftest import PG_URL
from tests.helpers import make_campaign
from tests.liveserver import free_port, live_server
from tests.test_server import TOKEN, browser, fetch, session_of

# Several hosts share one PostgreSQL in production; SQLite stands in where none is configured.
pytestmark = pytest.mark.parametrize(
    "database_url", ["postgresql" if PG_URL else "sqlite"], indirect=True
)

RATE_LIMITED = "Too many signatures were sent from your network in the last minute"


def _demand_slug(make_app) -> str:  # noqa: ANN001
    with session_of(make_app()) as session:
        return make_campaign(session).demands[0].slug


def sign(base: str, slug: str, email: str) -> tuple[int, str]:
    """A new supporter loads the petition page and signs it; returns status and page."""
    opener = browser()
    status, _location, html = fetch(opener, f"{base}/petitions/{slug}")
    assert status == 200, status
    match = TOKEN.search(html)
    assert match, "no CSRF token"
    fields = [("csrf_token", match.group(1) or match.group(2)), ("name", "Ada Lovelace"),
              ("email", email), ("country", "GB")]
    status, _location, html = fetch(opener, f"{base}/petitions/{slug}/sign", fields)
    return status, html


def limited_server(database_url: str, tmp: Path, redis_url: str, prefix: str, **config: str):  # noqa: ANN201
    """A host with the sign limit on (3 a minute) and its counters in redis_url."""
    tmp.mkdir(parents=True, exist_ok=True)
    return live_server(database_url, tmp, workers=1, threads=4, RATELIMIT_ENABLED="true",
                       RATELIMIT_SIGN="3 per minute", REDIS_URL=redis_url,
                       RATELIMIT_KEY_PREFIX=prefix, **config)


def keys(redis_url: str, prefix: str) -> list[bytes]:
    client = redis.Redis.from_url(redis_url, socket_timeout=5)
    try:
        return list(client.scan_iter(f"*{prefix}*"))
    finally:
        client.close()


class RedisProcess:
    """A Redis of this test's own on a free port (nothing on disk), to stop and start again."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        client = redis.Redis.from_url(self.url, socket_timeout=1)
        deadline = time.monotonic() + 20
        try:
            while True:
                try:
                    client.ping()
                    return
                except redis.ConnectionError:
                    assert self.proc.poll() is None, "redis-server exited"
                    assert time.monotonic() < deadline, "redis-server did not start"
                    time.sleep(0.05)
        finally:
            client.close()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)


@pytest.fixture
def own_redis() -> Iterator[RedisProcess]:
    server = RedisProcess()
    server.start()
    yield server
    server.stop()


def test_two_hosts_share_one_sign_limit_through_redis(make_app, database_url, tmp_path,
                                                     own_redis):
    slug = _demand_slug(make_app)
    with limited_server(database_url, tmp_path / "a", own_redis.url, "site") as host_a, \
            limited_server(database_url, tmp_path / "b", own_redis.url, "site") as host_b:
        statuses = [sign(host, slug, f"s{i}@example.org")[0]
                    for i, host in enumerate([host_a, host_b, host_a])]
        assert statuses == [303, 303, 303]
        counters = keys(own_redis.url, "site")
        assert counters, "the counters are not in Redis"
        # Counted under a keyed hash of the client's network: Redis holds no address.
        assert not [k for k in counters if b"127.0.0.1" in k], counters
        # Host b has seen one signature itself, but the limit counts the whole site's.
        status, html = sign(host_b, slug, "s3@example.org")
        assert status == 429
        assert RATE_LIMITED in html
        assert 'value="s3@example.org"' in html  # the supporter's details are kept
        assert sign(host_a, slug, "s4@example.org")[0] == 429
    for host in "ab":  # Flask-Limiter's note of each breach names the client's address
        log = (tmp_path / host / "server.log").read_text()
        assert "exceeded at endpoint" not in log
        assert not re.search(r"(?<!//)127\.0\.0\.1", log)  # only in URLs (links in mail)


def test_signing_goes_on_through_a_redis_outage_and_back(make_app, database_url, tmp_path,
                                                          own_redis):
    slug = _demand_slug(make_app)
    with limited_server(database_url, tmp_path, own_redis.url, "outage") as host:
        assert sign(host, slug, "before@example.org")[0] == 303
        assert keys(own_redis.url, "outage")

        own_redis.stop()  # the connection is refused: the process counts in its own memory
        statuses = [sign(host, slug, f"during{i}@example.org")[0] for i in range(4)]
        assert statuses == [303, 303, 303, 429]
        assert "falling back to in-memory storage" in (tmp_path / "server.log").read_text()

        own_redis.start()  # empty again; the host checks it at growing intervals
        deadline = time.monotonic() + 60
        while not keys(own_redis.url, "outage"):
            assert time.monotonic() < deadline, "the host did not go back to Redis"
            time.sleep(0.5)
            assert sign(host, slug, f"after{time.monotonic_ns()}@example.org")[0] in (303, 429)
        assert "Rate limit storage recovered" in (tmp_path / "server.log").read_text()


def test_a_redis_that_never_answers_does_not_hold_up_signing(make_app, database_url, tmp_path):
    slug = _demand_slug(make_app)
    with socket.socket() as hung:  # accepts connections (the kernel does) and never replies
        hung.bind(("127.0.0.1", 0))
        hung.listen(64)
        url = f"redis://127.0.0.1:{hung.getsockname()[1]}/0"
        with limited_server(database_url, tmp_path, url, "hung", REDIS_TIMEOUT_SECONDS="0.5") as host:
            started = time.monotonic()
            statuses = [sign(host, slug, f"s{i}@example.org")[0] for i in range(4)]
            took = time.monotonic() - started
    assert statuses == [303, 303, 303, 429]
    assert took < 30, f"four signatures took {took:.1f} s"
