"""Sample the gunicorn workers with py-spy during a load and summarise where the time goes.

`py-spy record --subprocesses --gil --format raw` writes collapsed stacks ("frame;frame;... N")
of the threads holding the GIL: Python's CPU time. (Without --gil, py-spy also counts a
thread as busy while it waits to take the GIL back after a system call or a C call, which
made socket writes, database waits and small C calls look many times their CPU.) The
summary counts, over the samples taken inside a request (below gunicorn's handle_request),
the share that each function is on the stack (inclusive) and on top of it (self).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

_FRAME = re.compile(r"^(?P<func>.+?) \((?P<file>[^:()]+)(?::\d+)?\)$")
_REQUEST_ROOT = "ThreadWorker.handle_request (gunicorn/workers/gthread.py)"
_CLASS = re.compile(r"^[\w<>]+\.(?=[\w<>]+ \()")


def py_spy() -> str | None:
    """The py-spy binary next to this Python (requirements-bench.txt), or on PATH."""
    here = Path(sys.executable).parent / "py-spy"
    return str(here) if here.exists() else shutil.which("py-spy")


RATE = 67  # samples a second per thread: little enough to leave the load as it is


def start(master_pid: int, seconds: float, out: Path, rate: int = RATE) -> subprocess.Popen[bytes] | None:
    """Record all gunicorn processes for `seconds`; None if py-spy is not installed."""
    binary = py_spy()
    if binary is None:
        return None
    return subprocess.Popen(
        [binary, "record", "--pid", str(master_pid), "--subprocesses", "--gil", "--nonblocking",
         "--rate", str(rate), "--duration", str(max(1, round(seconds))), "--format", "raw",
         "--output", str(out)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )


def _short(frame: str) -> str:
    """'func (path/to/site-packages/pkg/mod.py:12)' -> 'func (pkg/mod.py)'."""
    m = _FRAME.match(frame)
    if not m:
        return frame
    path = m.group("file")
    for marker in ("site-packages/", "/work/main/", "lib/python3.11/"):
        if marker in path:
            path = path.split(marker, 1)[1]
    return f"{m.group('func')} ({path})"


def summarise(raw: Path, top: int = 30) -> dict[str, Any]:
    """Inclusive and self shares of the functions seen while handling requests."""
    inclusive: Counter[str] = Counter()
    leaf: Counter[str] = Counter()
    total = everything = 0
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        everything += int(count)
        frames = [_short(f) for f in stack.split(";") if not f.startswith(("process ", "thread "))]
        if _REQUEST_ROOT not in frames:
            continue
        frames = frames[frames.index(_REQUEST_ROOT):]
        n = int(count)
        total += n
        for name in set(frames):
            inclusive[name] += n
        leaf[frames[-1]] += n
    share = (lambda c: round(c / total, 4)) if total else (lambda c: 0.0)
    return {
        "samples_in_requests": total,
        "samples_all": everything,  # in requests, and gunicorn's own work between them
        "inclusive": [{"function": f, "share": share(c)} for f, c in inclusive.most_common(top)],
        "self": [{"function": f, "share": share(c)} for f, c in leaf.most_common(top)],
        "selected": {name: share(c) for name, c in inclusive.items() if _interesting(name)},
    }


_INTERESTING = (
    "petition_sign (petition/signing/routes.py)", "petition (petition/signing/routes.py)",
    "_render_petition (petition/signing/routes.py)", "sign (petition/signing/services.py)",
    "_queue_signing_email (petition/signing/services.py)", "enqueue (petition/mail.py)",
    "_sign_new_in_one_statement (petition/signing/services.py)",
    "_signing_message (petition/signing/services.py)", "add_security_headers (petition/http.py)",
    "validate_on_submit (flask_wtf/form.py)", "validate_email_address (petition/signing/forms.py)",
    "validate_csrf (flask_wtf/csrf.py)", "generate_csrf (flask_wtf/csrf.py)",
    "render_template (flask/templating.py)", "commit (sqlalchemy/orm/session.py)",
    "execute (sqlalchemy/orm/session.py)", "_load_demand (petition/signing/routes.py)",
    "get (petition/signing/counts.py)", "encrypt (petition/crypto.py)",
    "email_key (petition/crypto.py)", "save_session (flask/sessions.py)",
    "access (gunicorn/glogging.py)", "full_dispatch_request (flask/app.py)",
    "__init__ (wtforms/form.py)", "__call__ (wtforms/form.py)", "process (wtforms/form.py)",
    "make (petition/signing/tokens.py)", "url_for (flask/helpers.py)",
    "public_url (petition/links.py)", "close (sqlalchemy/orm/session.py)",
    "_security_headers (petition/__init__.py)", "wsgi_app (flask/app.py)",
    # with their class, as py-spy names them
    "Select.__call__ (wtforms/widgets/core.py)", "_get_translations (flask_wtf/i18n.py)",
    "Domain.get_translations (flask_babel/__init__.py)",
    "DefaultDialect._do_ping_w_event (sqlalchemy/engine/default.py)",
    "begin_write (petition/db.py)", "Connection.wait (psycopg/connection.py)",
)


def _interesting(name: str) -> bool:
    """A function worth naming in the docs (matched without its class: py-spy adds it)."""
    return name in _INTERESTING or _CLASS.sub("", name) in _INTERESTING
