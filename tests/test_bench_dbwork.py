"""bench/dbwork.py: the database's own count of one request's work, on SQLite and PostgreSQL.

The growth benchmark relies on it to show that count.json and the petition page cost the
same however many have signed; here it must also see work that does grow.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

import dataset  # noqa: E402
import dbwork  # noqa: E402
from sqlalchemy import text  # noqa: E402

from tests.conftest import PG_URL  # noqa: E402


def _url(kind: str, tmp: Path) -> str:
    if kind == "sqlite":
        return dataset.fresh_database("sqlite", tmp, "")
    return dataset.fresh_database("postgresql", tmp, PG_URL.rsplit("/", 1)[0] + "/bench_smoke")


def _count_all_signatures(app: object, kind: str) -> int:
    """The work of a query that does read every signature (the control)."""
    engine = app.extensions["petition.engine"]  # type: ignore[attr-defined]
    statement = "SELECT count(*) FROM signatures WHERE country <> ''"  # reads every row
    if kind == "postgresql":
        return dbwork._pg_blocks(engine, [(statement, {})])
    with dbwork._sqlite_steps(engine) as steps, engine.connect() as connection:
        connection.execute(text(statement)).scalar()
    return steps[0]


@pytest.mark.parametrize("kind", ["sqlite"] + (["postgresql"] if PG_URL else []))
def test_page_and_count_work_stays_while_a_full_scan_grows(kind: str, tmp_path: Path) -> None:
    url = _url(kind, tmp_path)
    instance = tmp_path / "instance"
    app = dataset.make_app(url, instance)
    try:
        seed = dataset.seed(app, page_signatures=20, growth_signatures=50, spread=2)
        paths = {"count": f"/petitions/{seed.growth_slug}/count.json",
                 "page": f"/petitions/{seed.growth_slug}"}
        dataset.analyse(app)
        few, scan_few = dbwork.per_request(url, instance, paths), _count_all_signatures(app, kind)
        dataset.add_signatures(app, seed.growth_demand_id, 3000, "confirmed", first=50)
        dataset.analyse(app)
        many, scan_many = dbwork.per_request(url, instance, paths), _count_all_signatures(app, kind)
    finally:
        app.extensions["petition.engine"].dispose()
        if kind == "postgresql":
            dataset.drop_database(url)
    assert few == many and few["count"] > 0 and few["page"] > 0
    assert scan_many > scan_few * 5  # the instrument sees work that grows with the table
