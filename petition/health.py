"""GET /health: whether this app process can serve, for load balancers and uptime monitors.

200 when the database answers and its schema is the one this code was written for (or newer:
during a rolling upgrade the migrations run first, and hosts still on the previous version
keep serving). 503 when the database cannot be reached, has no schema, or has an older one
(`flask --app petition init-db` was not run), or when this process's data key is not the
one the database recorded (petition.keys): a load balancer then sends no traffic to this
host. The answer names no host, address, version of any software or error text.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from alembic.script import ScriptDirectory
from flask import Blueprint, Response, current_app, jsonify
from sqlalchemy import inspect, text

from petition import keys
from petition.cli import MIGRATIONS
from petition.db import UNAVAILABLE, KeyMismatch, new_session

bp = Blueprint("health", __name__)


@dataclass(frozen=True)
class Health:
    """What /health says: the database ("ok", "unreachable"), its schema ("current",
    "newer", "older", "missing", or "unknown" when the database was not reached or not
    read) and the data key ("ok", "mismatch", or "unknown" when none is recorded yet or the
    database was not read)."""

    database: str
    schema: str
    data_key: str = "unknown"

    @property
    def ok(self) -> bool:
        return (self.database == "ok" and self.schema in ("current", "newer")
                and self.data_key != "mismatch")


@cache
def _revisions() -> tuple[str, frozenset[str]]:
    """This code's newest migration and all the ones it knows (read once per process)."""
    script = ScriptDirectory(str(MIGRATIONS))
    head = script.get_current_head()
    assert head is not None, "migrations/ has no revision"
    return head, frozenset(r.revision for r in script.walk_revisions())


def check() -> Health:
    """Ask the database for its schema revision and the data key's fingerprint, in a short
    session of its own."""
    head, known = _revisions()
    session = new_session()
    try:
        tables = inspect(session.connection())
        if not tables.has_table("alembic_version"):
            return Health("ok", "missing")
        revision = session.scalar(text("SELECT version_num FROM alembic_version"))
        if revision is None:
            return Health("ok", "missing")
        schema = ("current" if revision == head else "older" if revision in known
                  else "newer")
        # A schema older than this code's may have no fingerprint table yet.
        key = (keys.matches(session, current_app.extensions["petition.cipher"])
               if schema != "older" or tables.has_table("key_fingerprints") else None)
    except KeyMismatch:  # the process's first connection found stored data made with another key
        return Health("ok", "unknown", "mismatch")
    except UNAVAILABLE:
        return Health("unreachable", "unknown")
    finally:
        session.close()
    return Health("ok", schema, "unknown" if key is None else "ok" if key else "mismatch")


@bp.get("/health")
def health() -> tuple[Response, int]:
    """The check's result as JSON; never cached, no cookie."""
    found = check()
    response = jsonify(status="ok" if found.ok else "unavailable", database=found.database,
                       schema=found.schema, data_key=found.data_key)
    response.headers["Cache-Control"] = "no-store"
    return response, 200 if found.ok else 503
