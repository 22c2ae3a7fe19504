"""Production gunicorn settings: `gunicorn -c gunicorn.conf.py 'petition:create_app()'`.

Every value can be overridden with GUNICORN_* environment variables read below.
"""

import multiprocessing
import os

bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
# Processes use the cores (gunicorn's advice: 2 x cores + 1); a few threads each cover
# database waits. More threads per process only queue them for the GIL (docs/performance.md).
workers = int(os.environ.get("GUNICORN_WORKERS", multiprocessing.cpu_count() * 2 + 1))
threads = int(os.environ.get("GUNICORN_THREADS", 4))
worker_class = "gthread"
timeout = int(os.environ.get("GUNICORN_TIMEOUT", 30))
graceful_timeout = 30
keepalive = 5
max_requests = 10000
max_requests_jitter = 1000
# Client addresses are not logged: the access log carries no personal data.
accesslog = os.environ.get("GUNICORN_ACCESS_LOG", "-")
access_log_format = '"%(r)s" %(s)s %(b)s %(M)sms "%(a)s"'
errorlog = "-"
forwarded_allow_ips = os.environ.get("GUNICORN_FORWARDED_ALLOW_IPS", "127.0.0.1")

# Confirmation and withdrawal links carry tokens in their path: keep them out of the log.
import re  # noqa: E402

from gunicorn.glogging import Logger  # noqa: E402

_TOKEN_PATH = re.compile(r"(/signatures/(?:confirm|withdraw)/)[^ ?]+|(/organiser/invitations/)[^ ?]+")


class RedactingLogger(Logger):
    """Access logger that replaces link tokens with <token>."""

    def atoms(self, resp, req, environ, request_time):  # noqa: ANN001, ANN201
        atoms = super().atoms(resp, req, environ, request_time)
        for key in ("r", "U"):
            if isinstance(atoms.get(key), str):
                atoms[key] = _TOKEN_PATH.sub(lambda m: (m.group(1) or m.group(2)) + "<token>", atoms[key])
        return atoms


logger_class = RedactingLogger
