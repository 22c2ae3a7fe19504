"""The database's own work for one request, counted by the database: the same every run.

Throughput on a shared 2-core machine moves by 10-30% from run to run, so the growth target
(count.json and the page cost the same with 1k and 1M signatures) is also measured in a unit
that does not move: with the display cache off, so that the request queries the database as
it does once per second per process under load, one request's statements are captured and
counted by the database itself:

- PostgreSQL: the buffer pages the statements touch (EXPLAIN (ANALYZE, BUFFERS): shared
  blocks hit + read by the executed plan, planning excluded).
- SQLite: the virtual machine instructions it runs, as its progress handler counts them
  (called at its instruction checkpoints: an approximate count, but the same every run).

If a query read the signatures table (a count(*) over it, a missing index), this number would
grow with it; kept equal, the cost per request does not depend on how many have signed.

    python bench/dbwork.py --database-url URL --path /petitions/<slug>   # one app, printed
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import dataset  # noqa: E402
from sqlalchemy import event  # noqa: E402

from petition.signing import display  # noqa: E402


@contextmanager
def _statements(engine: Any) -> Iterator[list[tuple[str, Any]]]:
    seen: list[tuple[str, Any]] = []

    def note(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any,
             _many: bool) -> None:
        seen.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", note)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", note)


def _pg_blocks(engine: Any, statements: list[tuple[str, Any]]) -> int:
    """Shared buffer blocks (hit + read) the statements' plans touch when executed."""
    blocks = 0
    with engine.connect() as connection:
        cursor = connection.connection.dbapi_connection.cursor()
        for statement, parameters in statements:
            cursor.execute("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + statement, parameters)
            plan = cursor.fetchone()[0][0]["Plan"]
            blocks += int(plan.get("Shared Hit Blocks", 0)) + int(plan.get("Shared Read Blocks", 0))
        cursor.close()
        connection.rollback()
    return blocks


@contextmanager
def _sqlite_steps(engine: Any) -> Iterator[list[int]]:
    """Count SQLite VM instructions on every connection the pool hands out meanwhile."""
    steps = [0]

    def count() -> int:
        steps[0] += 1
        return 0  # 0: go on

    def install(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        dbapi_connection.set_progress_handler(count, 1)

    def remove(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.set_progress_handler(None, 1)

    event.listen(engine, "checkout", install)
    event.listen(engine, "checkin", remove)
    try:
        yield steps
    finally:
        event.remove(engine, "checkout", install)
        event.remove(engine, "checkin", remove)


def per_request(url: str, instance: Path, paths: dict[str, str]) -> dict[str, Any]:
    """{"unit": ..., name: the database work of one GET of path, ...} for each named path."""
    app = dataset.make_app(url, instance)
    # The display cache off: each request reads what it shows from the database.
    app.extensions["petition.display_cache"] = display.DisplayCache(0, 1)
    app.extensions["petition.page_cache"] = display.DisplayCache(0, 1)
    engine = app.extensions["petition.engine"]
    sqlite = engine.dialect.name == "sqlite"
    client = app.test_client()
    out: dict[str, Any] = {"unit": "VM instructions" if sqlite else "buffer blocks"}
    try:
        for name, path in paths.items():
            for _ in range(2):  # compiled statements cached, pool connected
                if client.get(path).status_code != 200:
                    raise SystemExit(f"dbwork: GET {path} did not answer 200")
            if sqlite:
                with _sqlite_steps(engine) as steps:
                    client.get(path)
                out[name] = steps[0]
            else:
                with _statements(engine) as seen:
                    client.get(path)
                out[name] = _pg_blocks(engine, seen)
                out[f"{name}_statements"] = len(seen)
    finally:
        engine.dispose()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", required=True, help="an existing, migrated database")
    parser.add_argument("--path", action="append", required=True, help="a GET path (repeatable)")
    args = parser.parse_args()
    instance = Path(tempfile.mkdtemp(prefix="bench-dbwork-"))
    print(json.dumps(per_request(args.database_url, instance, {p: p for p in args.path}),
                     indent=2))


if __name__ == "__main__":
    main()
