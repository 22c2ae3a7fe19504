"""The shipped nginx config (deploy/nginx/) in front of a real gunicorn: what a supporter's
browser goes through in production, over TLS."""

from __future__ import annotations

import http.client
import http.cookiejar
import os
import re
import resource
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import select

from bench import loaders
from bench import nginx as bench_nginx
from bench.nginx import Nginx, render_site
from petition.models import Signature, SignatureStatus
from tests.conftest import Outbox
from tests.helpers import make_campaign, signer, soft_open_files
from tests.liveserver import free_port, live_server
from tests.test_server import session_of

ROOT = Path(__file__).resolve().parent.parent
TOKEN = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *_args: object, **_kwargs: object) -> None:
        return None


@dataclass
class Site:
    nginx: Nginx
    app_log: Path
    tmp: Path
    slug: str
    demand_id: int
    app: object

    @property
    def base(self) -> str:
        return self.nginx.https_base

    def browser(self) -> urllib.request.OpenerDirector:
        """A client with its own cookie jar that trusts the site's certificate and does not
        follow redirects (the tests look at them)."""
        return urllib.request.build_opener(
            urllib.request.HTTPSHandler(context=self.nginx.ssl_context()),
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()), _NoRedirect())

    def app_requests(self, path_part: str) -> int:
        """How many requests whose line contains path_part reached gunicorn."""
        return sum(1 for line in self.app_log.read_text().splitlines() if path_part in line)


