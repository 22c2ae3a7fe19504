"""Production gunicorn settings: `gunicorn -c gunicorn.conf.py 'petition:create_app()'`.

Every value can be overridden with GUNICORN_* environment variables read below.
"""

import multiprocessing
import os
import resource

bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
# Processes use the cores, threads cover database waits: cores + 1 processes of 4 threads.
# (gunicorn's "2 x cores + 1" is for its one-request-at-a-time sync worker: with threads it
# only adds processes competing for the same cores: on 2 cores, in alternating runs, 3 x 4
# signed 9-18% faster than 5 x 4 and served pages and polls as fast, in less memory;
# docs/performance-history.md.)
workers = int(os.environ.get("GUNICORN_WORKERS", multiprocessing.cpu_count() + 1))
threads = int(os.environ.get("GUNICORN_THREADS", 4))
worker_class = "gthread"
timeout = int(os.environ.get("GUNICORN_TIMEOUT", 30))
graceful_timeout = 30
keepalive = 5
# A worker is replaced after this many requests (a safety net against slow leaks). Each
# replacement imports and warms the app again, about 1.5 s of CPU: at 10,000 a busy 2-core
# host spent a fifth of its CPU on restarts during count.json polling (docs/performance-history.md).
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", 200_000))
max_requests_jitter = max_requests // 10
# Client addresses are not logged: the access log carries no personal data.
accesslog = os.environ.get("GUNICORN_ACCESS_LOG", "-")
access_log_format = '"%(r)s" %(s)s %(b)s %(M)sms "%(a)s"'
errorlog = "-"
forwarded_allow_ips = os.environ.get("GUNICORN_FORWARDED_ALLOW_IPS", "127.0.0.1")

# Confirmation and withdrawal links carry tokens in their path: keep them out of the log.
import re  # noqa: E402

from gunicorn.glogging import Logger  # noqa: E402

_TOKEN_PATH = re.compile(r"(/signatures/(?:confirm|withdraw)/)[^ ?]+|(/organiser/invitations/)[^ ?]+")


_FORMAT_KEY = re.compile(r"%\(([^)]+)\)")
# The atoms computed without gunicorn's full table (which copies every request header,
# response header and environ variable for each request); any other atom falls back to it.
_SIMPLE_ATOMS = frozenset("rsbMahmUqHfTDL")


class RedactingLogger(Logger):
    """Access logger that replaces link tokens with <token>. When the access_log_format uses
    only simple atoms, it builds just those (the same line as gunicorn's, for a fraction of
    the work); a format with header or environ atoms gets gunicorn's full table."""

    def _uses_simple_atoms(self) -> bool:
        fmt = self.cfg.access_log_format
        if getattr(self, "_format_seen", None) != fmt:
            self._format_seen = fmt
            self._simple = set(_FORMAT_KEY.findall(fmt)) <= _SIMPLE_ATOMS
        return self._simple

    def atoms(self, resp, req, environ, request_time):  # noqa: ANN001, ANN201
        if self._uses_simple_atoms():
            status = resp.status
            if isinstance(status, str):
                status = status.split(None, 1)[0]
            sent = getattr(resp, "sent", None)
            micros = request_time.microseconds
            atoms = {
                "h": environ.get("REMOTE_ADDR", "-"),
                "r": f"{environ['REQUEST_METHOD']} {environ['RAW_URI']} {environ['SERVER_PROTOCOL']}",
                "s": status,
                "m": environ.get("REQUEST_METHOD"),
                "U": environ.get("PATH_INFO"),
                "q": environ.get("QUERY_STRING"),
                "H": environ.get("SERVER_PROTOCOL"),
                "b": sent is not None and str(sent) or "-",
                "f": environ.get("HTTP_REFERER", "-"),
                "a": environ.get("HTTP_USER_AGENT", "-"),
                "T": request_time.seconds,
                "D": request_time.seconds * 1000000 + micros,
                "M": request_time.seconds * 1000 + int(micros / 1000),
                "L": f"{request_time.seconds}.{micros:06d}",
            }
        else:
            atoms = super().atoms(resp, req, environ, request_time)
        for key in ("r", "U"):
            if isinstance(atoms.get(key), str):
                atoms[key] = _TOKEN_PATH.sub(lambda m: (m.group(1) or m.group(2)) + "<token>", atoms[key])
        return atoms


logger_class = RedactingLogger

# gunicorn's exit status for a worker that cannot start: the arbiter stops with "Worker
# failed to boot." instead of replacing it.
_WORKER_BOOT_ERROR = 3


def post_worker_init(worker):  # noqa: ANN001, ANN201
    """Connect once when a worker starts. A process whose data key is not the one the
    database's signer data was made with (petition.keys) stops here, and gunicorn with it,
    instead of serving 503s; a database that is away is checked when it first answers."""
    engine = getattr(worker.wsgi, "extensions", {}).get("petition.engine")
    if engine is None:  # the benchmark's bare apps
        return
    from petition.db import UNAVAILABLE, KeyMismatch

    try:
        engine.connect().close()
    except KeyMismatch as exc:
        worker.log.error("%s", exc)
        raise SystemExit(_WORKER_BOOT_ERROR) from exc
    except UNAVAILABLE:
        pass


# Room for a worker's own files beside its client connections: its database and mail
# connections, a selector per thread waiting for a new connection's request, its logs.
_OWN_FILES = 1024


def on_starting(server):  # noqa: ANN001, ANN201
    """Let every worker hold its connections and its own files before the system says no.

    A gthread worker keeps up to `worker_connections` (gunicorn's 1,000) client connections
    open. systemd starts a service with a soft limit of 1,024 open files, and under a surge
    through nginx a worker reached 1,014 of them; past the limit, requests fail with "Too
    many open files" (docs/operations.md, "Surges"). So the master raises its soft limit,
    which its workers inherit, as far as the hard limit allows (systemd's is 524,288), as
    nginx's `worker_rlimit_nofile` does.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = server.cfg.worker_connections + _OWN_FILES
    allowed = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < allowed:
        resource.setrlimit(resource.RLIMIT_NOFILE, (allowed, hard))
    if allowed < wanted:
        server.log.warning(
            "Open files are limited to %d: a worker holding %d connections may fail requests "
            "with 'Too many open files'. Raise the limit (LimitNOFILE= in the systemd unit) "
            "to at least %d.", allowed, server.cfg.worker_connections, wanted)
