"""The production access log (gunicorn.conf.py): link tokens never reach it, and its cheap
atoms give the same line as gunicorn's own for every format."""

from __future__ import annotations

import importlib.util
import shutil
import urllib.error
import urllib.request
from datetime import timedelta
from pathlib import Path
from types import ModuleType, SimpleNamespace

import pytest
from gunicorn.config import Config
from gunicorn.glogging import Logger, SafeAtoms

from tests.liveserver import live_server

ROOT = Path(__file__).resolve().parent.parent


def _conf() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gunicorn_conf", ROOT / "gunicorn.conf.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


CONF = _conf()


def _logger(cls: type[Logger], fmt: str) -> Logger:
    cfg = Config()
    cfg.set("accesslog", None)  # no handler: the tests format the line themselves
    cfg.set("access_log_format", fmt)
    return cls(cfg)


def _line(logger: Logger, path: str, query: str = "", method: str = "GET") -> str:
    raw_uri = path + (f"?{query}" if query else "")
    environ = {
        "REQUEST_METHOD": method, "RAW_URI": raw_uri, "PATH_INFO": path, "QUERY_STRING": query,
        "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": "127.0.0.1",
        "HTTP_USER_AGENT": 'Mozilla/5.0 "quoted"', "HTTP_REFERER": "https://example.org/",
        "wsgi.url_scheme": "http",
    }
    resp = SimpleNamespace(status="303 SEE OTHER", sent=1234, headers=[("Content-Type", "text/html")])
    req = SimpleNamespace(headers=[("User-Agent", 'Mozilla/5.0 "quoted"'), ("Accept", "*/*")])
    atoms = logger.atoms(resp, req, environ, timedelta(seconds=1, microseconds=234567))
    return logger.cfg.access_log_format % SafeAtoms(atoms)


FORMATS = [
    CONF.access_log_format,
    '%(h)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s" %(m)s %(U)s %(q)s %(H)s %(T)s %(D)s %(M)s %(L)s',
    '"%(r)s" %(s)s "%({user-agent}i)s" %({content-type}o)s',  # header atoms: gunicorn's table
]


@pytest.mark.parametrize("fmt", FORMATS)
def test_the_line_is_gunicorns_own_for_an_ordinary_path(fmt: str) -> None:
    ours = _line(_logger(CONF.RedactingLogger, fmt), "/petitions/end-the-camps/sign", "src=qr", "POST")
    stock = _line(_logger(Logger, fmt), "/petitions/end-the-camps/sign", "src=qr", "POST")
    assert ours == stock
    assert "POST /petitions/end-the-camps/sign?src=qr HTTP/1.1" in ours
    assert " 303 " in ours


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("prefix", ["/signatures/confirm/", "/signatures/withdraw/",
                                    "/organiser/invitations/"])
def test_link_tokens_are_replaced(fmt: str, prefix: str) -> None:
    token = "eyJpZHMiOlsxLDJdfQ.aBcDeF.s3cr3t-t0k3n_value"
    ours = _line(_logger(CONF.RedactingLogger, fmt), prefix + token, "next=1")
    assert token not in ours
    assert f"{prefix}<token>?next=1" in ours
    stock = _line(_logger(Logger, fmt), prefix + token, "next=1")
    assert ours == stock.replace(token, "<token>")


def test_a_changed_format_is_noticed() -> None:
    logger = _logger(CONF.RedactingLogger, CONF.access_log_format)
    assert '"%(a)s"' in CONF.access_log_format
    _line(logger, "/")
    logger.cfg.set("access_log_format", "%(r)s %({accept}i)s")
    assert _line(logger, "/") == "GET / HTTP/1.1 */*"


def test_live_server_logs_requests_without_tokens(tmp_path: Path, sqlite_template: Path) -> None:
    """gunicorn loads ./gunicorn.conf.py: a real request's line is in the log, its token not."""
    db = tmp_path / "live.sqlite3"
    shutil.copy(sqlite_template, db)
    token = "not-a-real-token-but-secret-looking-0123456789"
    with live_server(f"sqlite:///{db}", tmp_path, workers=1, threads=2) as base:
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(f"{base}/signatures/confirm/{token}", timeout=10)
        err.value.close()
        assert err.value.code == 404
    log = (tmp_path / "server.log").read_text()
    assert '"GET /signatures/confirm/<token> HTTP/1.1" 404' in log
    assert token not in log