def _open(opener: urllib.request.OpenerDirector, url: str, data: dict[str, str] | None = None,
          headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    body = urllib.parse.urlencode(data).encode() if data is not None else None
    request = urllib.request.Request(url, data=body, headers=headers or {})
    try:
        with opener.open(request, timeout=20) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as err:
        with err:
            return err.code, dict(err.headers), err.read()


@contextmanager
def _running_site(make_app, database_url: str, tmp: Path, **config: str) -> Iterator[Site]:  # noqa: ANN001
    """The app under gunicorn behind nginx, configured as docs/operations.md says
    (PROXY_COUNT=1, the public URL is nginx's https address)."""
    app = make_app()
    with session_of(app) as session:
        campaign = make_campaign(session, demands=1)
        slug, demand_id = campaign.demands[0].slug, campaign.demands[0].id
    app_port = free_port()
    nginx = Nginx(app_port, tmp / "nginx")
    with live_server(database_url, tmp, workers=1, threads=4, port=app_port,
                     PROXY_COUNT="1", PUBLIC_URL=nginx.https_base, **config), nginx:
        yield Site(nginx, tmp / "server.log", tmp, slug, demand_id, app)


@pytest.fixture
def site(make_app, database_url: str, tmp_path: Path) -> Iterator[Site]:  # noqa: ANN001
    with _running_site(make_app, database_url, tmp_path) as running:
        yield running


def test_render_site_puts_in_every_machine_path_and_refuses_a_changed_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cert = tmp_path / "c.pem"
    text = render_site(upstream_port=1, https_port=2, http_port=3, cache_dir=tmp_path,
                       cert=cert, key=cert)
    assert "server 127.0.0.1:1;" in text and "listen 127.0.0.1:2 ssl http2;" in text
    directives = "\n".join(line.split("#", 1)[0] for line in text.splitlines())
    assert "/etc/" not in directives and "/var/" not in directives and "/srv/" not in directives

    changed = tmp_path / "petition.conf"
    changed.write_text(bench_nginx.SITE.read_text().replace("listen 443 ssl http2;", "listen 443 ssl;"))
    monkeypatch.setattr(bench_nginx, "SITE", changed)
    with pytest.raises(ValueError, match="listen 443 ssl http2;"):
        render_site(upstream_port=1, https_port=2, http_port=3, cache_dir=tmp_path, cert=cert, key=cert)


def test_a_supporter_signs_and_confirms_through_nginx_over_tls(site: Site) -> None:
    browser = site.browser()
    page_url = f"{site.base}/petitions/{site.slug}"
    status, headers, body = _open(browser, page_url)
    assert status == 200
    # The app knows it is served over https behind one proxy: its session cookie is Secure.
    assert "Secure" in headers["Set-Cookie"] and "HttpOnly" in headers["Set-Cookie"]
    assert headers["Strict-Transport-Security"] == "max-age=31536000"
    token = TOKEN.search(body.decode()).group(1)

    status, headers, body = _open(
        browser, f"{page_url}/sign", {"csrf_token": token, **signer(email="tls@example.org")},
        headers={"Referer": page_url, "Origin": site.base})
    assert status == 303, body.decode()[:2000]
    assert headers["Location"].startswith(f"{site.base}/") or headers["Location"].startswith("/")

    message = Outbox(site.tmp / "outbox").last()
    link = re.search(r"(https://\S+/signatures/confirm/\S+)", Outbox.text(message))
    assert link and link.group(1).startswith(site.base + "/"), Outbox.text(message)
    status, _headers, _body = _open(site.browser(), link.group(1))
    assert status == 200
    with session_of(site.app) as session:
        statuses = session.scalars(select(Signature.status).where(
            Signature.demand_id == site.demand_id)).all()
    assert statuses == [SignatureStatus.CONFIRMED]
    # nginx writes no access log: the confirmation token is in no file it wrote.
    secret = link.group(1).rsplit("/", 1)[1]
    for path in site.nginx.directory.rglob("*"):
        if path.is_file() and path.suffix != ".pem":
            assert secret.encode() not in path.read_bytes(), path


def test_a_browser_that_sends_no_referer_can_still_sign_over_tls(site: Site) -> None:
    """Privacy tools strip Referer: the sign form relies on its own CSRF token, not on the
    Referer check Flask-WTF makes over https, so such a supporter is not turned away."""
    browser = site.browser()
    page_url = f"{site.base}/petitions/{site.slug}"
    token = TOKEN.search(_open(browser, page_url)[2].decode()).group(1)
    status, _headers, body = _open(browser, f"{page_url}/sign",
                                   {"csrf_token": token, **signer(email="noref@example.org")})
    assert status == 303, body.decode()[:2000]
    # ... and a forged post (no token) is still refused, with the form and a message.
    status, _headers, body = _open(site.browser(), f"{page_url}/sign",
                                   signer(email="forged@example.org"))
    assert status == 400
    assert b"forged@example.org" in body


def test_count_polls_are_answered_by_nginx(site: Site) -> None:
    url = f"{site.base}/petitions/{site.slug}/count.json"
    browser = site.browser()
    answers = [_open(browser, url) for _ in range(30)]
    assert {status for status, _h, _b in answers} == {200}
    assert answers[0][1]["X-Cache-Status"] == "MISS"
    assert [h["X-Cache-Status"] for _s, h, _b in answers[1:]].count("HIT") >= 25
    assert all("Set-Cookie" not in h for _s, h, _b in answers)
    assert all(h["Cache-Control"] == "public, max-age=2" for _s, h, _b in answers)
    assert b'"count"' in answers[0][2] or b"count" in answers[0][2]
    # Thirty polls within the cache lifetime: gunicorn saw one or two of them.
    assert 1 <= site.app_requests("/count.json") <= 2
    # A browser's conditional poll gets a 304 from nginx's copy.
    etag = answers[-1][1]["ETag"]
    status, headers, body = _open(browser, url, headers={"If-None-Match": etag})
    assert (status, body) == (304, b"")
    assert headers["X-Cache-Status"] in ("HIT", "UPDATING", "EXPIRED", "STALE")


def _stat(pid: int | str) -> list[str]:
    """/proc/<pid>/stat's fields after "pid (comm)": state, ppid, ... (nice is the 17th)."""
    return (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()


def _nice(pid: int) -> int:
    return int(_stat(pid)[16])


def test_nginx_workers_get_the_cpu_before_the_app(site: Site) -> None:
    """deploy/nginx/petition-main.conf's worker_priority is in effect: as root (CI, and any
    production master, which binds port 443) the workers run at it; without root nginx says
    it could not set it and runs on at the normal priority."""
    match = re.search(r"^worker_priority (-?\d+);", bench_nginx.MAIN.read_text(), re.MULTILINE)
    assert match and int(match.group(1)) < 0
    priority = int(match.group(1))
    workers = site.nginx.worker_pids()
    assert len(workers) >= 1
    if os.geteuid() == 0:
        assert {_nice(pid) for pid in workers} == {priority}
    else:
        assert {_nice(pid) for pid in workers} == {_nice(os.getpid())}
        assert f"setpriority({priority}) failed" in (site.nginx.directory / "error.log").read_text()


def _rlimit_nofile() -> int:
    match = re.search(r"^worker_rlimit_nofile (\d+);", bench_nginx.MAIN.read_text(), re.MULTILINE)
    assert match, "petition-main.conf sets no worker_rlimit_nofile"
    return int(match.group(1))


def test_the_documented_connection_limit_is_the_one_tests_and_benchmarks_run() -> None:
    """docs/operations.md and petition-main.conf tell an install to raise nginx's events
    limit to the number bench/nginx.py runs with, and let each worker open that many
    sockets with room for the cache's files beside them."""
    wanted = f"worker_connections {bench_nginx.WORKER_CONNECTIONS};"
    assert wanted in (ROOT / "docs" / "operations.md").read_text()
    assert wanted in bench_nginx.MAIN.read_text()
    assert bench_nginx.WORKER_CONNECTIONS > bench_nginx.DEBIAN_WORKER_CONNECTIONS
    assert _rlimit_nofile() >= 2 * bench_nginx.WORKER_CONNECTIONS


def _may_raise_open_files_to(limit: int) -> bool:
    """Whether this process (and so the nginx it starts) may set its open-file limit to
    limit: within its hard limit, or beyond it with CAP_SYS_RESOURCE, which a production
    master started by systemd as root has and a container's root may lack."""
    cap_sys_resource = 1 << 24
    status = (Path("/proc") / "self" / "status").read_text()
    effective = int(re.search(r"^CapEff:\s*([0-9a-f]+)$", status, re.MULTILINE).group(1), 16)
    return resource.getrlimit(resource.RLIMIT_NOFILE)[1] >= limit or bool(effective & cap_sys_resource)


def test_nginx_workers_may_open_the_files_a_surge_needs(site: Site) -> None:
    """petition-main.conf's worker_rlimit_nofile is in effect (systemd starts nginx with
    1,024). Where nginx may not raise its limit that far, it says so and keeps the one it
    was started with."""
    limit = _rlimit_nofile()
    workers = site.nginx.worker_pids()
    assert len(workers) >= 1
    soft = {soft_open_files(pid) for pid in workers}
    if _may_raise_open_files_to(limit):
        assert soft == {limit}
    else:
        assert soft == {resource.getrlimit(resource.RLIMIT_NOFILE)[0]}
        assert f"setrlimit(RLIMIT_NOFILE, {limit}) failed" in (
            site.nginx.directory / "error.log").read_text()


def test_a_surge_of_visitors_all_get_the_page(site: Site) -> None:
    """1,500 visitors at once (wrk keeps 1,500 connections asking for the petition page)
    through the shipped config with the documented events limit: every one gets the page,
    none is refused or cut off. With Debian's stock 768 most are refused (bench/surge.py)."""
    assert loaders.wrk_path(), "wrk is missing: make bench-deps (a dependency of make test) installs it"
    result = loaders.get(f"{site.base}/petitions/{site.slug}", connections=1500, duration=3,
                         max_requests=10**9, loader="wrk").result()
    assert result["requests"] > 0
    assert result["errors"] == {"total": 0}, result  # none refused, cut off or timed out
    assert "worker_connections are not enough" not in (
        site.nginx.directory / "error.log").read_text()


def test_plain_http_is_redirected_to_https(site: Site) -> None:
    status, headers, _body = _open(site.browser(), f"{site.nginx.http_base}/petitions/{site.slug}")
    assert status == 301
    assert headers["Location"] == f"https://127.0.0.1/petitions/{site.slug}"
    assert site.app_requests(f"/petitions/{site.slug}") == 0


def test_static_files_come_from_nginx(site: Site) -> None:
    status, headers, body = _open(site.browser(), f"{site.base}/static/css/app.css")
    assert status == 200
    assert body == (Path(__file__).resolve().parent.parent / "static/css/app.css").read_bytes()
    assert headers["Cache-Control"] == "max-age=3600"
    assert site.app_requests("/static/") == 0


def test_an_oversized_body_is_refused_by_nginx(site: Site) -> None:
    # nginx answers 413 from the request's Content-Length and closes, before the body is
    # sent: the client reads that answer first (a client still sending 1 MB may instead see
    # the connection closed under it, and the test would depend on that race).
    connection = http.client.HTTPSConnection("127.0.0.1", site.nginx.https_port,
                                             context=site.nginx.ssl_context(), timeout=20)
    try:
        connection.putrequest("POST", f"/petitions/{site.slug}/sign")
        connection.putheader("Content-Type", "application/x-www-form-urlencoded")
        connection.putheader("Content-Length", str(1024 * 1024 + 10))
        connection.endheaders()
        response = connection.getresponse()
        assert response.status == 413
        response.read()
    finally:
        connection.close()
    assert site.app_requests("/sign") == 0


def test_a_forged_forwarded_for_does_not_buy_more_signing_attempts(make_app, database_url, tmp_path):
    """Rate limits key on the address nginx saw: a client that sends its own X-Forwarded-For
    (a new one each time) is still one client."""
    with _running_site(make_app, database_url, tmp_path, RATELIMIT_ENABLED="true",
                       RATELIMIT_SIGN="2 per minute") as site:
        browser = site.browser()
        page_url = f"{site.base}/petitions/{site.slug}"
        statuses = []
        for i in range(3):
            token = TOKEN.search(_open(browser, page_url)[2].decode()).group(1)
            status, _headers, body = _open(
                browser, f"{page_url}/sign", {"csrf_token": token, **signer(email=f"x{i}@example.org")},
                headers={"X-Forwarded-For": f"203.0.113.{i + 1}"})
            statuses.append(status)
        assert statuses == [303, 303, 429], statuses
        assert b"x2@example.org" in body  # the typed details are kept on the refusal
